"""Validation cases are served in their own random order at the project's validation share,
never by the strategy: the validation labels stay a random sample of the project, and they
grow with the labels from the start. Pure Python: no database."""

from __future__ import annotations

import pytest

from active_learning.strategies import interleave_validation, validation_order


def test_validation_cases_take_their_share_of_every_stretch_of_the_queue():
    ranked = list(range(100, 190))  # the strategy's order of 90 training cases
    held = list(range(10))  # 10 validation cases
    order = interleave_validation(ranked, held, share=0.1)
    assert sorted(order) == sorted(ranked + held)
    # The strategy's order and the validation order are both kept.
    assert [c for c in order if c >= 100] == ranked
    assert [c for c in order if c < 10] == held
    # After every n labels, validation holds floor(0.1 n) of them: never none for long, never
    # more than its share.
    for n in range(1, len(order) + 1):
        assert sum(c < 10 for c in order[:n]) == int(0.1 * n + 1e-9)


def test_a_project_behind_its_share_catches_up_first():
    order = interleave_validation([101, 102, 103], [1, 2, 3], share=0.2, labelled=10)
    # 10 labels, none for validation: two validation cases bring it to 2 of 12, then training.
    assert order[:3] == [1, 2, 101]


def test_leftovers_and_no_share():
    assert interleave_validation([], [3, 1], share=0.1) == [3, 1]
    assert interleave_validation([5, 6], [], share=0.1) == [5, 6]
    assert interleave_validation([5, 6], [1], share=0.0) == [5, 6, 1]
    with pytest.raises(ValueError, match="share"):
        interleave_validation([1], [2], share=1.0)


def test_the_validation_order_is_fixed_per_key_and_not_the_ids_order():
    ids = list(range(50))
    first = validation_order(ids, key=7)
    assert first == validation_order(list(reversed(ids)), key=7)
    assert sorted(first) == ids and first != ids
    assert validation_order(ids, key=8) != first
