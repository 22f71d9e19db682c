"""E1. Normalisation makes models vulnerable ([B], and Galloway et al. 2019).

Cells: architectures × norms {none, BN, LN, IN, GN} × the study's regimes. Measured: clean accuracy, robust
accuracy over a grid of ε per attack, Gaussian-noise accuracy, LIGS.

Claims (each norm against no norm, same dataset, arch, regime and seed, under standard training):
``E1-{norm}-clean`` raises clean accuracy or keeps it (a drop of at most :data:`TOL_KEEP`),
``E1-{norm}-robust`` lowers the headline robust accuracy, ``E1-{norm}-ligs`` lowers LIGS.

Outputs: figures ``robust_vs_eps`` (accuracy against ε per attack) and ``ligs_per_norm`` (LIGS per norm and
regime); the table of final results; section ``paper/sections/e1_norms.tex.j2``.
"""

KEY, TAG, TITLE = "e1_norms", "E1", "normalisation and vulnerability"
#: what it reads of history.csv per epoch (training measures these only for its cells)
HISTORY: tuple[str, ...] = ()
#: evaluation measurements beyond the core ones (normrobust.settings.MEASUREMENTS) that it reads
MEASURES: tuple[str, ...] = ()
