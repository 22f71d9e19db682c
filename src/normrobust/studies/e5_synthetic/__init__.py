"""E5. Ground truth on generated data (ours; none of the papers has it).

The generated dataset gives every image a robust feature (RF, large amplitude) and a non-robust feature (NRF,
amplitude below ε, more predictive) with known generators; counterfactual test sets (RF only, NRF only, RF and NRF
of different classes) measure directly how much a model relies on the NRF (``nrf_reliance``). This checks LIGS
against the truth: a model that relies more on the NRF should have lower LIGS.

Claims: ``E5-{norm}-nrf`` (the norm raises NRF reliance vs no norm under standard training), ``E5-rank``
(Spearman ρ(LIGS, NRF reliance) over the study's cells is negative on every seed; at least
:data:`MIN_RANK_CELLS` cells).

Design (fixed from one-seed pilots of NRF reliance alone, before any verdict was read): a rank correlation says
something only if the cells' reliance is graded. The small CNN learnt the NRF with BN and with nothing else in every
variant of the data tried, so its cells sat at two points and ρ would only restate "BN or not". The default uses
the residual net on data with two NRF families of different amplitudes (config ``nrf_amplitude: [1.5, 3]``,
``nrf_tile: 8``), where the pilots gave graded reliance across the five norms and two regimes. Either claim can
still come out FAIL: the norms' order in reliance is measured, not set, and LIGS may rank the cells against it.

The rank claim's variance: each seed's ρ is over independently trained models, so its sampling variance over the
cells (1.06/(m − 3), Fieller et al.) is independent across seeds and is divided by their number: more seeds or more
cells decide it (normrobust.analysis.verdicts). Preconditions: every model compared learned its task.

Outputs: figures ``nrf_reliance`` and ``ligs_vs_nrf``; the NRF table and the rank-correlation table; section
``paper/sections/e5_synthetic.tex.j2``. No published numbers.
"""

KEY, TAG, TITLE = "e5_synthetic", "E5", "ground truth on generated data"
#: what it reads of history.csv per epoch (training measures these only for its cells)
HISTORY: tuple[str, ...] = ()
#: evaluation measurements beyond the core ones (normrobust.settings.MEASUREMENTS) that it reads
MEASURES: tuple[str, ...] = ('nrf_reliance',)
