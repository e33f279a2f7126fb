"""Acquisition strategies: which unlabelled cases annotators see next.

Pure Python and numpy, never Django. Importing this package registers the built-ins
(``random``, ``fifo``, ``uncertainty``, ``uncertainty-boxes``, ``uncertainty-findings``,
``uncertainty-report``, ``diversity``, ``hybrid``, ``typiclust``, ``class-balanced``); find
one with :func:`get`.
"""

from active_learning.strategies import (
    class_balanced,
    diversity,
    fifo,
    hybrid,
    random_order,
    typiclust,
    uncertainty,
)
from active_learning.strategies.base import (
    Candidate,
    RankingContext,
    Strategy,
    UnknownStrategy,
    available,
    get,
    interleave_validation,
    priorities,
    register,
    reset,
    validation_order,
)

__all__ = [
    "Candidate",
    "RankingContext",
    "Strategy",
    "UnknownStrategy",
    "available",
    "class_balanced",
    "diversity",
    "fifo",
    "get",
    "hybrid",
    "interleave_validation",
    "priorities",
    "random_order",
    "register",
    "reset",
    "typiclust",
    "uncertainty",
    "validation_order",
]
