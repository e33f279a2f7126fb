"""``class-balanced``: a batch that uncertainty alone would fill with common findings also
holds the cases most likely to show the rare one."""

from __future__ import annotations

import pytest

from active_learning.strategies import Candidate, RankingContext, get, reset


@pytest.fixture(autouse=True)
def _builtin_registry():
    reset()
    yield
    reset()


def _pool() -> list[Candidate]:
    """40 uncertain cases that probably show effusion (the common finding), 40 near-normal
    cases, and two the model thinks show a pneumothorax while being fairly sure of itself."""
    pool = [
        Candidate(i, {"case_score": 0.8 + i / 1000, "p:effusion": 0.6, "p:pneumothorax": 0.02})
        for i in range(40)
    ]
    pool += [
        Candidate(100 + i, {"case_score": 0.3, "p:effusion": 0.05, "p:pneumothorax": 0.01})
        for i in range(40)
    ]
    pool += [
        Candidate(200, {"case_score": 0.2, "p:effusion": 0.1, "p:pneumothorax": 0.55}),
        Candidate(201, {"case_score": 0.25, "p:effusion": 0.1, "p:pneumothorax": 0.35}),
    ]
    return pool


CONTEXT = RankingContext(batch_size=10, labelled_positives={"effusion": 30, "pneumothorax": 1})


def test_class_balanced_picks_include_the_rare_finding_that_uncertainty_leaves_out():
    pool = _pool()
    plain = get("uncertainty").rank(pool, CONTEXT)[:10]
    assert not {200, 201} & set(plain)
    batch = get("class-balanced").rank(pool, CONTEXT)[:10]
    assert batch[:2] == [200, 201]  # the likeliest pneumothorax first
    # The rest of the batch is still the most uncertain cases.
    assert batch[2:] == plain[:8]


def test_a_finding_with_no_likely_case_in_the_pool_gives_its_picks_back_to_uncertainty():
    pool = [c for c in _pool() if c.case_id < 200]  # no likely pneumothorax left
    batch = get("class-balanced").rank(pool, CONTEXT)[:10]
    # Effusion is then the rarest finding with likely cases: the most uncertain ones show it.
    assert batch == get("uncertainty").rank(pool, CONTEXT)[:10]


def test_the_rare_share_follows_the_labelled_counts():
    # Pneumothorax now has many labelled positives and effusion few: the balanced picks go to
    # effusion (whose likeliest cases are also the most uncertain) and none to pneumothorax.
    context = RankingContext(
        batch_size=10, labelled_positives={"effusion": 0, "pneumothorax": 50}, balanced_share=0.3
    )
    batch = get("class-balanced").rank(_pool(), context)[:10]
    assert not {200, 201} & set(batch)


def test_without_class_probabilities_it_is_uncertainty_and_without_scores_diversity():
    pool = [Candidate(i, {"case_score": i / 10}) for i in range(10)]
    assert get("class-balanced").rank(pool, CONTEXT) == get("uncertainty").rank(pool, CONTEXT)
    unscored = [Candidate(i) for i in range(5)]
    assert sorted(get("class-balanced").rank(unscored, CONTEXT)) == list(range(5))
