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
