"""The IU X-ray report benchmark: parsing the real archive and small hand-written ones, the fixed
split, and the retrieval and template baselines. Pure Python: no Django, no database."""

from __future__ import annotations

import io
import random
import tarfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from xml.etree.ElementTree import ParseError

import pytest

from active_learning.ml import iu_reports
from active_learning.ml.evaluate import report_metrics
from active_learning.ml.iu_reports import (
    IUReport,
    RetrievalBaseline,
    TemplateBaseline,
    clean_text,
    iter_reports,
    source_text,
    split_of,
    target_text,
)
from tests.support.tools import require


@pytest.fixture(scope="module")
def real_reports() -> list[IUReport]:
    try:
        path = iu_reports.default_archive_path()
    except FileNotFoundError:
        path = None
    if path is None or not path.is_file():
        require(["torchxrayvision 1.5.7 (requirements-extra.txt)"], "the IU X-ray reports")
    return list(iter_reports(path))


@pytest.fixture(scope="module")
def split(real_reports: list[IUReport]) -> tuple[list[IUReport], list[IUReport]]:
    train = [r for r in real_reports if split_of(r.report_id) == "train"]
    test = [r for r in real_reports if split_of(r.report_id) == "test"]
    return train, test


def _xml(
    uid: str | None,
    sections: dict[str, str],
    major: tuple[str, ...] = (),
    automatic: tuple[str, ...] = (),
) -> str:
    texts = "".join(
        f'<AbstractText Label="{label}">{text}</AbstractText>' for label, text in sections.items()
    )
    tags = "".join(f"<major>{t}</major>" for t in major)
    tags += "".join(f"<automatic>{t}</automatic>" for t in automatic)
    uid_element = f'<uId id="{uid}"/>' if uid else ""
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<eCitation>'
        f"{uid_element}<MedlineCitation><Article><Abstract>{texts}</Abstract></Article>"
        f"</MedlineCitation><MeSH>{tags}</MeSH></eCitation>"
    )


def _write_tgz(path: Path, members: dict[str, str]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        folder = tarfile.TarInfo("ecgen-radiology")
        folder.type = tarfile.DIRTYPE
        archive.addfile(folder)
        for name, text in members.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(f"ecgen-radiology/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


# ------------------------------------------------------------------------------ synthetic archive
def test_hand_written_archive_parses_fields_tags_and_skips_an_empty_report(tmp_path):
    path = _write_tgz(
        tmp_path / "reports.tgz",
        {
            "1.xml": _xml(
                "CXR1",
                {
                    "COMPARISON": "None.",
                    "INDICATION": "XXXX-year-old  male,\n chest pain",
                    "FINDINGS": "Heart size normal . Lungs are clear..",
                    "IMPRESSION": "Normal chest x-XXXX XXXX, XXXX.",
                },
                major=("normal",),
            ),
            "2.xml": _xml(
                "CXR2",
                {"INDICATION": "Cough", "FINDINGS": "", "IMPRESSION": "   "},
                major=("Opacity/lung/base/left",),
            ),
            "3.xml": _xml(
                None,  # no uId: the file's stem is the id
                {"INDICATION": "", "FINDINGS": "", "IMPRESSION": "Mild cardiomegaly."},
                major=("Cardiomegaly/mild ", "Lung/hypoinflation"),
                automatic=("cardiomegaly",),
            ),
        },
    )
    reports = list(iter_reports(path))
    assert reports == [
        IUReport(
            report_id="CXR1",
            indication="XXXX-year-old male, chest pain",
            findings="Heart size normal. Lungs are clear.",
            impression="Normal chest x-XXXX.",
            mesh=("normal",),
        ),
        IUReport(
            report_id="3",
            indication="",
            findings="",
            impression="Mild cardiomegaly.",
            mesh=("Cardiomegaly/mild", "Lung/hypoinflation"),
        ),
    ]
    assert target_text(reports[0]) == (
        "FINDINGS: Heart size normal. Lungs are clear. IMPRESSION: Normal chest x-XXXX."
    )
    assert target_text(reports[1]) == "FINDINGS: IMPRESSION: Mild cardiomegaly."
    assert source_text(reports[0]) == "indication: XXXX-year-old male, chest pain tags: normal"
    assert source_text(reports[1]) == "indication: tags: Cardiomegaly/mild; Lung/hypoinflation"


def test_reports_are_streamed_one_member_at_a_time(tmp_path):
    path = _write_tgz(
        tmp_path / "reports.tgz",
        {
            "1.xml": _xml("CXR1", {"FINDINGS": "Clear.", "IMPRESSION": "Normal."}, ("normal",)),
            "2.xml": "<eCitation><unclosed>",
        },
    )
    reports = iter_reports(path)
    assert isinstance(reports, Iterator)
    assert next(reports).report_id == "CXR1"  # parsed before the broken member is read
    with pytest.raises(ParseError):
        next(reports)


def test_missing_archive_raises_a_clear_error_at_the_call(tmp_path):
    missing = tmp_path / "nowhere" / "NLMCXR_reports.tgz"
    with pytest.raises(FileNotFoundError) as error:
        iter_reports(missing)  # no next(): the check is not deferred to the first report
    assert str(missing) in str(error.value)
    assert "pip install --no-deps torchxrayvision==1.5.7" in str(error.value)


def test_clean_text_keeps_the_placeholder_but_tidies_around_it():
    assert clean_text(None) == ""
    assert clean_text("  a \n\t b  ") == "a b"
    assert clean_text("Seen on XXXX XXXX, XXXX. Stable XXXX.") == "Seen on XXXX. Stable XXXX."
    assert clean_text("XXXX-year-old, XXXXXXXX XXXX-XXXX") == "XXXX-year-old, XXXX-XXXX"
    assert clean_text("Lungs clear .. No effusion , no pneumothorax ;") == (
        "Lungs clear. No effusion, no pneumothorax;"
    )
    assert clean_text("60XXXX XXXX with XXXX") == "60XXXX with XXXX"  # fused with a number
    assert clean_text("1.2 cm nodule.") == "1.2 cm nodule."


# ---------------------------------------------------------------------------------------- split
def test_split_is_fixed_by_id_and_rejects_bad_fractions():
    ids = [f"CXR{i}" for i in range(1, 3001)]
    first = {i: split_of(i) for i in ids}
    assert {i: split_of(i) for i in reversed(ids)} == first  # order plays no part
    assert [first[f"CXR{i}"] for i in (1, 2, 6, 8)] == ["train", "train", "test", "test"]
    share = sum(s == "test" for s in first.values()) / len(ids)
    assert 0.18 < share < 0.22
    smaller = {i for i in ids if split_of(i, test_fraction=0.1) == "test"}
    assert smaller <= {i for i in ids if first[i] == "test"}  # nested test sets
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError):
            split_of("CXR1", bad)


# ------------------------------------------------------------------------------- real archive
def test_real_archive_holds_thousands_of_tagged_reports(real_reports, split):
    assert len(real_reports) > 3500
    assert len({r.report_id for r in real_reports}) == len(real_reports)
    assert all(r.report_id.startswith("CXR") for r in real_reports)
    assert all(r.findings or r.impression for r in real_reports)
    assert all(r.mesh and all(r.mesh) for r in real_reports)
    both = sum(bool(r.findings and r.impression) for r in real_reports)
    assert both > 0.8 * len(real_reports)
    assert sum(bool(r.indication) for r in real_reports) > 0.95 * len(real_reports)
    assert sum("normal" in r.mesh for r in real_reports) > 1000
    assert any("Cardiomegaly" in tag for r in real_reports for tag in r.mesh)
    for r in real_reports:
        for text in (r.indication, r.findings, r.impression):
            for untidy in ("  ", "XXXX XXXX", "XXXX, XXXX", ".."):
                assert untidy not in text, (r.report_id, text)
    train, test = split
    assert 0.18 < len(test) / len(real_reports) < 0.22
    assert len(train) + len(test) == len(real_reports)


def test_retrieval_returns_the_training_target_of_an_exact_duplicate(split):
    train, test = split
    baseline = RetrievalBaseline().fit(train)
    sources = [source_text(r) for r in train]
    unique = [r for r in train if sources.count(source_text(r)) == 1][:20]
    for report in unique:
        query = replace(report, report_id="QUERY", findings="", impression="")
        assert baseline.predict(query) == target_text(report)
    targets = {target_text(r) for r in train}
    predictions = baseline.predict_many(test)
    assert len(predictions) == len(test) and set(predictions) <= targets
    shuffled = RetrievalBaseline().fit(random.Random(3).sample(train, len(train)))
    assert shuffled.predict_many(test[:200]) == predictions[:200]  # ties do not hang on order
    nothing_shared = IUReport("Q", "zzqx", "", "", ("qqzz",))
    assert baseline.predict(nothing_shared) in targets


def test_template_baseline_writes_the_normal_template_or_adds_tag_sentences(split):
    train, test = split
    baseline = TemplateBaseline().fit(train)
    normal = baseline.predict(IUReport("Q", "chest pain", "", "", ("normal",)))
    assert normal == (
        f"FINDINGS: {' '.join(baseline.normal_findings)} IMPRESSION: {baseline.normal_impression}"
    )
    assert baseline.predict(IUReport("Q", "", "", "", ("Never Seen Tag",))) == normal
    enlarged_findings, _ = baseline.draft(IUReport("Q", "", "", "", ("Cardiomegaly/mild",)))
    assert "cardiomegaly" in enlarged_findings.lower()
    assert "heart is normal" not in enlarged_findings.lower()  # the contradicted sentence goes
    predictions = baseline.predict_many(test)
    assert all(p.startswith("FINDINGS: ") and " IMPRESSION: " in p for p in predictions)
    assert all(len(p) > len("FINDINGS:  IMPRESSION: ") for p in predictions)
    assert len(set(predictions)) > 50  # the tags change the text
    shuffled = TemplateBaseline().fit(random.Random(5).sample(train, len(train)))
    assert shuffled.predict_many(test) == predictions


def test_baseline_scores_on_the_real_test_split(split):
    train, test = split
    references = [target_text(r) for r in test]
    for name, baseline in (
        ("retrieval", RetrievalBaseline().fit(train)),
        ("template", TemplateBaseline().fit(train)),
    ):
        scores = report_metrics(references, baseline.predict_many(test))
        print(
            f"IU X-ray test split ({len(test)} reports), {name}: "
            f"BLEU-4 {scores['bleu_4']:.4f}, ROUGE-L {scores['rouge_l_f_beta1.2']:.4f}, "
            f"CIDEr-D {scores['cider_d']:.4f}, finding F1 micro {scores['finding_f1_micro']:.4f}"
        )
        assert 0.01 < scores["bleu_4"] < 1
        assert 0.1 < scores["rouge_l_f_beta1.2"] < 1


def test_iu_reports_never_imports_django_or_torch():
    import subprocess
    import sys

    code = (
        "import contextlib, sys\n"
        "import active_learning.ml.iu_reports as m\n"
        "with contextlib.suppress(FileNotFoundError):\n"
        "    m.default_archive_path()\n"
        "print(sorted(n for n in ('django', 'torch', 'torchxrayvision') if n in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
