"""E7. Normalisation under adversarial training ([B], AdvProp [A], FGSM [G]).

Cells: each norm under standard training, PGD adversarial training (adversarial images only, Madry), mixed clean
+ adversarial batches through one shared norm, AdvProp (clean batch through the main BN, adversarial batch through
an auxiliary BN, attack generated through the auxiliary BN, test with the main BN) and FGSM training. Regimes are
recognised by their objective (normrobust.regimes), not their names.

Claims: ``E7-bn-mixed-clean`` (mixing through one BN lowers clean accuracy vs standard), ``E7-bn-advprop-clean``
(AdvProp's auxiliary BN repairs it: higher clean accuracy than mixed), ``E7-bn-advprop-std`` (AdvProp raises clean
accuracy or keeps it vs standard, a drop of at most :data:`TOL_KEEP`), ``E7-bn-adv-robust`` (under
adversarial-only training BN no longer hurts robust accuracy: it lowers it by at most :data:`TOL_ADV`; one-sided,
as [B]'s claim is),
``E7-{norm}-fgsm-robust`` (FGSM training raises robust accuracy over standard training).

Outputs: figure ``adv_training``; the table of clean and robust accuracy; section
``paper/sections/e7_adv_training.tex.j2``. Published: AdvProp's +0.7 points ([A] Table 2).
"""

KEY, TAG, TITLE = "e7_adv_training", "E7", "normalisation under adversarial training"
#: what it reads of history.csv per epoch (training measures these only for its cells)
HISTORY: tuple[str, ...] = ()
#: evaluation measurements beyond the core ones (normrobust.settings.MEASUREMENTS) that it reads
MEASURES: tuple[str, ...] = ()
