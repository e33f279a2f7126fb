"""The one box overlap and matching both apps use (medloop.metrics.boxes)."""

from __future__ import annotations

import numpy as np
import pytest

from medloop.metrics.boxes import (
    corners,
    greedy_matches,
    iou,
    iou_matrix,
    iou_matrix_xywh,
    optimal_match_count,
)


def test_iou_of_half_overlapping_boxes_is_one_third() -> None:
    # Two 2 x 2 boxes sharing a 1 x 2 strip: 2 / (4 + 4 - 2).
    assert iou_matrix([[0, 0, 2, 2]], [[1, 0, 3, 2]])[0, 0] == pytest.approx(1 / 3)
    assert iou({"x": 0, "y": 0, "width": 2, "height": 2},
               {"x": 1, "y": 0, "width": 2, "height": 2}) == pytest.approx(1 / 3)  # fmt: skip


def test_corner_and_size_layouts_give_the_same_matrix() -> None:
    xywh = np.array([[10, 20, 30, 40], [0, 0, 5, 5], [12, 18, 25, 45]], dtype=float)
    np.testing.assert_allclose(
        iou_matrix_xywh(xywh, xywh[::-1]), iou_matrix(corners(xywh), corners(xywh[::-1]))
    )
    np.testing.assert_allclose(np.diag(iou_matrix_xywh(xywh, xywh)), 1.0)


def test_disjoint_empty_and_zero_area_boxes_have_iou_zero() -> None:
    assert iou_matrix([[0, 0, 1, 1]], [[2, 2, 3, 3]])[0, 0] == 0
    assert iou_matrix([[0, 0, 0, 0]], [[0, 0, 0, 0]])[0, 0] == 0
    assert iou_matrix(np.zeros((0, 4)), [[0, 0, 1, 1]]).shape == (0, 1)


def test_greedy_matching_takes_the_best_pair_first_and_each_box_once() -> None:
    overlap = np.array([[0.9, 0.8], [0.85, 0.0]])
    # (0, 0) first; row 1 then has only column 0, which is taken; row 0 is used up.
    assert greedy_matches(overlap) == [(0, 0)]
    assert greedy_matches(np.array([[0.5, 0.7], [0.6, 0.1]])) == [(0, 1), (1, 0)]
    assert greedy_matches(np.zeros((2, 0))) == []


def test_optimal_matching_counts_more_pairs_than_greedy_would() -> None:
    # Greedy would pair (0, 0) at 0.9 and leave row 1 without a partner above 0.5.
    overlap = np.array([[0.9, 0.6], [0.7, 0.0]])
    assert len([p for p in greedy_matches(overlap) if overlap[p] >= 0.5]) == 1
    assert optimal_match_count(overlap, 0.5) == 2
    assert optimal_match_count(overlap, 0.95) == 0
    assert optimal_match_count(np.array([[0.5]]), 0.5) == 1  # exactly at the threshold
