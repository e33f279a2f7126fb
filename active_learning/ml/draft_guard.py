"""The last check before a report draft reaches an annotator: is the text a report at all?

A report model that has not learnt yet writes strings of dots, one word over and over, or the
same sentence again and again. Such a draft costs the annotator time to delete and teaches
them to ignore the model. :func:`is_degenerate` names what is wrong with a draft (or returns
None for text that reads like a report); the serving code never shows a draft it refuses.

The limits are set so that every one of the 3,927 real Indiana University chest X-ray reports
(:mod:`active_learning.ml.iu_reports`, FINDINGS and IMPRESSION together) passes, while the
failure shapes seen from untrained versions do not (tests/active_learning/ml/test_draft_guard.py).
Pure Python; no Django, no torch.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping

__all__ = [
    "MAX_LOOP_PHRASE",
    "MAX_ONE_LETTER_SHARE",
    "MAX_SAME_SENTENCE",
    "MAX_TOP_WORD_SHARE",
    "MIN_LETTER_SHARE",
    "MIN_VOCABULARY_RATIO",
    "MIN_WORDS",
    "draft_text",
    "is_degenerate",
]

MIN_WORDS = 3  # the shortest IU report ("No active disease.") has three
MIN_LETTER_SHARE = 0.6  # letters among the visible characters (IU minimum: about 0.75)
# Among drafts of at least VOCABULARY_MIN_WORDS words: distinct words / words (IU minimum is
# about 0.35 for the longest, most formulaic reports) and the share of the commonest word.
VOCABULARY_MIN_WORDS = 8
MIN_VOCABULARY_RATIO = 0.3
MAX_TOP_WORD_SHARE = 0.5
MAX_LOOP_PHRASE = 6  # a phrase of up to six words said three times in a row is a decoding loop
MAX_SAME_SENTENCE = 2  # the same sentence three times is a decoding loop, not a report
# Three of the same punctuation mark in a row ("...", "!!!", "- - -"), or five marks of any kind
# with nothing but spaces between them. The IU reports never do either.
_REPEATED_MARK = re.compile(r"([^\w\s])(?:\s*\1){2,}")
_PUNCTUATION_RUN = re.compile(r"(?:[^\w\s]\s*){5,}")
# Words are runs of letters and digits ("t11", "x-ray"); only those with a letter count as words.
_WORD = re.compile(r"[^\W_]+(?:['-][^\W_]+)*")
MAX_ONE_LETTER_SHARE = 0.4  # "a b c d e": not words
# A sentence ends at a mark followed by a space or the end ("1.9 x 2.1 cm" is one sentence).
_SENTENCE_END = re.compile(r"[.!?;]+(?:\s+|$)")


def draft_text(draft: Mapping[str, str] | str) -> str:
    """A draft's sections joined in order, one space between them (a str is returned as is)."""
    if isinstance(draft, str):
        return draft
    return " ".join(text.strip() for text in draft.values() if isinstance(text, str) and text)


def is_degenerate(text: str) -> str | None:
    """Why ``text`` (a whole report draft: its sections joined, see :func:`draft_text`) must not
    be shown, in words an annotator or model owner reads; None when it reads like a report.

    Refused, checked in this order (the first failure is named): empty text; a run of repeated
    punctuation (``"........"``); text that is mostly not letters; fewer than :data:`MIN_WORDS`
    words; mostly single letters; a phrase said three times in a row; a vocabulary too small
    for its length (one word making up more than half the words, or few distinct words); the
    same sentence more than :data:`MAX_SAME_SENTENCE` times."""
    stripped = text.strip()
    if not stripped:
        return "the draft is empty"
    if _REPEATED_MARK.search(stripped) or _PUNCTUATION_RUN.search(stripped):
        return "the draft contains a run of repeated punctuation"
    visible = [c for c in stripped if not c.isspace()]
    letters = sum(c.isalpha() for c in visible)
    if letters / len(visible) < MIN_LETTER_SHARE:
        return f"the draft is mostly not letters ({letters} of {len(visible)} characters)"
    words = _letter_words(stripped)
    if len(words) < MIN_WORDS:
        return f"the draft has {len(words)} word(s); a report needs at least {MIN_WORDS}"
    one_letter = sum(len(w) == 1 for w in words)
    if one_letter / len(words) > MAX_ONE_LETTER_SHARE:
        return f"{one_letter} of the draft's {len(words)} words are single letters"
    loop = _loop(words)
    if loop:
        return f"the draft says {loop!r} over and over"
    if len(words) >= VOCABULARY_MIN_WORDS:
        counts = Counter(words)
        top, top_count = counts.most_common(1)[0]
        if top_count / len(words) > MAX_TOP_WORD_SHARE:
            return f"the word {top!r} makes up {top_count} of the draft's {len(words)} words"
        if len(counts) / len(words) < MIN_VOCABULARY_RATIO:
            return (
                f"the draft uses {len(counts)} distinct words in {len(words)}: "
                "too small a vocabulary"
            )
    # Numbered lists ("1. ... 2. ...") split into one-word "sentences": only longer ones count.
    sentences = Counter(
        " ".join(sentence)
        for sentence in (_letter_words(part) for part in _SENTENCE_END.split(stripped))
        if len(sentence) >= 2
    )
    if sentences:
        sentence_text, count = sentences.most_common(1)[0]
        if count > MAX_SAME_SENTENCE:
            return f"the draft repeats the sentence {sentence_text!r} {count} times"
    return None


def _letter_words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text) if any(c.isalpha() for c in w)]


def _loop(words: list[str]) -> str | None:
    """The first phrase of 1..MAX_LOOP_PHRASE words that follows itself twice, else None."""
    for size in range(1, MAX_LOOP_PHRASE + 1):
        for start in range(len(words) - 3 * size + 1):
            phrase = words[start : start + size]
            if (
                phrase
                == words[start + size : start + 2 * size]
                == words[start + 2 * size : start + 3 * size]
            ):
                return " ".join(phrase)
    return None
