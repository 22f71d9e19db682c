"""The studies (experiments of PAPER.md) the pipeline knows: their tag and the figures each draws.

One place for this map: the workflow draws a figure when one of its studies is enabled, the
figure shows that study's cells by default, and the report places it in the study's section.
The order is the report's order (E1 ... E10). Every figure belongs to exactly one study.
"""

STUDIES = {
    "e1_norms": {"tag": "E1", "figures": ["robust_vs_eps", "ligs_per_norm"]},
    "e2_trajectories": {"tag": "E2", "figures": ["trajectories"]},
    "e3_disentangled": {"tag": "E3", "figures": ["disentangled"]},
    "e4_conflict": {"tag": "E4", "figures": ["conflict"]},
    "e5_synthetic": {"tag": "E5", "figures": ["nrf_reliance", "ligs_vs_nrf"]},
    "e6_factors": {"tag": "E6", "figures": ["factors"]},
    "e7_adv_training": {"tag": "E7", "figures": ["adv_training"]},
    "e8_ligs_reg": {"tag": "E8", "figures": ["ligs_reg"]},
    "e9_transfer": {"tag": "E9", "figures": ["transfer_heatmap", "transfer_sources"]},
    "e10_fgsm": {"tag": "E10", "figures": ["fgsm"]},
}

FIGURE_STUDY = {fig: study for study, s in STUDIES.items() for fig in s["figures"]}
