"""The studies (experiments of PAPER.md) the pipeline knows: their tag and the figures each draws.

One place for this map: the workflow draws a figure when one of its studies is enabled, the
figure shows that study's cells by default, and the report places it in the study's section.
"""

STUDIES = {
    "e1_norms": {"tag": "E1", "figures": ["robust_vs_eps", "ligs_per_norm"]},
    "e2_trajectories": {"tag": "E2", "figures": ["trajectories"]},
    "e5_synthetic": {"tag": "E5", "figures": ["nrf_reliance"]},
    "e9_transfer": {"tag": "E9", "figures": ["transfer_heatmap"]},
}

FIGURE_STUDY = {fig: study for study, s in STUDIES.items() for fig in s["figures"]}
