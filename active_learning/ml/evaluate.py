"""Evaluation of suggestion models: boxes, case-level findings and report drafts.

Pure Python (numpy, pycocotools, pycocoevalcap, scikit-learn); never imports Django or torch, so
the model code, the retraining cycle and the benchmarks can all call it. The metrics live in
:mod:`active_learning.ml.metrics` (boxes, findings, text) and :mod:`active_learning.ml.calibration`;
this module gathers them under one name and prints and saves the results:

- Boxes: :func:`box_map`, :func:`froc`, :func:`shown_box_metrics`, :func:`match_candidates`.
- Findings: :func:`finding_metrics`, :func:`fit_temperature`, :func:`apply_temperature`,
  :func:`expected_calibration_error`.
- Reports: :func:`report_metrics`, :func:`finding_f1`, :func:`tokenize_report`,
  :func:`rouge_l_f1`, :func:`edit_distance`.
- :func:`evaluation_table` and :func:`write_csv` print and save the results of one or more runs.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from active_learning.ml.calibration import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
)
from active_learning.ml.interface import LabelledCase, SuggestionModel, UncertaintyOptions
from active_learning.ml.metrics.boxes import (
    FROC_RATES,
    BoxLike,
    GroundTruthBox,
    MatchResult,
    PredictedBox,
    box_map,
    froc,
    image_key,
    match_candidates,
    shown_box_metrics,
)
from active_learning.ml.metrics.findings import finding_metrics
from active_learning.ml.metrics.text import finding_f1, report_metrics
from active_learning.ml.report_findings import FINDING_RULES, findings_stated
from medloop.metrics.text import edit_distance, lcs_length, rouge_l_f1, tokenize_report

__all__ = [
    "FINDING_RULES",
    "FROC_RATES",
    "BoxLike",
    "GroundTruthBox",
    "MatchResult",
    "PredictedBox",
    "apply_temperature",
    "box_map",
    "edit_distance",
    "evaluate_model",
    "evaluation_table",
    "expected_calibration_error",
    "finding_f1",
    "finding_metrics",
    "findings_stated",
    "fit_temperature",
    "froc",
    "image_key",
    "lcs_length",
    "match_candidates",
    "report_metrics",
    "rouge_l_f1",
    "shown_box_metrics",
    "tokenize_report",
    "write_csv",
]


def _flatten(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _rows(results: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    columns = {run: _flatten(metrics) for run, metrics in results.items()}
    names: dict[str, None] = {}
    for flat in columns.values():
        names.update(dict.fromkeys(flat))
    return list(names), list(columns)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def evaluation_table(results: Mapping[str, Mapping[str, Any]]) -> str:
    """A plain-text table: one column per run (``results`` maps a run name, e.g. "image only", to
    its metrics; nested dicts become dotted row names such as ``boxes.ap_50_per_class.nodule``),
    one row per metric in first-seen order, floats to 4 decimals, missing or ``None`` as "n/a".
    For a single run pass ``{"model": metrics}``."""
    names, runs = _rows(results)
    flat = {run: _flatten(results[run]) for run in runs}
    body = [["metric", *runs]] + [[n, *(_cell(flat[r].get(n)) for r in runs)] for n in names]
    widths = [max(len(row[i]) for row in body) for i in range(len(body[0]))]
    lines = [
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)  # metric names left, values right
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in body
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_csv(results: Mapping[str, Mapping[str, Any]], path: Path | str) -> Path:
    """The :func:`evaluation_table` layout as CSV (header ``metric,<run>...``), values at full
    precision, ``None``/NaN as an empty cell. Returns the path written."""
    names, runs = _rows(results)
    flat = {run: _flatten(results[run]) for run in runs}
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["metric", *runs])
        for name in names:
            cells = []
            for run in runs:
                value = flat[run].get(name)
                missing = value is None or (isinstance(value, float) and math.isnan(value))
                cells.append("" if missing else repr(value) if isinstance(value, float) else value)
            writer.writerow([name, *cells])
    return path


# ---------------------------------------------------------------------------------- a model
def _logit(p: float) -> float:
    p = min(max(p, 1e-7), 1 - 1e-7)
    return math.log(p / (1 - p))


def evaluate_model(
    model: SuggestionModel, cases: Iterable[LabelledCase], *, batch_size: int = 16
) -> dict[str, Any]:
    """The validation metrics of ``model`` on ``cases`` (streamed, predicted ``batch_size`` at a
    time): ``boxes`` (mAP@0.5 and @[.5:.95] from every candidate, AP@0.5 per class, FROC, the
    shown boxes' precision and recall), ``findings`` (AUROC and ECE of the served
    probabilities, "ECE after"; ECE of the model's own output before calibration, "ECE
    before"), ``reports`` (BLEU-4, ROUGE-L, CIDEr-D, finding F1), ``cases`` and
    ``seconds_per_case``. What :meth:`SuggestionModel.evaluate` returns, before its operating
    points."""
    classes = list(model.finding_classes)
    truth_boxes, predicted_boxes, shown_boxes, image_ids = [], [], [], []
    labels: dict[str, list[int]] = {c: [] for c in classes}
    served: dict[str, list[float]] = {c: [] for c in classes}
    raw: dict[str, list[float]] = {c: [] for c in classes}
    references, candidates = [], []
    temperature = float(getattr(model, "temperature", 1.0))
    chunk: list[LabelledCase] = []
    n_cases = 0
    seconds = 0.0

    def flush() -> None:
        nonlocal seconds
        started = time.perf_counter()
        predictions = model.predict(chunk, uncertainty=UncertaintyOptions(box_stability=False))
        seconds += time.perf_counter() - started
        for case, prediction in zip(chunk, predictions, strict=True):
            for box in case.boxes:
                truth_boxes.append(
                    GroundTruthBox(case.case_id, box.finding, box.x, box.y, box.width,
                                      box.height)
                )  # fmt: skip
            image_ids.append(case.case_id)
            # mAP and FROC from every candidate (a model without candidates gives its boxes);
            # the shown boxes only for what annotators see.
            for b in prediction.candidates or prediction.boxes:
                predicted_boxes.append(
                    PredictedBox(case.case_id, b.finding, b.x, b.y, b.width, b.height, b.score)
                )
            for b in prediction.boxes:
                shown_boxes.append(
                    PredictedBox(case.case_id, b.finding, b.x, b.y, b.width, b.height, b.score)
                )
            for c in classes:
                value = case.findings.get(c)
                if value is None:
                    continue
                labels[c].append(int(bool(value)))
                p = prediction.findings[c]
                served[c].append(p)
                if prediction.uncalibrated_findings is not None:
                    raw[c].append(prediction.uncalibrated_findings[c])
                else:
                    raw[c].append(1 / (1 + math.exp(-_logit(p) * temperature)))
            references.append(_report_text(case.report))
            candidates.append(_report_text(prediction.report))
        chunk.clear()

    for case in cases:
        chunk.append(case)
        n_cases += 1
        if len(chunk) == batch_size:
            flush()
    if chunk:
        flush()
    results: dict[str, Any] = {"cases": n_cases, "seconds_per_case": seconds / max(n_cases, 1)}
    boxes = box_map(truth_boxes, predicted_boxes, classes)
    results["boxes"] = {
        "map_50": boxes["map_50"],
        "map_50_95": boxes["map_50_95"],
        "ap_50_per_class": boxes["ap_50_per_class"],
        "froc": froc(truth_boxes, predicted_boxes, images=image_ids),
        "shown": shown_box_metrics(truth_boxes, shown_boxes, classes, images=image_ids),
    }
    # What annotators are served (after the temperature and any mix with the detector), and
    # the model's own probabilities before that calibration.
    after = finding_metrics(labels, served, temperature=1.0)
    before = finding_metrics(labels, raw, temperature=1.0)
    results["findings"] = {
        "auroc_macro": after["auroc_macro"],
        "auroc": after["auroc"],
        "ece_before_macro": before["ece_before_macro"],
        "ece_after_macro": after["ece_before_macro"],
        "temperature": temperature,
    }
    reports = report_metrics(references, candidates, classes)
    results["reports"] = {
        key: reports[key]
        for key in ("bleu_4", "rouge_l_f_beta1.2", "cider_d", "finding_f1_micro")
        if key in reports
    }
    return results


def _report_text(report: dict[str, str]) -> str:
    return " ".join(f"{k.upper()}: {v}" for k, v in report.items() if v)
