"""E4. Conflicting features ([B] Fig. 6).

Dataset: D_R images of class y (they carry y's robust features) attacked toward y+1 on a standard model and labelled
y+1 (``method: conflict``). Cells: BN and no-norm models trained on it (no augmentation), evaluated on the real
test set against the labels t (``clean_acc``: scored by a model that uses the NRFs) and t+1 (``shifted_acc``:
scored by one that uses the RFs).

Claims: ``E4-{norm}-t`` (the norm model scores more on labels t than the no-norm model), ``E4-{norm}-t1`` (the
no-norm model scores more on labels t+1), ``E4-{norm}-ligs`` (the norm model has lower LIGS).

Outputs: figure ``conflict``; a table beside [B]'s Fig. 6 numbers (:data:`PUBLISHED`); section
``paper/sections/e4_conflict.tex.j2``.
"""

KEY, TAG, TITLE = "e4_conflict", "E4", "conflicting features"
#: what it reads of history.csv per epoch (training measures these only for its cells)
HISTORY: tuple[str, ...] = ()
#: evaluation measurements beyond the core ones (normrobust.settings.MEASUREMENTS) that it reads: accuracy on the
#: labels t+1; accuracy on its own training set (did a model learn the conflict set: a precondition)
MEASURES: tuple[str, ...] = ("shifted_acc", "train_acc")
#: the conflict set carries its intended feature (the new label's NRF, by the generator's ideal reader) on at least
#: this share of images, or no claim reading it can say what models learn from it (as derive-data's min_rate)
CARRIES_LEVEL = 0.8
#: on real images no reader knows the features: a held-out model of the feature's kind (the set's ``readers``: a robust
#: one for D_R, a standard one for the NRF sets) reads the set instead, and it must classify the set's images as their
#: label on at least chance + this margin (30 % with 10 classes), the margin by which a model "learned" something
#: (normrobust.analysis.preconditions.LEARNED_MARGIN). Not the ground truth's 80 %: a held-out model reads only what
#: transfers from the source to it (targeted adversarial examples fool a model other than their source far less often
#: than the source), so a set that carries its feature for the models it was made for can read low on another model.
#: Set before any real-image run was made (issue 22)
READER_MARGIN = 0.2
