"""Verification statistics of a model version on a locked test set; pure numpy and scipy, no
Django, no torch.

- :mod:`~active_learning.ml.verification.resampling`: case-level bootstrap weights (drawn as
  ``scipy.stats.bootstrap`` draws its resamples) and percentile intervals.
- :mod:`~active_learning.ml.verification.weighted`: every figure computed at once for many
  weightings of the same cases (one row of weights per bootstrap resample): sensitivity,
  specificity, PPV and NPV at a threshold, AUROC, AP, box AP@0.5, FROC, ECE.
- :mod:`~active_learning.ml.verification.delong`: DeLong's test for two correlated AUROCs.
- :mod:`~active_learning.ml.verification.figures`: all figures of one version with 95 %
  intervals, and the paired comparison of two versions on the same cases.
"""
