"""E10. FGSM ([G]: Goodfellow, Shlens, Szegedy 2015), on MNIST in the preset fgsm-mnist.

Cells: a shallow softmax classifier (``kind: linear``) and a maxout network, trained normally and with FGSM
adversarial training (the weighted objective α·J(x) + (1 − α)·J(x + η)); FGSM examples of one model tried on the
other (the study's transfer block). The FGSM attack and ε all of E10 reads are :func:`fgsm_metric`'s.

Claims: ``E10-linear-fgsm-error`` (FGSM error above :data:`LINEAR_ERROR_LEVEL`), ``E10-maxout-fgsm-error``
(above :data:`MAXOUT_ERROR_LEVEL`), ``E10-{linear,maxout}-confidence`` (misclassified FGSM examples still get
a mean max-softmax above :data:`CONFIDENCE_LEVEL`), ``E10-maxout-fgsm-halves`` (FGSM training lowers the maxout
model's FGSM error by more than half), ``E10-maxout-clean-error`` (it raises the clean error by at most
:data:`TOL_KEEP`), ``E10-maxout-transfer-asym`` (examples from the FGSM-trained model fool the original more than
the reverse). Models are recognised by their arch ``kind``.

Outputs: figure ``fgsm``; our numbers beside [G]'s (:data:`PUBLISHED`) with the difference in points; section
``paper/sections/e10_fgsm.tex.j2``.
"""

KEY, TAG, TITLE = "e10_fgsm", "E10", "FGSM, softmax and maxout ([G])"
#: what it reads of history.csv per epoch (training measures these only for its cells)
HISTORY: tuple[str, ...] = ()
#: evaluation measurements beyond the core ones (normrobust.settings.MEASUREMENTS) that it reads
MEASURES: tuple[str, ...] = ('adv_confidence',)
