"""Report text similarity: tokens, longest common subsequence, ROUGE-L F1 and edit distance.

Pure Python; both reader agreement (:mod:`annotations.agreement`) and model evaluation
(:mod:`active_learning.ml.metrics.text`) use these, so a draft and a second reader are scored
with the same tokens and the same formulas.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = [
    "edit_distance",
    "lcs_length",
    "rouge_l_f1",
    "tokenize_report",
    "word_edit_distance",
    "word_tokens",
]

# The typographic apostrophe (U+2019) is intended: reports pasted from word processors use it.
_TOKEN = re.compile(r"\d+(?:\.\d+)?|[^\W\d_]+(?:['’-][^\W\d_]+)*|[^\w\s]|_")  # noqa: RUF001


def tokenize_report(text: str, *, keep_punctuation: bool = False) -> list[str]:
    """Tokens for BLEU, ROUGE-L and CIDEr: lowercase; a token is a number (``1.2`` stays whole), a
    word (letters, with inner hyphens or apostrophes: ``well-circumscribed``, ``patient's``) or a
    single punctuation mark. Punctuation tokens are dropped unless ``keep_punctuation``, as the COCO
    caption pipeline's PTBTokenizer drops them, so scores compare with published ones. Report
    de-identification marks such as ``XXXX`` stay ordinary words."""
    tokens = _TOKEN.findall(text.lower())
    return tokens if keep_punctuation else [t for t in tokens if t[0].isalnum()]


def word_tokens(text: str) -> list[str]:
    """The lower-cased whitespace-separated words of ``text``, punctuation kept on the words: the
    cheap tokens MC-dropout drafts are compared on (their disagreement, not a reported score)."""
    return text.lower().split()


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists."""
    previous = [0] * (len(b) + 1)
    for token in a:
        current = [0]
        for j, other in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if token == other else max(previous[j], current[-1]))
        previous = current
    return previous[-1]


def rouge_l_f1(a: Sequence[str], b: Sequence[str]) -> float:
    """ROUGE-L F1 (beta 1) of two token lists from their longest common subsequence; 1.0 when
    both are empty, 0.0 when one is. (The report metrics' corpus ROUGE-L is pycocoevalcap's, beta
    1.2.)"""
    if not a or not b:
        return 1.0 if not a and not b else 0.0
    lcs = lcs_length(a, b)
    return 2 * lcs / (len(a) + len(b))  # = 2PR / (P + R) with P, R = lcs / len


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance between two token lists (insert, delete, substitute: cost 1)."""
    previous = list(range(len(b) + 1))
    for i, token in enumerate(a, start=1):
        current = [i]
        for j, other in enumerate(b, start=1):
            current.append(
                min(previous[j] + 1, current[-1] + 1, previous[j - 1] + (token != other))
            )
        previous = current
    return previous[-1]


def word_edit_distance(draft: str, final: str) -> float:
    """Word-level Levenshtein distance from the draft to the final text, over the final
    text's length in words (0: unchanged; 1: as many edits as the final text has words).

    Words are whitespace-separated and compared exactly. The words both texts start and end
    with are set aside first: an exact shortcut (edits never need them) that keeps the
    quadratic part to the region the annotator changed."""
    a, b = draft.split(), final.split()
    start = 0
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    end = 0
    while end < min(len(a), len(b)) - start and a[-1 - end] == b[-1 - end]:
        end += 1
    distance = edit_distance(a[start : len(a) - end], b[start : len(b) - end])
    return distance / max(len(b), 1)
