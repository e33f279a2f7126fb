"""The report text similarity both apps use (medloop.metrics.text)."""

from __future__ import annotations

import pytest

from medloop.metrics.text import edit_distance, lcs_length, rouge_l_f1, tokenize_report


def test_report_tokens_are_lower_case_words_and_whole_numbers() -> None:
    assert tokenize_report("Nodule, 1.5 cm; patient’s well-circumscribed XXXX.") == [  # noqa: RUF001
        "nodule", "1.5", "cm", "patient’s", "well-circumscribed", "xxxx",  # noqa: RUF001
    ]  # fmt: skip
    assert tokenize_report("a, b", keep_punctuation=True) == ["a", ",", "b"]


def test_rouge_l_and_edit_distance_on_word_lists() -> None:
    a, b = ["no", "acute", "cardiopulmonary", "process"], ["no", "acute", "process"]
    assert lcs_length(a, b) == 3
    assert rouge_l_f1(a, b) == pytest.approx(2 * 3 / (4 + 3))
    assert edit_distance(a, b) == 1
    assert rouge_l_f1([], []) == 1.0 and rouge_l_f1(a, []) == 0.0
    assert edit_distance([], b) == 3
