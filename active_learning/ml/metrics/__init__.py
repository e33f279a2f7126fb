"""How good a suggestion model is, measured against expert labels; pure Python, no Django, no torch.

- :mod:`~active_learning.ml.metrics.boxes`: COCO mAP, FROC, candidate matching, shown-box figures.
- :mod:`~active_learning.ml.metrics.findings`: AUROC and calibration of finding probabilities
  (the temperature itself is fitted in :mod:`active_learning.ml.calibration`).
- :mod:`~active_learning.ml.metrics.text`: report metrics (BLEU, ROUGE-L, CIDEr-D, finding F1);
  the token-level similarity both apps use is :mod:`medloop.metrics.text`.

:mod:`active_learning.ml.evaluate` re-exports all of them and prints the evaluation table.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def macro_mean(values: Iterable[float | None]) -> float | None:
    """The mean of the values that are not None (None when there is none)."""
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None
