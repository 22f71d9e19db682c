"""E6. Factors other than normalisation ([B]): width, depth, activation, weight decay, initial lr, optimizer.

Design ``one_at_a_time``: the base cell (archs[0], regimes[0]) and, per norm, each other arch with regimes[0] and
each other regime with archs[0]; :func:`variants` says what each variant changes (one definition, used by the
claims, the figure and the table).

Claims ([B]'s findings), per norm: ``E6-{norm}-{width,depth}-ligs`` (moves LIGS little: |Δ| ≤
:data:`TOL_LIGS_SMALL`), ``E6-{norm}-{activation}-ligs`` (a non-ReLU activation gives higher LIGS) and ``-clean``
(lower clean accuracy), ``E6-{norm}-adam-ligs`` (Adam gives higher LIGS than the base optimizer) and
``E6-{norm}-adam-vs-adagrad-ligs`` (than Adagrad, when the study has both),
``E6-{norm}-{wd,lr}-ligs-early`` (a higher weight decay / lr gives higher LIGS at the first epoch) and ``-late``
(lower final LIGS), ``E6-{norm}-vs-norm`` (no factor moves LIGS as much as the norm does: the largest |ΔLIGS| of a
variant is below |LIGS(norm) − LIGS(no norm)| of the base cell). Emitted only for the variants the study has.

Outputs: figure ``factors``; a table of each variant with Δ to the base cell; section
``paper/sections/e6_factors.tex.j2``. No published numbers ([B] reads these effects off training curves).
"""

KEY, TAG, TITLE = "e6_factors", "E6", "factors other than normalisation"
#: what the study reads of history.csv: LIGS at the first epoch (the wd / lr "early" claims)
HISTORY = ("ligs",)
#: evaluation measurements beyond the core ones (normrobust.settings.MEASUREMENTS) that it reads
MEASURES: tuple[str, ...] = ()
