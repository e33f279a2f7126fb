"""The model kinds MedLoop can train and serve, by name: the registry of
:func:`~active_learning.ml.interface.register`, filled by importing the kinds' modules.

:func:`new_model` builds an untrained model of a kind from a project's settings (what a
retraining cycle trains); :func:`~active_learning.ml.checkpoints.load_model` loads a saved one
by the kind its manifest names. Pure Python, never Django.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from active_learning.ml.interface import MODEL_KINDS, SuggestionModel

__all__ = ["DEFAULT_KIND", "UnknownModelKind", "new_model", "registered"]

# What a project trains when it has no version to build on (a version's kind otherwise).
DEFAULT_KIND = "builtin"


class UnknownModelKind(KeyError):
    """A kind no module registered; the message names the known ones."""

    def __str__(self) -> str:
        return str(self.args[0])


def registered() -> dict[str, type[SuggestionModel]]:
    """Every registered kind by name (importing the kinds' modules registers them)."""
    from active_learning.ml import builtin, ct_detector, local_checkpoint  # noqa: F401

    return dict(MODEL_KINDS)


def new_model(
    kind: str, finding_classes: Sequence[str], settings: Mapping[str, Any]
) -> SuggestionModel:
    """A new, untrained model of ``kind`` for ``finding_classes`` with ``settings`` overriding
    the kind's defaults (:meth:`SuggestionModel.from_settings`)."""
    kinds = registered()
    if kind not in kinds:
        raise UnknownModelKind(f"unknown model kind {kind!r}; known: {', '.join(sorted(kinds))}")
    return kinds[kind].from_settings(finding_classes, settings)
