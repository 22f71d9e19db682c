"""E8. LIGS regularisation ([B]).

Cells: standard training and ``ligs_reg`` regimes (clean loss + w·(1 − LIGS) by double backward) of growing
weight w (normrobust.regimes.ligs_weight; standard training is w = 0).

Claims, for every ligs_reg regime against standard training: ``E8-{norm}-{regime}-robust`` (raises the headline
robust accuracy), ``E8-{norm}-{regime}-clean`` (changes clean accuracy little: |Δ| ≤ :data:`TOL_SMALL`),
``E8-{norm}-{regime}-ligs`` (raises LIGS).

Outputs: figure ``ligs_reg`` (clean / robust accuracy and LIGS against w); a table per weight; section
``paper/sections/e8_ligs_reg.tex.j2``. No published numbers.
"""

KEY, TAG, TITLE = "e8_ligs_reg", "E8", "LIGS regularisation"
#: what it reads of history.csv per epoch (training measures these only for its cells)
HISTORY: tuple[str, ...] = ()
#: evaluation measurements beyond the core ones (normrobust.settings.MEASUREMENTS) that it reads
MEASURES: tuple[str, ...] = ()
