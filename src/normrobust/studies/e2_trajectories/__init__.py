"""E2. Training trajectories ([B] Fig. 3).

Cells: {BN, none} × {standard, adversarial} (the presets: ResNet-18; the default: the small CNN). Measured after
every epoch on the first ``training.history.n_test`` test images: clean accuracy, robust accuracy under the
history attack and each extra per-epoch attack (e.g. PGD-L2 0.25), LIGS; and the final evaluation.

Claims (robust accuracy is the metric [B]'s Fig. 3 quotes, PGD-L2 ε = 0.25, when the config evaluates it; else the
headline): ``E2-bn-std-robust`` (BN lowers robust accuracy under standard training), ``E2-bn-std-ligs`` (BN lowers
LIGS), ``E2-bn-adv-robust[-{regime}]`` (under adversarial training BN no longer hurts robust accuracy: it lowers it
by at most :data:`TOL_ADV`; one-sided, as [B]'s claim is; the claim names the regime it tests: [B] trains with
targeted PGD-L2, the presets' ``pgd_l2_targeted``, the default with its PGD-L∞ regime),
``E2-{none,bn}-adv-ligs-high[-{regime}]`` (an adversarially trained model keeps LIGS near 1: above
:data:`ADV_LIGS_LEVEL`), ``E2-{none,bn}-rf-first`` (LIGS falls during standard training: robust features are learnt
first).

Design: the default trains the small CNN for E2 (four cells, with per-epoch history); what could make a claim
come out either way is the data: on the generated data an NRF-reliant model loses all robust accuracy at ε ≥ the
NRF amplitude, an RF-reliant one keeps it, so BN's effect has room in both directions, and LIGS's first-to-last
change is judged against the LIGS standard error of ``training.history.n_test`` images.

Outputs: figure ``trajectories``; the last epoch's values beside the final evaluation; section
``paper/sections/e2_trajectories.tex.j2``. [B]'s Fig. 3 final values are :data:`PUBLISHED`.
"""

KEY, TAG, TITLE = "e2_trajectories", "E2", "training trajectories"
#: what the study reads of history.csv: every epoch's robust accuracies and LIGS ([B] Fig. 3)
HISTORY = ("robust", "ligs")
#: evaluation measurements beyond the core ones (normrobust.settings.MEASUREMENTS) that it reads
MEASURES: tuple[str, ...] = ()
