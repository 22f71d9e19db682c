"""E11. A toy study (the README's "Adding a study" example): does BN change clean accuracy?

Cells: the study's norms under its regimes. Claim: ``E11-{norm}-clean`` (the norm raises clean accuracy over no
norm). Outputs: figure ``toy_clean`` (clean accuracy per norm), a table, section ``paper/sections/e11_toy.tex.j2``.
"""

KEY, TAG, TITLE = "e11_toy", "E11", "a toy study"
HISTORY: tuple[str, ...] = ()  # reads nothing of the per-epoch history
MEASURES: tuple[str, ...] = ()  # only the core evaluation rows
