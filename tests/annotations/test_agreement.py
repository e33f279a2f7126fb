"""Reader agreement: box F1, kappa, report similarity, many readers and the VinDr-CXR command.

Every expected figure is computed by hand in the comments. No database: the command reads files.
"""

from __future__ import annotations

import csv
import gzip
import importlib.machinery
import importlib.util
import io
import math
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotations import agreement
from annotations.agreement import (
    VINDR_CLASSES,
    BoxAgreement,
    BoxCounts,
    aggregate_box_agreement,
    box_f1,
    finding_kappa,
    fleiss_kappa,
    multi_reader_agreement,
    read_vindr,
    report_similarity,
)
from tests.support.tools import require

SQUARE = ("nodule", 0.0, 0.0, 10.0, 10.0)


def shifted(dx: float, finding: str = "nodule") -> agreement.Box:
    # Two 10 x 10 squares dx apart overlap (10 - dx) * 10: IoU = (10 - dx) / (10 + dx).
    return (finding, dx, 0.0, 10.0, 10.0)


@pytest.fixture
def no_warnings() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# ----------------------------------------------------------------------------------- box F1
def test_identical_boxes_agree_perfectly() -> None:
    boxes = [SQUARE, ("effusion", 100.0, 100.0, 50.0, 40.0)]
    result = box_f1(boxes, list(reversed(boxes)))
    assert (result.matched, result.boxes_a, result.boxes_b) == (2, 2, 2)
    assert (result.precision, result.recall, result.f1) == (1.0, 1.0, 1.0)
    assert result.per_class == {"effusion": BoxCounts(1, 1, 1), "nodule": BoxCounts(1, 1, 1)}


@pytest.mark.parametrize(
    ("dx", "matched"),
    [
        (3.0, 1),  # IoU 7 / 13 = 0.538
        (10.0 / 3.0, 1),  # IoU exactly 0.5: the threshold is inclusive
        (4.0, 0),  # IoU 6 / 14 = 0.429
    ],
)
def test_shifted_box_matches_only_at_or_above_the_iou_threshold(dx: float, matched: int) -> None:
    result = box_f1([SQUARE], [shifted(dx)])
    assert result.matched == matched
    assert result.f1 == matched
    assert box_f1([SQUARE], [shifted(dx)], iou_threshold=0.3).matched == 1


def test_same_box_with_another_finding_matches_only_without_classes() -> None:
    other = shifted(0.0, finding="mass")
    by_class = box_f1([SQUARE], [other])
    assert (by_class.matched, by_class.f1) == (0, 0.0)
    assert by_class.per_class == {"mass": BoxCounts(0, 0, 1), "nodule": BoxCounts(0, 1, 0)}
    ignoring = box_f1([SQUARE], [other], by_class=False)
    assert (ignoring.matched, ignoring.f1, ignoring.per_class) == (1, 1.0, {})


def test_one_reader_without_boxes_scores_zero() -> None:
    result = box_f1([SQUARE, shifted(50.0)], [])
    assert (result.matched, result.boxes_a, result.boxes_b) == (0, 2, 0)
    assert (result.precision, result.recall, result.f1) == (0.0, 0.0, 0.0)
    assert box_f1([], [SQUARE]).f1 == 0.0


def test_both_readers_without_boxes_agree_perfectly() -> None:
    result = box_f1([], [])
    assert (result.matched, result.precision, result.recall, result.f1) == (0, 1.0, 1.0, 1.0)


def test_precision_and_recall_take_reader_a_as_reference() -> None:
    # A drew two boxes, B found one of them: precision 1/1, recall 1/2, F1 2 * 1 / 3.
    result = box_f1([SQUARE, shifted(50.0)], [shifted(1.0)])
    assert (result.precision, result.recall) == (1.0, 0.5)
    assert result.f1 == pytest.approx(2 / 3)


def test_assignment_is_optimal_where_greedy_matching_would_lose_a_pair() -> None:
    # A1 [0, 10] overlaps B1 [1, 11] best (IoU 9/11), but then A2 [4, 14] is left with B2 [-3, 7]
    # (IoU 3/17). Pairing A1-B2 (7/13) and A2-B1 (7/13) matches both.
    a = [shifted(0.0), shifted(4.0)]
    b = [shifted(1.0), shifted(-3.0)]
    assert box_f1(a, b).matched == 2


def test_negative_box_size_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        box_f1([("nodule", 0.0, 0.0, -1.0, 5.0)], [SQUARE])


def test_aggregation_is_micro_over_images_and_per_class() -> None:
    images = [
        box_f1([SQUARE, ("effusion", 0.0, 50.0, 20.0, 20.0)], [shifted(1.0), shifted(30.0)]),
        box_f1([shifted(70.0)], []),
    ]
    total = aggregate_box_agreement(images)
    # Matches 1, A's boxes 3, B's boxes 2: F1 2 * 1 / 5 (per-image mean would be (0.5 + 0) / 2).
    assert isinstance(total, BoxAgreement)
    assert (total.matched, total.boxes_a, total.boxes_b) == (1, 3, 2)
    assert total.f1 == pytest.approx(0.4)
    assert total.per_class == {"effusion": BoxCounts(0, 1, 0), "nodule": BoxCounts(1, 2, 2)}
    assert total.per_class["nodule"].f1 == pytest.approx(0.5)
    assert aggregate_box_agreement([]).f1 == 1.0


# ------------------------------------------------------------------------------------- kappa
def test_kappa_matches_the_textbook_example(no_warnings: None) -> None:
    # 50 cases: both yes 20, A yes / B no 5, A no / B yes 10, both no 15. p_o = 35/50 = 0.7,
    # p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5, kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4.
    pairs: list[tuple[agreement.Read, agreement.Read]] = (
        [("present", True)] * 20 + [(True, "absent")] * 5 + [(False, "present")] * 10
    )
    pairs += [("absent", False)] * 15 + [("uncertain", True), (None, False), (True, None)]
    result = finding_kappa({"effusion": pairs})["effusion"]
    assert result.kappa == pytest.approx(0.4)
    assert (result.cases, result.excluded, result.undefined) == (50, 3, "")
    assert result.observed_agreement == pytest.approx(0.7)


def test_kappa_of_constant_labels_is_reported_as_undefined(no_warnings: None) -> None:
    results = finding_kappa(
        {
            "same": [("present", "present")] * 4,
            "opposite": [("present", "absent")] * 4,
            "none": [("uncertain", "present")],
        }
    )
    assert math.isnan(results["same"].kappa)
    assert results["same"].undefined == "both readers read every case present"
    assert results["same"].observed_agreement == 1.0
    assert results["opposite"].kappa == 0.0  # p_o = 0, p_e = 1 * 0 + 0 * 1 = 0
    assert math.isnan(results["none"].kappa)
    assert (results["none"].cases, results["none"].excluded) == (0, 1)
    assert results["none"].undefined == "no case read by both readers"


def test_unknown_read_is_refused() -> None:
    with pytest.raises(ValueError, match="maybe"):
        finding_kappa({"effusion": [("maybe", "present")]})


def test_fleiss_kappa_matches_the_textbook_example() -> None:
    # Fleiss (1971) as worked on Wikipedia: 10 cases, 14 raters, 5 categories, kappa 0.210.
    counts = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    assert fleiss_kappa(counts) == pytest.approx(0.2099, abs=1e-4)
    assert math.isnan(fleiss_kappa([[3, 0], [3, 0]]))
    with pytest.raises(ValueError, match="same"):
        fleiss_kappa([[3, 0], [1, 0]])


# ----------------------------------------------------------------------------------- reports
def test_identical_reports_are_similar_whatever_case_and_punctuation() -> None:
    same = report_similarity(
        "Heart size is normal. No effusion.", "heart size is normal no effusion"
    )
    assert (same.rouge_l_f1, same.word_edit_distance) == (1.0, 0.0)
    assert report_similarity("", "  ") == agreement.ReportSimilarity(1.0, 0.0)


def test_unrelated_reports_share_nothing() -> None:
    result = report_similarity("Cardiomegaly.", "Lungs are clear bilaterally.")
    assert (result.rouge_l_f1, result.word_edit_distance) == (0.0, 1.0)
    assert report_similarity("Clear lungs.", "") == agreement.ReportSimilarity(0.0, 1.0)


def test_partly_different_reports_score_in_between() -> None:
    # LCS "pleural effusion" 2 of 3 words each: ROUGE-L 2 * 2 / 6; one substitution in 3 words.
    result = report_similarity("No pleural effusion.", "Small pleural effusion.")
    assert result.rouge_l_f1 == pytest.approx(2 / 3)
    assert result.word_edit_distance == pytest.approx(1 / 3)
    # LCS 2, lengths 4 and 2: 2 * 2 / 6; two deletions over 4 words.
    result = report_similarity("left basal atelectasis noted", "left atelectasis")
    assert (result.rouge_l_f1, result.word_edit_distance) == (pytest.approx(2 / 3), 0.5)


# ------------------------------------------------------------------------------- many readers
def test_many_readers_pool_every_reader_pair() -> None:
    # Image 1: R1 and R2 draw the same nodule, R3 nothing; image 2: all normal.
    # Box pairs: R1-R2 1 match of 1 + 1 boxes, R1-R3 and R2-R3 0 of 1 + 0: F1 2 * 1 / 4.
    # Presence pairs in both orders: 2 x (1, 1), 4 mixed, 6 x (0, 0): p_o = 8/12,
    # marginals 1/3 present: p_e = 1/9 + 4/9, kappa = (2/3 - 5/9) / (4/9) = 0.25.
    reads = {
        "image-1": {"R1": [SQUARE], "R2": [shifted(1.0)], "R3": []},
        "image-2": {"R1": [], "R2": [], "R3": []},
        "image-3": {"R1": []},  # a single reader: no pair
    }
    result = multi_reader_agreement(reads, classes=["nodule", "mass"])
    nodule = result.per_class["nodule"]
    assert (result.images, result.reader_pairs) == (3, 6)
    # Pairs in reader order (R1-R2, R1-R3, R2-R3): the first reader's boxes 1 + 1 + 1.
    assert (nodule.images, nodule.boxes, nodule.box) == (1, 2, BoxCounts(1, 3, 1))
    assert nodule.box.f1 == pytest.approx(0.5)
    assert nodule.kappa.kappa == pytest.approx(0.25)
    assert nodule.kappa.cases == 6
    # The pooled symmetric kappa is Fleiss' kappa: (absent, present) counts per image.
    assert nodule.kappa.kappa == pytest.approx(fleiss_kappa([[1, 2], [3, 0]]))
    mass = result.per_class["mass"]
    assert (mass.images, mass.boxes) == (0, 0)
    assert math.isnan(mass.kappa.kappa)
    assert result.mean_kappa == pytest.approx(0.25)
    assert result.mean_box_f1 == pytest.approx(0.5)
    assert result.any_finding.kappa.kappa == pytest.approx(0.25)


# ------------------------------------------------------------------------------------ VinDr
VINDR_HEADER = "image_id,class_name,class_id,rad_id,x_min,y_min,x_max,y_max\n"
VINDR_ROWS = (
    "i1,Nodule/Mass,8,R1,10.0,10.0,30.0,30.0\n"
    "i1,Nodule/Mass,8,R2,12.0,10.0,32.0,30.0\n"  # IoU 360 / 440 with R1's box
    "i1,No finding,14,R3,,,,\n"
    "i2,No finding,14,R1,,,,\n"
    "i2,No finding,14,R2,,,,\n"
    "i2,No finding,14,R3,,,,\n"
    "i3,Cardiomegaly,3,R1,0,0,5,5\n"
    "i3,No finding,14,R2,,,,\n"
    "i3,No finding,14,R3,,,,\n"
)


def write_vindr(path: Path, rows: str = VINDR_ROWS) -> Path:
    with gzip.open(path, "wt", newline="") as handle:
        handle.write(VINDR_HEADER + rows)
    return path


def test_read_vindr_groups_boxes_by_image_and_reader(tmp_path: Path) -> None:
    reads = read_vindr(write_vindr(tmp_path / "vindr.csv.gz"), limit=2)
    assert reads == {
        "i1": {
            "R1": [("Nodule/Mass", 10.0, 10.0, 20.0, 20.0)],
            "R2": [("Nodule/Mass", 12.0, 10.0, 20.0, 20.0)],
            "R3": [],
        },
        "i2": {"R1": [], "R2": [], "R3": []},
    }
    assert len(read_vindr(tmp_path / "vindr.csv.gz")) == 3


def test_read_vindr_names_the_line_of_a_box_without_coordinates(tmp_path: Path) -> None:
    path = write_vindr(tmp_path / "bad.csv.gz", VINDR_ROWS + "i4,Nodule/Mass,8,R1,,,,\n")
    with pytest.raises(ValueError, match="line 11"):
        read_vindr(path)


def run_command(*args: str) -> str:
    out = io.StringIO()
    call_command("reader_agreement", *args, stdout=out)
    return out.getvalue()


def table_rows(output: str) -> dict[str, list[str]]:
    """``{finding: [images, boxes, box F1, kappa]}`` from the printed table."""
    rows = {}
    for line in output.splitlines():
        name, values = line[:22].strip(), line[22:].split()
        if name in (*VINDR_CLASSES, "any finding") and len(values) == 4:
            rows[name] = values
    return rows


def test_command_prints_hand_computed_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_vindr(tmp_path / agreement.VINDR_FILE)
    module = "annotations.management.commands.reader_agreement"
    monkeypatch.setattr(f"{module}.default_vindr_path", lambda: path)
    output = run_command("--vindr", "--limit", "2", "--csv", str(tmp_path / "table.csv"))
    rows = table_rows(output)
    assert "2 images, 6 reader pairs" in output
    assert set(rows) == {*VINDR_CLASSES, "any finding"}
    # As in test_many_readers_pool_every_reader_pair: F1 0.5, kappa 0.25; i3 is past the limit.
    assert rows["Nodule/Mass"] == ["1", "2", "0.500", "0.250"]
    assert rows["Cardiomegaly"] == ["0", "0", "n/a", "NaN"]
    assert rows["any finding"] == ["1", "2", "0.500", "0.250"]
    with (tmp_path / "table.csv").open(newline="") as handle:
        written = {row["finding"]: row for row in csv.DictReader(handle)}
    assert written["Nodule/Mass"]["box_f1"] == "0.500"
    assert written["Nodule/Mass"]["kappa_reader_pairs"] == "6"
    assert written["Atelectasis"]["kappa"] == "NaN"
    assert table_rows(run_command("--vindr"))["Cardiomegaly"][:2] == ["1", "1"]


def fake_spec(location: Path | None) -> Any:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        if name != "torchxrayvision":
            return real(name, *args)
        if location is None:
            return None
        spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
        assert spec.submodule_search_locations is not None
        spec.submodule_search_locations.append(str(location))
        return spec

    return find_spec


@pytest.mark.parametrize(
    ("installed", "message"),
    [(False, "torchxrayvision wheel, which is not installed"), (True, "is missing")],
)
def test_command_names_the_missing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, installed: bool, message: str
) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", fake_spec(tmp_path if installed else None))
    with pytest.raises(CommandError, match=message) as error:
        run_command("--vindr")
    assert agreement.VINDR_FILE in str(error.value)


def test_command_needs_a_source() -> None:
    with pytest.raises(CommandError, match="--vindr"):
        run_command()


@pytest.fixture(scope="module")
def vindr_path() -> Path:
    try:
        path = agreement.default_vindr_path()
    except FileNotFoundError:
        path = None
    if path is None or not path.is_file():
        require(["torchxrayvision 1.5.7 (requirements-extra.txt)"], "the VinDr-CXR box list")
    assert path is not None
    return path


def test_vindr_command_prints_a_row_per_class_with_figures_in_range(vindr_path: Path) -> None:
    output = run_command("--vindr", "--limit", "300")
    rows = table_rows(output)
    assert "300 images, 900 reader pairs" in output
    assert set(rows) == {*VINDR_CLASSES, "any finding"}
    for finding, (images, boxes, f1, kappa) in rows.items():
        assert 0 <= int(images) <= 300 and int(boxes) >= int(images), finding
        assert f1 == "n/a" or 0.0 <= float(f1) <= 1.0, finding
        assert kappa == "NaN" or -1.0 <= float(kappa) <= 1.0, finding
    # Common large findings: readers agree on presence far above chance.
    assert float(rows["Cardiomegaly"][3]) > 0.5
    assert float(rows["Aortic enlargement"][2]) > 0.5


def test_vindr_pooled_pairwise_kappa_equals_fleiss_kappa(vindr_path: Path) -> None:
    reads = read_vindr(vindr_path, limit=300)
    result = multi_reader_agreement(reads, classes=VINDR_CLASSES)
    for finding, row in result.per_class.items():
        present = np.array(
            [[any(b[0] == finding for b in boxes) for boxes in r.values()] for r in reads.values()]
        ).sum(axis=1)
        expected = fleiss_kappa(np.stack([3 - present, present], axis=1))
        assert row.kappa.kappa == pytest.approx(expected, nan_ok=True), finding
