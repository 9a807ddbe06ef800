"""Pure metric functions of the built-in plugins (numpy functional cores).

* :mod:`.segmentation` - referring-segmentation IoU aggregation (official REF.py) and the
  confusion-matrix semantic-segmentation metrics (official SEG.py) plus standard variants.
* :mod:`.grounding` - box IoU and grounding accuracy (official VG.py, stale-IoU bug fixed).
* :mod:`.classification` - scene (multi-class) classification metrics.
* :mod:`.multilabel`, :mod:`.detection`, :mod:`.captioning`, :mod:`.counting` - the metrics of
  the ``mlc``, ``det``, ``cap`` and ``cnt`` plugins.

Confusion matrices of ``mcc`` and ``mlc`` are counted in numpy (exactly the official definition,
tested equal to torchmetrics' and scikit-learn's: importing torchmetrics costs 2-5 s of every
run); each module's docstring says where our own code is kept and why (float64 where
torchmetrics returns float32, official quirks such as SEG's out-of-range labels).

Official functions are tested against the official code's outputs stored in
``../shared/reference/postprocess_golden.npz``; standard ones against scikit-learn,
torchmetrics, pycocotools or pycocoevalcap.
"""
