"""E3. Disentangled datasets ([B] Fig. 4; Ilyas et al. 2019).

Datasets built from the pipeline's own models (``kind: derived``, see normrobust.data.derived): D_R (re-synthesised
to match an adversarially trained model's penultimate features: robust features only), D_NR (the same from a
standard model), D_rand / D_det (attacked toward a random / the next class and labelled with it: only non-robust
features predict the label). Cells: BN and no-norm models trained on each, evaluated on the real test set.

Claims (derived datasets recognised by their ``method``): ``E3-drobust-{norm}-clean`` (on D_R the norm gives higher
clean accuracy than no norm), ``E3-drobust-{norm}-robust`` (and lower headline robust accuracy),
``E3-d{rand,det}-{norm}-clean`` (the norm learns the non-robust features no-norm models cannot: higher clean
accuracy on the real test set), ``E3-drand-none-fails`` (a no-norm model does not learn D_rand: clean accuracy
below :data:`FAIL_LEVEL`, [B] Fig. 4), ``E3-dnonrobust-{norm}-clean`` / ``-robust`` (a model trained on D_NR
generalises to the real test set, clean accuracy above :data:`LEARNS_LEVEL`, yet has near-zero robust accuracy,
below :data:`NEAR_ZERO`: Ilyas et al.'s 88% / 0%).

Design: the derived sets are made from sources that carry the features (D_NR, D_rand, D_det from a standard BN
model, which relies on the NRFs on the generated data; D_R from an adversarially trained one), and each set is
checked as it is made against the generated data's ideal readers (normrobust.data.derived: at least 80% of images
carry the intended feature, else the run stops), so the claims test what models learn from a set that holds what
it promises. Each claim can come out either way: whether a no-norm model picks up the NRFs of D_rand / D_det is
exactly what is open (on the original data it does not rely on them, but there the RF competes; in D_rand only
the NRF predicts the label).

Outputs: figure ``disentangled``; a table beside [B]'s Fig. 4 numbers; section
``paper/sections/e3_disentangled.tex.j2``. Published: [B] Fig. 4 and Ilyas et al.'s accuracies (:data:`PUBLISHED`).
"""

KEY, TAG, TITLE = "e3_disentangled", "E3", "disentangled datasets"
#: what it reads of history.csv per epoch (training measures these only for its cells)
HISTORY: tuple[str, ...] = ()
#: evaluation measurements beyond the core ones (normrobust.settings.MEASUREMENTS) that it reads: accuracy on its own
#: (derived) training set, for the precondition that a model learned the set it was trained on
MEASURES: tuple[str, ...] = ("train_acc",)
#: a derived set carries its intended feature on at least this share of its images (by the generator's ideal readers,
#: where the base has them), or the claims that read it are NOT TESTABLE (as derive-data's default min_rate)
CARRIES_LEVEL = 0.8
#: on real images no reader knows the features: a held-out model of the feature's kind (the set's ``readers``: a robust
#: one for D_R, a standard one for the NRF sets) reads the set instead, and it must classify the set's images as their
#: label on at least chance + this margin (30 % with 10 classes), the margin by which a model "learned" something
#: (normrobust.analysis.preconditions.LEARNED_MARGIN). Not the ground truth's 80 %: a held-out model reads only what
#: transfers from the source to it (targeted adversarial examples fool a model other than their source far less often
#: than the source), so a set that carries its feature for the models it was made for can read low on another model.
#: Set before any real-image run was made (issue 22)
READER_MARGIN = 0.2
