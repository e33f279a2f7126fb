"""The 3D CT lesion detector, MONAI RetinaNet in 3D (:mod:`.model`)."""

from active_learning.ml.ct_detector.config import CTDetectorConfig
from active_learning.ml.ct_detector.model import KIND, CTDetector

__all__ = ["KIND", "CTDetector", "CTDetectorConfig"]
