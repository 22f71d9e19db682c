"""E9. Transferability ([B]).

Cells: sources with / without a norm, standard and slightly robust (small-ε adversarial training); the study's
``transfer`` block names the target regimes (the other standard models) and ``source_epochs`` (early-stopped
sources: the saved weights of an early epoch). Attack: the transfer attack from the source (eval mode); success =
a target misclassifies an image it got right.

One aggregation for every kind of source (:func:`source_kinds`, read by the claims' figure and table alike): the
rows of this study, targets of the transfer block's regimes, a source's own cell left out (for an early-stopped
source too: its own final model is not a transfer target), the mean over the targets per source and seed.

Claims: ``E9-transfer`` (sources without BN transfer better than BN sources), ``E9-early-stop[-e{k}]`` (an
epoch-k source transfers better than the same cell's final model), ``E9-robust-source[-{regime}]`` (a slightly
robust source transfers better than a standard source of the same norm), ``E9-rf-nrf`` (RFs transfer better than
NRFs: the perturbation projected onto the generated data's known feature templates). On real images, whose features
no one knows, E9-rf-nrf is not made, as E5 is not run there: a claim that could only be NOT TESTABLE is no claim of
that data (it stood in the real-image presets' NOT TESTABLE count, by construction, until the second run).

Design: the default's sources and targets are E5's residual-net cells (five norms, standard and small-ε
adversarial training), so the study trains nothing of its own and every source has four standard targets with a
different norm; each claim compares means over those targets, per seed, with the binomial noise of each success
rate carried into its interval (:mod:`normrobust.analysis.transfer_claim`).

Outputs: figures ``transfer_heatmap`` (success per final source and target) and ``transfer_sources`` (success per
kind of source); the transfer matrix and the kinds-of-source table; section ``paper/sections/e9_transfer.tex.j2``.
"""

KEY, TAG, TITLE = "e9_transfer", "E9", "transferability"
#: what it reads of history.csv per epoch (training measures these only for its cells)
HISTORY: tuple[str, ...] = ()
#: measurements beyond the core ones that it reads: of each transfer, on data with known feature templates, the
#: success of the examples' RF part and NRF part (normrobust.settings.TRANSFER_MEASUREMENTS)
MEASURES: tuple[str, ...] = ("rf_nrf",)
#: a source's examples can transfer only if they fool the source itself: its white-box success at the transfer
#: attack must be at least 90 % for a claim comparing its transfer to mean anything (below it, a low transfer rate
#: says the attack failed, not that the examples do not transfer)
WHITE_BOX_LEVEL = 0.9
