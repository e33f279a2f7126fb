"""Which findings a chest radiograph report states as present or absent: a small rule set.

Used by :func:`active_learning.ml.evaluate.report_metrics` for finding-level F1 between generated
and reference reports. Pure Python, no Django, no torch.

How a text is read (all matching is case-insensitive, on whole words):

1. Phrases that look negated but are not are neutralised first: uncertainty ("cannot be
   excluded", "not ruled out", ...; an uncertain finding counts as present, CheXpert's "U-ones"
   policy) and change statements ("no change in", "no significant interval change", ...).
2. The text is cut into sentences (at ``.`` not followed by a digit, so "1.2 cm" stays whole,
   and at ``;``, ``?``, ``!``, newlines) and sentences into clauses at words that end a negation's
   scope ("but", "however", "although", "except", "aside from", "other than", "whereas",
   "there is/are").
3. Per class, look-alike phrases are ignored ("pericardial effusion" is not a pleural effusion,
   "mass effect" not a mass), then each mention of the class (:data:`FINDING_RULES`) is
   **negated** when a trigger precedes it in its clause ("no", "not", "without", "negative for",
   "free of", "absence of", "neither", "nor", "resolution of", "resolved", "clear of", "never"),
   when the mention itself holds "no"/"not" ("heart size is not enlarged"), or when it is
   followed by "(is/are/has been) not ...", "no longer", "absent", "resolved", "cleared" or
   "excluded"; otherwise it is affirmed. Some normal statements also count as negated mentions
   ("heart size is normal" for cardiomegaly, "lungs are clear" for consolidation, "costophrenic
   angles are sharp" for effusion).
4. A class is "present" if any mention is affirmed, else "absent" if any mention is negated, and
   left out of the result when the text does not mention it.

The scope of a negation is the rest of its clause, so "No focal consolidation or effusion." negates
both, and "No pneumothorax, but a small effusion." only the pneumothorax. Known limits: no
coreference, no history versus current distinction, no laterality, and a list that mixes negated
and affirmed findings without a scope word between them is read as all negated.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FindingRule:
    """Regular expressions (lowercase text) for one finding class."""

    mentions: tuple[str, ...]  # phrases that name the finding
    normal: tuple[str, ...] = ()  # statements that mean the finding is absent
    look_alikes: tuple[str, ...] = ()  # phrases that contain a mention but mean something else


_HEART = r"(?:heart|cardiac|cardiomediastinal|cardiopericardial)"

FINDING_RULES: dict[str, FindingRule] = {
    "nodule": FindingRule(mentions=(r"\bnodul(?:e|es|ar)\b",)),
    "mass": FindingRule(
        mentions=(r"\bmass(?:es|like)?\b",),
        look_alikes=(r"\bmass effect\b", r"\bbody mass\b"),
    ),
    "consolidation": FindingRule(
        mentions=(
            r"\bconsolidat(?:ion|ions|ive|ed)\b",
            r"\bair[\s-]?space (?:disease|opacit(?:y|ies)|process)\b",
            r"\bopacit(?:y|ies)\b",
            r"\binfiltrat(?:e|es|ion|ive)\b",
            r"\bpneumonias?\b",
        ),
        normal=(r"\blungs? (?:are|is|remain) (?:\w+ )?clear\b", r"\bclear lungs\b"),
        look_alikes=(
            r"\b(?:nodular|interstitial|reticular|linear|streaky|calcified) opacit(?:y|ies)\b",
        ),
    ),
    "effusion": FindingRule(
        mentions=(
            r"\beffusions?\b",
            r"\bpleural fluid\b",
            r"\bhydrothora(?:x|ces)\b",
            r"\bblunt(?:ed|ing)\b(?:\s+\w+){0,4}?\s+costophrenic\b",
            r"\bcostophrenic (?:angles?|sulcus|sulci|recess(?:es)?) (?:(?:is|are) )?(?:\w+ )?blunt",
        ),
        normal=(
            r"\bcostophrenic (?:angles?|sulci|recesses) (?:are|is|remain) (?:\w+ )?(?:sharp|clear)",
            r"\bsharp costophrenic\b",
        ),
        look_alikes=(r"\b(?:pericardial|joint) effusions?\b",),
    ),
    "pneumothorax": FindingRule(mentions=(r"\b(?:hydro|hemo|haemo)?pneumothora(?:x|ces)\b",)),
    "cardiomegaly": FindingRule(
        mentions=(
            r"\bcardiomegaly\b",
            r"\b(?:heart size|heart shadow|heart|cardiac size|cardiac silhouette|"
            r"cardiomediastinal silhouette)\s+(?:(?:is|are|appears|remains|was)\s+)?(?:\w+\s+)?"
            r"(?:enlarged|large)\b",
            r"\benlarge(?:d|ment of(?: the)?)\s+(?:\w+\s+)?(?:heart|cardiac)\b",
            r"\bcardiac enlargement\b",
        ),
        normal=(
            rf"\b{_HEART}(?:\s+\w+){{0,6}}?\s+(?:normal|unremarkable|within normal limits)\b",
            rf"\bnormal(?:\s+\w+){{0,2}}?\s+{_HEART}\b",
        ),
    ),
}

# Neutralised before anything else (see the module docstring, step 1).
_NOT_NEGATIONS = re.compile(
    r"\b(?:can ?not|could not|may not|not) (?:be )?(?:excluded|exclude|ruled out|rule out)\b"
    r"|\bno (?:significant |appreciable |definite )?(?:interval )?"
    r"(?:change|increase|decrease|worsening|improvement)\b"
    r"|\bnot (?:significantly )?(?:changed|increased|decreased|worsened|improved)\b"
)
_SENTENCE_END = re.compile(r"\.(?!\d)|[;?!\n]")
_SCOPE_END = re.compile(
    r"\b(?:but|however|although|though|except|aside from|apart from|other than|whereas|"
    r"there (?:is|are))\b"
)
_PRE_NEGATION = re.compile(
    r"\b(?:no|not|without|negative for|free of|absence of|neither|nor|resolution of|resolved|"
    r"clear of|never)\b"
)
_INNER_NEGATION = re.compile(r"\b(?:no|not)\b")
_POST_NEGATION = re.compile(
    r"^[\s,]*(?:(?:is|are|was|were|has|have|had)\s+)?(?:(?:been|now)\s+)?"
    r"(?:not|no longer|absent|resolved|cleared|excluded)\b"
)


def _rule(finding: str) -> FindingRule:
    """The rule of a known class; an unknown class is matched by its own name (and plural)."""
    if finding in FINDING_RULES:
        return FINDING_RULES[finding]
    return FindingRule(mentions=(rf"\b{re.escape(finding.replace('_', ' ').lower())}s?\b",))


def _clauses(text: str) -> list[str]:
    text = _NOT_NEGATIONS.sub(" ~ ", text.lower())
    return [
        clause
        for sentence in _SENTENCE_END.split(text)
        for clause in _SCOPE_END.split(sentence)
        if clause.strip()
    ]


def _is_negated(clause: str, match: re.Match[str]) -> bool:
    return bool(
        _PRE_NEGATION.search(clause, 0, match.start())
        or _INNER_NEGATION.search(match.group())
        or _POST_NEGATION.match(clause[match.end() :])
    )


def findings_stated(text: str, classes: Sequence[str]) -> dict[str, str]:
    """``{class: "present" | "absent"}`` for each of ``classes`` that ``text`` mentions (rules in
    the module docstring); a class the text does not mention is left out."""
    clauses = _clauses(text)
    stated: dict[str, str] = {}
    for finding in classes:
        rule = _rule(finding)
        affirmed = negated = False
        for raw in clauses:
            clause = raw
            for pattern in rule.look_alikes:
                clause = re.sub(pattern, " ~ ", clause)
            for pattern in rule.mentions:
                for match in re.finditer(pattern, clause):
                    if _is_negated(clause, match):
                        negated = True
                    else:
                        affirmed = True
            negated = negated or any(re.search(p, clause) for p in rule.normal)
        if affirmed or negated:
            stated[finding] = "present" if affirmed else "absent"
    return stated
