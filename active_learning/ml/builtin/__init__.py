"""The built-in suggestion model: MONAI RetinaNet boxes, image + text + lab findings, a GPT-2
report draft, uncertainty and Grad-CAM. Importing the package registers it as ``builtin``."""

from active_learning.ml.builtin.config import BuiltinConfig
from active_learning.ml.builtin.model import BuiltinModel

__all__ = ["BuiltinConfig", "BuiltinModel"]
