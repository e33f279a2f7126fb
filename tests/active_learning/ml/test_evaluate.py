"""Evaluation metrics: COCO box mAP, finding AUROC and calibration, report text metrics and the
rule-based finding extraction. Pure Python: no Django, no database."""

from __future__ import annotations

import csv
import importlib.util
import math
import re
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from active_learning.ml import evaluate
from active_learning.ml.evaluate import (
    FINDING_RULES,
    GroundTruthBox,
    PredictedBox,
    apply_temperature,
    box_map,
    evaluation_table,
    expected_calibration_error,
    finding_f1,
    finding_metrics,
    findings_stated,
    fit_temperature,
    report_metrics,
    tokenize_report,
    write_csv,
)
from active_learning.ml.synthetic import FINDING_CLASSES, generate_case

CLASSES = ["nodule", "effusion", "pneumothorax"]


def _gt(image: str, finding: str, x: float, y: float, w: float = 100, h: float = 100):
    return GroundTruthBox(image, finding, x, y, w, h)


def _pred(image: str, finding: str, x: float, y: float, score: float, w: float = 100, h=100):
    return PredictedBox(image, finding, x, y, w, h, score)


def _coco_ap(hits: list[bool], n_ground_truth: int) -> float:
    """Hand calculation of COCO's AP for detections already sorted by score: precision made
    monotone from the right, read at the first rank whose recall reaches each of the 101 recall
    points 0, 0.01, ..., 1 (0 where recall never gets there), averaged."""
    tp = np.cumsum(hits)
    recall = tp / n_ground_truth
    precision = tp / np.arange(1, len(hits) + 1)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    points = []
    for r in np.linspace(0, 1, 101):
        reached = np.nonzero(recall >= r)[0]
        points.append(envelope[reached[0]] if reached.size else 0.0)
    return float(np.mean(points))


# ----------------------------------------------------------------------------------------- boxes
def test_perfect_predictions_give_map_one():
    truth = [_gt("a", "nodule", 10, 10), _gt("a", "effusion", 300, 300), _gt("b", "nodule", 50, 60)]
    preds = [_pred(b.image_id, b.finding, b.x, b.y, 0.9) for b in truth]
    result = box_map(truth, preds, CLASSES)
    assert result["map_50"] == pytest.approx(1.0)
    assert result["map_50_95"] == pytest.approx(1.0)
    assert result["ap_50_per_class"]["nodule"] == pytest.approx(1.0)
    assert result["ap_50_per_class"]["pneumothorax"] is None  # no ground truth: not scored
    assert (result["n_images"], result["n_ground_truth"], result["n_predictions"]) == (2, 3, 3)


def test_false_positive_scored_above_the_true_positive_halves_ap():
    truth = [_gt("a", "nodule", 10, 10)]
    preds = [_pred("a", "nodule", 400, 400, 0.9), _pred("a", "nodule", 10, 10, 0.8)]
    result = box_map(truth, preds, ["nodule"])
    # recall 0 at precision 0, then recall 1 at precision 1/2: the envelope is 1/2 everywhere
    assert result["map_50"] == pytest.approx(0.5) == pytest.approx(_coco_ap([False, True], 1))


def test_ap_matches_a_hand_calculation_of_101_point_interpolation():
    truth = [_gt("a", "nodule", 0, 0), _gt("a", "nodule", 200, 0), _gt("b", "nodule", 0, 200)]
    hits = [True, False, True, False, True]
    preds = [
        _pred("a", "nodule", 0, 0, 0.9),
        _pred("a", "nodule", 700, 700, 0.8),
        _pred("a", "nodule", 200, 0, 0.7),
        _pred("b", "nodule", 700, 700, 0.6),
        _pred("b", "nodule", 0, 200, 0.5),
    ]
    # recall 1/3, 1/3, 2/3, 2/3, 1 at precision 1, 1/2, 2/3, 1/2, 3/5; envelope 1, 2/3, 2/3, 3/5,
    # 3/5; recall points 0..0.33 (34) read 1, 0.34..0.66 (33) read 2/3, 0.67..1 (34) read 3/5.
    expected = (34 * 1 + 33 * 2 / 3 + 34 * 3 / 5) / 101
    assert _coco_ap(hits, 3) == pytest.approx(expected)
    assert box_map(truth, preds, ["nodule"])["map_50"] == pytest.approx(expected, abs=1e-9)


def test_iou_of_0_6_counts_at_0_5_but_not_at_0_75():
    truth = [_gt("a", "nodule", 0, 0, 100, 100)]
    result = box_map(truth, [_pred("a", "nodule", 0, 0, 0.9, w=60)], ["nodule"])
    assert (result["map_50"], result["map_75"]) == (pytest.approx(1.0), pytest.approx(0.0))
    # IoU 0.62 matches at the thresholds 0.50, 0.55, 0.60: 3 of the 10
    result = box_map(truth, [_pred("a", "nodule", 0, 0, 0.9, w=62)], ["nodule"])
    assert result["map_50_95"] == pytest.approx(0.3)


def test_no_predictions_scores_zero_for_classes_with_ground_truth():
    result = box_map([_gt("a", "nodule", 0, 0), _gt("a", "effusion", 0, 0)], [], CLASSES)
    assert result["map_50"] == 0.0 and result["map_50_95"] == 0.0
    assert result["ap_50_per_class"] == {"nodule": 0.0, "effusion": 0.0, "pneumothorax": None}


def test_class_without_ground_truth_is_left_out_of_the_mean():
    truth = [_gt("a", "nodule", 0, 0)]
    preds = [_pred("a", "nodule", 0, 0, 0.9), _pred("a", "pneumothorax", 300, 300, 0.99)]
    result = box_map(truth, preds, CLASSES)
    assert result["ap_50_per_class"]["pneumothorax"] is None
    assert result["map_50"] == pytest.approx(1.0)
    assert box_map([], preds, CLASSES)["map_50"] is None


def test_images_with_ground_truth_but_no_predictions_lower_recall():
    truth = [_gt(image, "nodule", 0, 0) for image in ("a", "b", "c")]
    result = box_map(truth, [_pred("a", "nodule", 0, 0, 0.9)], ["nodule"])
    assert result["map_50"] == pytest.approx(34 / 101)  # recall points 0..0.33 reach precision 1


def test_false_positive_on_an_image_without_ground_truth_counts():
    truth = [_gt("a", "nodule", 0, 0)]
    preds = [_pred("z", "nodule", 0, 0, 0.95), _pred("a", "nodule", 0, 0, 0.9)]
    assert box_map(truth, preds, ["nodule"])["map_50"] == pytest.approx(0.5)


def test_box_inputs_may_be_dicts_and_pycocotools_stays_quiet(capsys):
    truth = [{"image_id": "a", "finding": "nodule", "x": 0, "y": 0, "width": 50, "height": 40}]
    preds = [dict(truth[0], score=0.5)]
    assert box_map(truth, preds, ["nodule"])["map_50_95"] == pytest.approx(1.0)
    assert capsys.readouterr().out == ""


def test_unknown_finding_or_negative_size_is_rejected():
    with pytest.raises(ValueError, match="not one of the classes"):
        box_map([_gt("a", "mass", 0, 0)], [], ["nodule"])
    with pytest.raises(ValueError, match="non-negative"):
        box_map([_gt("a", "nodule", 0, 0, w=-1)], [], ["nodule"])


def test_image_key_names_case_instance_and_frame():
    assert evaluate.image_key(12, "1.2.3", 4) == "12/1.2.3/4"


# -------------------------------------------------------------------------------------- findings
def test_auroc_matches_sklearn_and_a_hand_example():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, 200), 0, 1)
    labels = {"nodule": y.tolist(), "effusion": [0, 0, 1, 1] * 50}
    probs = {"nodule": p.tolist(), "effusion": [0.1, 0.4, 0.35, 0.8] * 50}
    result = finding_metrics(labels, probs)
    assert result["auroc"]["nodule"] == pytest.approx(roc_auc_score(y, p))
    # positives (0.35, 0.8) against negatives (0.1, 0.4): 3 of 4 pairs ranked right
    assert result["auroc"]["effusion"] == pytest.approx(0.75)
    assert result["auroc_macro"] == pytest.approx((roc_auc_score(y, p) + 0.75) / 2)


def test_class_with_one_label_value_has_no_auroc_and_is_left_out_of_the_macro():
    labels = {"nodule": [0, 1, 0, 1], "pneumothorax": [0, 0, 0, 0]}
    probs = {"nodule": [0.2, 0.7, 0.3, 0.9], "pneumothorax": [0.1, 0.2, 0.1, 0.3]}
    result = finding_metrics(labels, probs, temperature=1.0)
    assert result["auroc"]["pneumothorax"] is None
    assert result["auroc_macro"] == pytest.approx(1.0)
    assert result["temperature_fitted_here"] is False


def test_ece_of_a_tiny_example():
    # bin [0.1, 0.2): mean p 0.1, frequency 1/2 -> 0.4 * 2/4; bin [0.9, 1]: 0.9 vs 1 -> 0.1 * 2/4
    assert expected_calibration_error([0.1, 0.1, 0.9, 0.9], [0, 1, 1, 1]) == pytest.approx(0.25)
    assert expected_calibration_error([1.0, 0.0], [1, 0]) == pytest.approx(0.0)


def _synthetic_scores(sharpen: float, n: int = 20000, seed: int = 1):
    rng = np.random.default_rng(seed)
    true_p = rng.uniform(0.02, 0.98, n)
    y = (rng.uniform(size=n) < true_p).astype(int)
    logit = np.log(true_p / (1 - true_p)) * sharpen
    return 1 / (1 + np.exp(-logit)), y


def test_temperature_scaling_fixes_overconfident_probabilities():
    p, y = _synthetic_scores(sharpen=3.0)
    t = fit_temperature(p, y)
    assert t == pytest.approx(3.0, rel=0.1)
    result = finding_metrics({"effusion": y.tolist()}, {"effusion": p.tolist()}, temperature=t)
    assert result["nll_after"] < result["nll_before"] - 0.05
    assert result["ece_after"]["effusion"] < result["ece_before"]["effusion"] / 3
    assert result["ece_after_macro"] < 0.02


def test_temperature_leaves_calibrated_probabilities_near_one():
    p, y = _synthetic_scores(sharpen=1.0)
    assert fit_temperature(p, y) == pytest.approx(1.0, abs=0.07)


def test_fitted_temperature_is_the_nll_minimum_and_logits_give_the_same_fit():
    p, y = _synthetic_scores(sharpen=0.5, n=3000)
    t = fit_temperature(p, y)
    z = np.log(p / (1 - p))

    def nll(temperature: float) -> float:
        q = apply_temperature(p, temperature)
        return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))

    assert all(nll(t) <= nll(g) + 1e-12 for g in np.geomspace(0.1, 10, 200))
    assert fit_temperature(z, y, from_logits=True) == pytest.approx(t, rel=1e-6)
    assert fit_temperature({"a": p[:10].tolist()}, {"a": y[:10].tolist()}) > 0


def test_apply_temperature_keeps_layout_and_rejects_bad_values():
    probs = {"nodule": [0.2, 0.5, 0.9]}
    assert apply_temperature(probs, 1.0)["nodule"] == pytest.approx([0.2, 0.5, 0.9])
    softened = apply_temperature(np.array([[0.9, 0.1]]), 2.0)
    assert softened.shape == (1, 2) and 0.5 < softened[0, 0] < 0.9
    with pytest.raises(ValueError):
        apply_temperature(probs, 0.0)
    with pytest.raises(ValueError):
        apply_temperature([1.5], 1.0)
    with pytest.raises(ValueError):
        fit_temperature([0.5, 0.5], [0, 2])


# --------------------------------------------------------------------------------------- reports
def test_tokenize_report_lowercases_and_splits_punctuation():
    text = "Small LEFT pleural effusion; 1.2 cm well-circumscribed nodule (XXXX)."
    assert tokenize_report(text) == [
        "small", "left", "pleural", "effusion", "1.2", "cm", "well-circumscribed", "nodule", "xxxx"
    ]  # fmt: skip
    assert tokenize_report("No effusion.", keep_punctuation=True) == ["no", "effusion", "."]


REPORTS = [
    "The heart size is normal. No pleural effusion. No pneumothorax.",
    "There is a small left pleural effusion. The cardiac silhouette is enlarged.",
    "Patchy airspace consolidation in the right lower lobe with air bronchograms.",
    "Right apical pneumothorax. The lungs are otherwise clear.",
]


def test_identical_reports_score_one_and_unrelated_ones_near_zero():
    same = report_metrics(REPORTS, REPORTS)
    assert same["bleu_4"] == pytest.approx(1.0, abs=1e-6)
    assert same["rouge_l_f_beta1.2"] == pytest.approx(1.0)
    assert same["cider_d"] == pytest.approx(10.0, rel=1e-6)  # CIDEr-D is scaled by 10
    assert same["finding_f1_micro"] == pytest.approx(1.0)
    unrelated = ["Quantum chromodynamics explains hadron masses."] * 2 + ["Dogs bark loudly."] * 2
    other = report_metrics(REPORTS, unrelated)
    assert other["bleu_4"] < 1e-3 and other["rouge_l_f_beta1.2"] < 0.05 and other["cider_d"] < 0.05


def test_rouge_l_is_the_lcs_f_measure_with_beta_1_2():
    # LCS of "a b c d" and "a c d e f" is 3: precision 3/5, recall 3/4
    p, r, beta = 3 / 5, 3 / 4, 1.2
    expected = (1 + beta**2) * p * r / (r + beta**2 * p)
    result = report_metrics(["a b c d"], ["a c d e f"])
    assert result["rouge_l_f_beta1.2"] == pytest.approx(expected)


def test_report_metrics_rejects_mismatched_lists():
    with pytest.raises(ValueError):
        report_metrics(["a"], ["a", "b"])
    with pytest.raises(ValueError):
        report_metrics([], [])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("No pneumothorax.", {"pneumothorax": "absent"}),
        ("There is a small left pleural effusion.", {"effusion": "present"}),
        ("No focal consolidation or effusion.", {"consolidation": "absent", "effusion": "absent"}),
        (
            "No pneumothorax, but a small effusion.",
            {"pneumothorax": "absent", "effusion": "present"},
        ),
        (
            "Negative for pneumothorax. Without effusion.",
            {"pneumothorax": "absent", "effusion": "absent"},
        ),
        ("Enlarged cardiac silhouette.", {"cardiomegaly": "present"}),
        ("Heart size is not enlarged.", {"cardiomegaly": "absent"}),
        ("The heart size is normal.", {"cardiomegaly": "absent"}),
        ("Bibasilar airspace disease.", {"consolidation": "present"}),
        ("Right lower lobe opacity.", {"consolidation": "present"}),
        ("Pneumothorax is no longer seen.", {"pneumothorax": "absent"}),
        ("Pneumothorax cannot be excluded.", {"pneumothorax": "present"}),
        ("No change in the left pleural effusion.", {"effusion": "present"}),
        ("Small pericardial effusion. No mass effect.", {}),
        ("A 1.2 cm nodule. No mass.", {"nodule": "present", "mass": "absent"}),
        ("Moderate right hydropneumothorax.", {"pneumothorax": "present"}),
    ],
)
def test_findings_stated_reads_negation_and_synonyms(text, expected):
    assert findings_stated(text, list(FINDING_RULES)) == expected


def test_findings_stated_matches_an_unknown_class_by_its_name():
    assert findings_stated("No hiatal hernia.", ["hiatal_hernia"]) == {"hiatal_hernia": "absent"}


def test_finding_f1_hand_example():
    references = ["Cardiomegaly. Small left effusion.", "Right pneumothorax.", "No effusion."]
    candidates = ["Cardiomegaly. No effusion.", "Right pneumothorax. Cardiomegaly.", "Effusion."]
    # cardiomegaly tp 1 fp 1; effusion fn 1 fp 1; pneumothorax tp 1
    classes = ["cardiomegaly", "effusion", "pneumothorax", "mass"]
    result = finding_f1(references, candidates, classes)
    assert result["finding_f1_per_class"] == {
        "cardiomegaly": pytest.approx(2 / 3),
        "effusion": pytest.approx(0.0),
        "pneumothorax": pytest.approx(1.0),
        "mass": None,
    }
    assert result["finding_f1_micro"] == pytest.approx(2 * 2 / (2 * 2 + 2 + 1))
    assert result["finding_f1_macro"] == pytest.approx((2 / 3 + 0 + 1) / 3)


def test_findings_stated_recovers_the_truth_of_synthetic_reports():
    for index in range(150):
        case = generate_case(seed=11, index=index, size=64)
        text = f"{case.report['findings']} {case.report['impression']}"
        stated = findings_stated(text, FINDING_CLASSES)
        assert {c: stated.get(c) == "present" for c in FINDING_CLASSES} == case.findings, text


def _iu_reports(limit: int) -> list[dict[str, str]]:
    spec = importlib.util.find_spec("torchxrayvision")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("torchxrayvision is not installed")
    tarball = Path(spec.submodule_search_locations[0]) / "data" / "NLMCXR_reports.tgz"
    if not tarball.exists():
        pytest.skip(f"{tarball} is missing")
    reports = []
    with tarfile.open(tarball) as archive:
        for member in archive:
            handle = archive.extractfile(member) if member.isfile() else None
            if handle is None:
                continue
            root = ET.fromstring(handle.read())  # noqa: S314 (archive shipped in the wheel)
            sections = {a.get("Label", ""): a.text or "" for a in root.iter("AbstractText")}
            if sections.get("FINDINGS", "").strip() and sections.get("IMPRESSION", "").strip():
                reports.append(sections)
            if len(reports) == limit:
                break
    return reports


def test_findings_stated_on_real_iu_findings_reads_negated_pneumothorax_as_absent():
    # IU radiologists state pertinent negatives ("No pneumothorax or pleural effusion.") in
    # FINDINGS; IMPRESSION is mostly a summary ("No acute cardiopulmonary abnormality.") and names
    # pneumothorax in only ~1 % of reports, too few to test the negation rules on.
    findings = [r["FINDINGS"] for r in _iu_reports(600)]
    negated = [t for t in findings if re.search(r"\bno\b[^.]*\bpneumothorax", t, re.I)]
    assert len(negated) >= 100
    absent = [findings_stated(t, ["pneumothorax"]).get("pneumothorax") == "absent" for t in negated]
    assert np.mean(absent) >= 0.9
    mentioned = [findings_stated(t, list(FINDING_RULES)) for t in findings]
    assert sum(len(m) for m in mentioned) > 100  # the rules do fire on real text


def test_report_metrics_of_real_iu_reports_against_themselves_are_perfect():
    texts = [f"{r['FINDINGS']} {r['IMPRESSION']}" for r in _iu_reports(300)]
    result = report_metrics(texts, texts)
    assert result["bleu_4"] == pytest.approx(1.0, abs=1e-6)
    assert result["rouge_l_f_beta1.2"] == pytest.approx(1.0)
    assert result["cider_d"] > 9.0
    assert result["finding_f1_micro"] == pytest.approx(1.0)
    shifted = report_metrics(texts, texts[1:] + texts[:1])  # each against another report
    assert shifted["bleu_4"] < 0.5 and shifted["cider_d"] < result["cider_d"] / 3


# ---------------------------------------------------------------------------------------- output
def test_table_and_csv_show_every_run_and_metric(tmp_path):
    results = {
        "image only": {"boxes": {"map_50": 0.5, "ap_50_per_class": {"nodule": None}}},
        "image + text + labs": {"boxes": {"map_50": 0.61234}, "reports": {"n_reports": 3}},
    }
    table = evaluation_table(results)
    lines = table.splitlines()
    assert "image only" in lines[0] and "image + text + labs" in lines[0]
    row = next(line for line in lines if line.startswith("boxes.map_50 "))
    assert "0.5000" in row and "0.6123" in row
    assert "n/a" in next(line for line in lines if "ap_50_per_class.nodule" in line)
    path = write_csv(results, tmp_path / "evaluation.csv")
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["metric", "image only", "image + text + labs"]
    by_name = {r[0]: r[1:] for r in rows[1:]}
    assert by_name["boxes.map_50"] == ["0.5", "0.61234"]
    assert by_name["boxes.ap_50_per_class.nodule"] == ["", ""]
    assert by_name["reports.n_reports"] == ["", "3"]
    assert math.isclose(float(by_name["boxes.map_50"][1]), 0.61234)


def test_evaluate_never_imports_django_or_torch():
    import subprocess
    import sys

    code = (
        "import sys, active_learning.ml.evaluate; "
        "print(sorted(m for m in ('django', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_evaluation_scores_the_served_probabilities_and_the_models_own_before_calibration():
    """A model that serves mixed, recalibrated probabilities (the detector's evidence heard): its
    AUROC and "ECE after" are those of what it serves, its "ECE before" that of its own
    uncalibrated output, never the served value with a temperature undone."""
    from active_learning.ml.interface import CasePrediction, LabelledCase

    rng = np.random.default_rng(0)
    truth = rng.random(200) < 0.3
    served = np.where(truth, 0.8, 0.1)  # separates, calibrated-ish
    own = np.where(rng.random(200) < 0.5, 0.95, 0.05)  # blind and overconfident
    TEXT = "the lungs are clear"

    class Mixed:
        finding_classes = ["nodule"]
        temperature = 2.0

        def predict(self, cases, uncertainty=None):
            out = []
            for case in cases:
                i = int(case.case_id)
                out.append(CasePrediction(
                    case.case_id, [], {"nodule": float(served[i])}, {}, {"findings": TEXT}, [], {},
                    0.0,
                    uncalibrated_findings={"nodule": float(own[i])},
                ))  # fmt: skip
            return out

    cases = [
        LabelledCase(
            str(i),
            np.zeros((1, 1)),
            boxes=[],
            findings={"nodule": bool(truth[i])},
            report={"findings": TEXT},
        )
        for i in range(200)
    ]
    findings = evaluate.evaluate_model(Mixed(), cases)["findings"]  # type: ignore[arg-type]
    assert findings["auroc"]["nodule"] == 1.0 and findings["auroc_macro"] == 1.0
    y = truth.astype(int)
    assert findings["ece_after_macro"] == pytest.approx(expected_calibration_error(served, y, 10))
    assert findings["ece_before_macro"] == pytest.approx(expected_calibration_error(own, y, 10))
    assert findings["ece_before_macro"] > 0.4 > findings["ece_after_macro"]
    assert findings["temperature"] == 2.0
