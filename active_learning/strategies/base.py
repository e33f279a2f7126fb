"""The acquisition-strategy contract and its registry.

An acquisition strategy decides which unlabelled cases annotators see next. In the spirit of
MONAI Label, scoring is separate from choosing: the scoring task runs the model and stores
uncertainty scores (tagged with the model version) and, where it has them, embeddings; a
strategy only ranks what is stored. It is cheap, pure (Python and numpy, never Django) and found
by name through :data:`STRATEGIES`, never through ``if/elif``.

Every strategy answers one question, :meth:`Strategy.rank`: given the candidates and a
:class:`RankingContext`, return *all* candidate case ids, most worth labelling first. The first
``context.batch_size`` ids are the batch one cycle sends to annotators; :func:`priorities` turns
the order into queue priorities (the queue serves higher priority first).
"""

from __future__ import annotations

import abc
import hashlib
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

#: Keys a scoring task may store for a case. ``case_score`` is the combined score in [0, 1];
#: the others are per-output scores, each >= 0, higher meaning more uncertain.
SCORE_KEYS = ("case_score", "boxes", "findings", "report")
#: Prefix of the per-class keys a scoring task may also store: ``"p:nodule"`` is the serving
#: version's calibrated probability that the case shows a nodule (class-balanced picks).
CLASS_PROBABILITY_PREFIX = "p:"


class UnknownStrategy(ValueError):
    """A strategy name that is not registered; the message lists the known names."""


@dataclass(frozen=True, eq=False)
class Candidate:
    """One unlabelled case a strategy may pick.

    ``scores``: the uncertainty scores the serving model version stored for this case, keyed
    by :data:`SCORE_KEYS`; empty when no model has scored it. ``embedding``: a 1-D float vector
    (the model's embedding, or simple image features before a first model exists), ``None``
    when unknown. Candidates compare by identity (an embedding array has no single truth value).
    """

    case_id: int
    scores: Mapping[str, float] = field(default_factory=dict)
    embedding: np.ndarray | None = None

    def score(self, key: str) -> float | None:
        """The score stored under ``key``, or ``None`` when it is missing or not a number."""
        value = self.scores.get(key)
        if value is None:
            return None
        value = float(value)
        return None if math.isnan(value) else value

    def class_probability(self, finding: str) -> float | None:
        """The stored probability that the case shows ``finding`` (``p:<finding>``), or None."""
        return self.score(CLASS_PROBABILITY_PREFIX + finding)


@dataclass(frozen=True, eq=False)
class RankingContext:
    """What a strategy knows besides the candidates.

    ``batch_size``: how many cases one cycle sends annotators (the batch the strategy picks
    first). ``labelled_embeddings``: ``(n, d)`` embeddings of cases already labelled, or
    ``None``; k-center starts from them. ``seed``: for every random choice. ``random_share``
    and ``pool_factor`` are read by the hybrid strategy (share of random picks in a batch; the
    uncertainty pool is the top ``pool_factor * batch_size`` cases). ``labelled_positives``:
    per finding, the labelled cases that show it (class-balanced picks favour the rarest);
    ``balanced_share``: the share of a batch the class-balanced strategy picks for rare
    findings.
    """

    batch_size: int = 10
    labelled_embeddings: np.ndarray | None = None
    seed: int = 0
    random_share: float = 0.15
    pool_factor: int = 5
    labelled_positives: Mapping[str, int] = field(default_factory=dict)
    balanced_share: float = 0.5

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if not 0.0 <= self.random_share <= 1.0:
            raise ValueError(f"random_share must lie in [0, 1], got {self.random_share}")
        if self.pool_factor < 1:
            raise ValueError(f"pool_factor must be at least 1, got {self.pool_factor}")
        if not 0.0 <= self.balanced_share <= 1.0:
            raise ValueError(f"balanced_share must lie in [0, 1], got {self.balanced_share}")


class Strategy(abc.ABC):
    """An acquisition strategy. Subclasses set the class attributes and implement :meth:`rank`.

    ``needs_scores`` / ``needs_embeddings`` tell the caller what to load (a strategy that needs
    neither can rank cases no model has seen).
    """

    name: ClassVar[str]
    description: ClassVar[str]
    needs_scores: ClassVar[bool]
    needs_embeddings: ClassVar[bool]

    @abc.abstractmethod
    def rank(self, candidates: Sequence[Candidate], context: RankingContext) -> list[int]:
        """All candidates' case ids, most worth labelling first (a permutation of the input ids)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def case_ids(candidates: Sequence[Candidate]) -> list[int]:
    """The candidates' case ids in input order; ``ValueError`` if a case id appears twice."""
    ids = [candidate.case_id for candidate in candidates]
    if len(set(ids)) != len(ids):
        twice = sorted(case_id for case_id, count in Counter(ids).items() if count > 1)
        raise ValueError(f"case ids appear more than once among the candidates: {twice}")
    return ids


def priorities(order: Sequence[int]) -> dict[int, float]:
    """Case id -> queue priority for a ranking: the first id gets ``len(order)``, the last 1.0.

    The queue serves higher priority first, so the ranking's order is the serving order.
    """
    if len(set(order)) != len(order):
        raise ValueError("a ranking must not list a case twice")
    return {case_id: float(len(order) - index) for index, case_id in enumerate(order)}


def validation_order(case_ids: Sequence[int], *, key: int) -> list[int]:
    """The validation cases in a fixed random order of their own (keyed by ``key``, e.g. the
    project): never the model's, so the validation labels stay a random sample of the project's
    cases, whatever the strategy thinks worth labelling."""
    return sorted(
        case_ids,
        key=lambda case_id: hashlib.blake2b(f"{key}:{case_id}".encode(), digest_size=8).digest(),
    )


def interleave_validation(
    ranked: Sequence[int],
    validation: Sequence[int],
    *,
    share: float,
    labelled: int = 0,
    labelled_validation: int = 0,
) -> list[int]:
    """The serving order: the strategy's ranking of the training pool (``ranked``) with the
    validation cases (``validation``, in their own order) slotted in so that validation labels
    keep ``share`` of all labels from the very first ones on.

    Without it a strategy that ranks every open case serves validation cases only when the
    model finds them worth labelling: the validation set is then biased towards what the model
    finds hard, and a new project's first versions have no validation labels at all (no
    operating points, no promotion). ``labelled`` / ``labelled_validation`` are the labels so
    far: a project behind its share catches up first. Each position takes a validation case
    while taking it keeps validation labels at or below ``share``; leftovers go last.
    """
    if not 0.0 <= share < 1.0:
        raise ValueError("share must be at least 0 and below 1")
    order: list[int] = []
    pool, held = list(ranked), list(validation)
    taken = taken_validation = 0
    while pool or held:
        total = labelled + taken + 1
        wants_validation = labelled_validation + taken_validation + 1 <= share * total + 1e-9
        if held and (wants_validation or not pool):
            order.append(held.pop(0))
            taken_validation += 1
        else:
            order.append(pool.pop(0))
        taken += 1
    return order


# --- registry ---------------------------------------------------------------------------------

#: Registered strategies by name. Read it through :func:`get` and :func:`available`.
STRATEGIES: dict[str, Strategy] = {}
_BUILTINS: dict[str, Strategy] = {}


def register(strategy: Strategy, *, replace: bool = False) -> Strategy:
    """Make ``strategy`` available under ``strategy.name`` and return it.

    A name already registered is refused (``ValueError``) unless ``replace=True``, so a plugin
    cannot silently shadow a built-in.
    """
    if not isinstance(strategy, Strategy):
        raise TypeError(f"expected a Strategy instance, got {strategy!r}")
    name = getattr(strategy, "name", "")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{type(strategy).__name__} has no name")
    if name in STRATEGIES and not replace:
        raise ValueError(f"a strategy named {name!r} is already registered")
    STRATEGIES[name] = strategy
    return strategy


def register_builtin(strategy: Strategy) -> Strategy:
    """Register a strategy shipped with MedLoop; :func:`reset` restores exactly these."""
    _BUILTINS[strategy.name] = strategy
    return register(strategy, replace=True)


def get(name: str) -> Strategy:
    """The strategy registered as ``name``; :class:`UnknownStrategy` lists the known names."""
    try:
        return STRATEGIES[name]
    except KeyError:
        known = ", ".join(sorted(STRATEGIES)) or "none"
        raise UnknownStrategy(
            f"unknown acquisition strategy {name!r}; known strategies: {known}"
        ) from None


def available() -> list[tuple[str, str]]:
    """``(name, description)`` of every registered strategy, sorted by name."""
    return [(name, STRATEGIES[name].description) for name in sorted(STRATEGIES)]


def reset() -> None:
    """Forget every registered strategy but the built-ins (for tests)."""
    STRATEGIES.clear()
    STRATEGIES.update(_BUILTINS)
