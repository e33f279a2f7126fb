"""Suggestion quality of the built-in model: are the boxes shown to annotators worth keeping?

    python bench/suggestion_quality.py --quick [--threads 2] [--seed 0] [--start NAME|none]

Trains one version on a fixed synthetic labelled set (``active_learning.ml.datasets`` over the
synthetic generator), fits its operating points on a fixed validation set (per-class score
thresholds for the precision target, see ``active_learning/ml/builtin/operating_points.py``),
then scores a held-out test set, disjoint from both, with what an annotator would be shown:

- ``precision_shown``, ``recall_shown`` (mean over the classes with at least
  ``min_validation_positives`` validation boxes; every class's recall is printed too),
  ``false_boxes_per_normal_image``: shown boxes at IoU 0.5 against the truth;
- ``map50`` and FROC (sensitivity at 0.5/1/2/4 false positives per image) from every candidate,
  never from the shown boxes alone;
- ``kept_share``, ``kept_or_edited_share``: the shown boxes a simulated annotator (VinDr-CXR
  reader variation, ``active_learning.ml.simulated_annotator``, seeded per case) keeps (its box
  of the same finding at IoU >= 0.5) or edits, as the label-efficiency bench tallies them;
- ``report_edit_distance``: word edit distance from each draft to the true report over its
  length (0: kept as drafted);
- ``degenerate_drafts``: report drafts refused by ``active_learning.ml.draft_guard``, and how
  many drafts would be shown (the version's report metric passes its floor and the draft is not
  degenerate);
- ``prefill_ppv``, ``prefill_npv``, ``prefill_wrong_per_case``, ``prefill_coverage``: the
  findings the workspace would prefill (the version's findings operating points, the rule of
  :func:`active_learning.ml.metrics.findings.prefill`), against the test cases' truth, pooled and
  per class under ``prefill_per_class``;
- ``finding_head_alone``: the same version's findings from its multimodal head alone
  (``finding_detector_weight`` 0, prefill thresholds refitted), on the same test cases: what
  the detector's evidence in the finding probabilities changes;
- finding AUROC, seeds, steps, seconds.

The last line printed is one JSON object with every figure. ``--quick`` fits in 10 minutes on
2 cores (issue 14); ``--tiny`` is a smoke run for the test of the JSON's keys, not a figure.
By default a fresh model starts from the stored detector starting point, as a cycle's cold
start does (``--start``, see ``active_learning/ml/builtin/starting_point.py``: trained once on
synthetic phantoms of another data seed); ``--start none`` trains from scratch. ``--init DIR``
fine-tunes from a saved built-in version instead.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# name -> (input size, training cases, validation cases, test cases, steps, batch size)
PRESETS = {
    "quick": (256, 300, 120, 120, 260, 8),
    "tiny": (128, 16, 8, 8, 3, 4),
}
STARTS = {"quick": "synthetic-cxr-256", "tiny": "none"}
# Case index offsets of the three fixed, disjoint sets within one synthetic seed.
VALIDATION_START = 50_000
TEST_START = 100_000


def _source(seed: int, start: int, count: int, size: int) -> Any:
    from active_learning.ml.datasets import synthetic_source

    return synthetic_source(seed, start, count, size)


def _degenerate(text: str) -> str | None:
    from active_learning.ml.draft_guard import is_degenerate

    return is_degenerate(text)


def _findings_of(
    model: Any, cases: list[Any], classes: list[str]
) -> tuple[dict[str, list[int]], dict[str, list[float]]]:
    """Labels and the model's served finding probabilities on ``cases``, per class."""
    from active_learning.ml.interface import UncertaintyOptions

    labels: dict[str, list[int]] = {c: [] for c in classes}
    probabilities: dict[str, list[float]] = {c: [] for c in classes}
    predictions = model.predict(cases, uncertainty=UncertaintyOptions(box_stability=False))
    for case, prediction in zip(cases, predictions, strict=True):
        for c in classes:
            if case.findings.get(c) is not None:
                labels[c].append(int(bool(case.findings[c])))
                probabilities[c].append(prediction.findings[c])
    return labels, probabilities


def _finding_points(
    model: Any, validation: list[Any], classes: list[str], confidence: float
) -> dict[str, Any]:
    """The version's findings operating points refitted on its validation predictions at
    ``confidence`` (0: the validation PPV and NPV themselves, as before the lower bound)."""
    from active_learning.ml.builtin import operating_points as op

    labels, probabilities = _findings_of(model, validation, classes)
    return op.fit_finding_operating_points(
        probabilities,
        labels,
        classes,
        target=model.config.finding_precision_target,
        min_positives=model.config.min_finding_positives,
        confidence=confidence,
    )


def _head_alone(
    model: Any, validation: list[Any], test: list[Any], classes: list[str]
) -> dict[str, Any]:
    """The same version with its findings from the multimodal head alone (no detector evidence,
    ``finding_detector_weight`` 0), prefill thresholds refitted at the model's confidence, on
    the same test cases: AUROC per class and the prefill figures."""
    from sklearn.metrics import roc_auc_score

    from active_learning.ml.metrics.findings import prefill_metrics

    config = model.config
    kept = config.finding_detector_weight
    config.finding_detector_weight = 0.0
    try:
        points = _finding_points(model, validation, classes, config.finding_prefill_confidence)
        labels, probabilities = _findings_of(model, test, classes)
    finally:
        config.finding_detector_weight = kept
    result = prefill_metrics(labels, probabilities, points)
    result["finding_auroc"] = {
        c: float(roc_auc_score(labels[c], probabilities[c]))
        for c in classes
        if len(set(labels[c])) == 2
    }
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Train, fit, score; returns every figure (see the module docstring)."""
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    from loop_support import ServedTally, tally_served

    from active_learning.ml import evaluate as ev
    from active_learning.ml.builtin import BuiltinConfig, BuiltinModel
    from active_learning.ml.interface import UncertaintyOptions
    from active_learning.ml.metrics.findings import prefill_metrics
    from active_learning.ml.simulated_annotator import SimulatedAnnotator, load_reader_variation
    from medloop.metrics.text import word_edit_distance

    size, n_train, n_val, n_test, steps, batch = PRESETS[args.preset]
    size = args.size or size
    steps = args.steps if args.steps is not None else steps
    started = time.perf_counter()
    cpu_started = time.process_time()
    train = _source(args.data_seed, 0, args.train_cases or n_train, size)
    validation = list(_source(args.data_seed, VALIDATION_START, n_val, size)())
    test = list(_source(args.data_seed, TEST_START, n_test, size)())
    config = BuiltinConfig(
        input_size=size, train_steps=steps, batch_size=batch, seed=args.seed,
        warmup_steps=min(50, steps // 5),
    )  # fmt: skip
    if args.detector_lr_scale is not None:
        config.pretrained_detector_lr_scale = args.detector_lr_scale
    if args.box_precision_confidence is not None:
        if not (args.box_precision_confidence == 0 or 0.5 <= args.box_precision_confidence < 1):
            raise SystemExit("--box-precision-confidence must be 0 or in [0.5, 1)")
        config.box_precision_confidence = args.box_precision_confidence
    model = BuiltinModel(config)
    start = args.start or STARTS[args.preset]
    start = None if args.init or start == "none" else start
    report = model.train(train, warm_start=args.init, starting_point=start)
    train_seconds = report.seconds
    losses = (
        f"loss {statistics.mean(report.losses[:10]):.3f} -> "
        f"{statistics.mean(report.losses[-10:]):.3f}"
        if report.losses
        else "no step"
    )
    print(
        f"trained {report.steps} steps on {args.train_cases or n_train} cases at {size} px in "
        f"{train_seconds:.0f} s ({losses})",
        flush=True,
    )
    fit_started = time.perf_counter()
    points = model.fit_operating_points(validation)
    fit_seconds = time.perf_counter() - fit_started
    if args.save:
        model.save(args.save)
    classes = list(model.finding_classes)
    for name in classes:
        point = points["boxes"][name]
        print(f"  operating point {name:<14} {point['reason']}")
    print(f"  report: {points['report']['reason']}", flush=True)

    score_started = time.perf_counter()
    predictions = model.predict(test, uncertainty=UncertaintyOptions(box_stability=False))
    score_seconds = time.perf_counter() - score_started
    truth, candidates, shown, images = [], [], [], []
    labels: dict[str, list[int]] = {c: [] for c in classes}
    probabilities: dict[str, list[float]] = {c: [] for c in classes}
    degenerate, drafts_shown = 0, 0
    edits: list[float] = []
    tally, variation = ServedTally(), load_reader_variation()
    for index, (case, prediction) in enumerate(zip(test, predictions, strict=True)):
        reader = SimulatedAnnotator(seed=args.seed * 1_000_003 + index, variation=variation)
        rows, columns = case.image.shape[:2]
        annotated = reader.annotate(list(case.boxes), rows=rows, columns=columns)
        tally_served(tally, sorted(prediction.boxes, key=lambda b: -b.score), annotated)
        images.append(case.case_id)
        truth += [ev.GroundTruthBox(case.case_id, b.finding, b.x, b.y, b.width, b.height)
                  for b in case.boxes]  # fmt: skip
        candidates += [
            ev.PredictedBox(case.case_id, b.finding, b.x, b.y, b.width, b.height, b.score)
            for b in prediction.candidates
        ]
        shown += [
            ev.PredictedBox(case.case_id, b.finding, b.x, b.y, b.width, b.height, b.score)
            for b in prediction.boxes
        ]
        for c in classes:
            if case.findings.get(c) is not None:
                labels[c].append(int(bool(case.findings[c])))
                probabilities[c].append(prediction.findings[c])
        draft = " ".join(v for v in prediction.report.values() if v)
        final = " ".join(case.report[k] for k in prediction.report if case.report.get(k))
        if final:
            edits.append(word_edit_distance(draft, final))
        refused = _degenerate(draft)
        degenerate += refused is not None
        drafts_shown += refused is None and bool(points["report"]["reliable"])
    prefills = prefill_metrics(labels, probabilities, points["findings"])
    # The same version's findings thresholds chosen by the plain validation PPV (no lower
    # bound), side by side on the same test predictions: what the bound changes.
    plain = prefill_metrics(labels, probabilities, _finding_points(model, validation, classes, 0.0))
    head = _head_alone(model, validation, test, classes)
    boxes = ev.box_map(truth, candidates, classes)
    froc = ev.froc(truth, candidates, images=images)
    seen = ev.shown_box_metrics(truth, shown, classes, images=images)
    enough = [c for c in classes if points["boxes"][c]["validation_positives"]
              >= config.min_validation_positives]  # fmt: skip
    enough_recall = [seen["recall_shown_per_class"][c] for c in enough
                     if seen["recall_shown_per_class"][c] is not None]  # fmt: skip
    auroc = {}
    for c in classes:
        y = np.asarray(labels[c])
        if len(set(y.tolist())) == 2:
            from sklearn.metrics import roc_auc_score

            auroc[c] = float(roc_auc_score(y, probabilities[c]))
    return {
        "precision_shown": seen["precision_shown"],
        "false_boxes_per_normal_image": seen["false_boxes_per_normal_image"],
        "recall_shown": float(np.mean(enough_recall)) if enough_recall else None,
        "recall_shown_all_classes": seen["recall_shown"],
        "recall_shown_per_class": seen["recall_shown_per_class"],
        "classes_with_enough_validation_positives": enough,
        "reliable_classes": [c for c in classes if points["boxes"][c]["reliable"]],
        "thresholds": {c: points["boxes"][c]["threshold"] for c in classes},
        "box_precision_confidence": config.box_precision_confidence,
        "validation_positives": {c: points["boxes"][c]["validation_positives"] for c in classes},
        "shown_boxes": seen["shown_boxes"],
        "map50": boxes["map_50"],
        "ap50_per_class": boxes["ap_50_per_class"],
        "froc": {k: v for k, v in froc.items() if k.startswith("sensitivity") or k == "froc_mean"},
        "finding_auroc": auroc,
        "prefill_ppv": prefills["ppv"],
        "prefill_npv": prefills["npv"],
        "prefill_wrong_per_case": prefills["wrong_per_case"],
        "prefill_coverage": prefills["coverage"],
        "prefill_per_class": prefills["per_class"],
        "prefill_confidence": config.finding_prefill_confidence,
        "finding_detector_weight": config.finding_detector_weight,
        "finding_head_alone": {
            k: head[k]
            for k in ("finding_auroc", "ppv", "npv", "wrong_per_case", "coverage", "per_class")
        },
        "prefill_without_bound": {
            k: plain[k] for k in ("ppv", "npv", "wrong_per_case", "coverage", "per_class")
        },
        "report_metric": points["report"]["value"],
        "report_reliable": points["report"]["reliable"],
        "degenerate_drafts": degenerate,
        "drafts_shown": drafts_shown,
        # Word edit distance from each draft to the case's true report, over the report's length
        # (the measure the Models page charts): what an annotator would still have to change.
        "report_edit_distance": float(np.mean(edits)) if edits else None,
        "kept_share": tally.row()["kept_share"],
        "kept_or_edited_share": tally.row()["kept_or_edited_share"],
        "test_cases": len(test),
        "normal_test_cases": seen["normal_images"],
        "validation_cases": len(validation),
        "train_cases": args.train_cases or n_train,
        "input_size": size,
        "steps": report.steps,
        "seeds": {"model": args.seed, "data": args.data_seed},
        "threads": args.threads,
        "init": str(args.init) if args.init else None,
        "starting_point": start,
        "seconds": round(time.perf_counter() - started, 1),
        # CPU seconds of this process: on a shared machine the wall clock also counts the time
        # other processes held the cores; cpu_seconds / threads is the uncontended estimate.
        "cpu_seconds": round(time.process_time() - cpu_started, 1),
        "train_seconds": round(train_seconds, 1),
        "fit_seconds": round(fit_seconds, 1),
        "score_seconds_per_case": round(score_seconds / max(len(test), 1), 3),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    preset = parser.add_mutually_exclusive_group()
    preset.add_argument("--quick", dest="preset", action="store_const", const="quick")
    preset.add_argument("--tiny", dest="preset", action="store_const", const="tiny")
    parser.set_defaults(preset="quick")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="model seed (weights, shuffling)")
    parser.add_argument("--data-seed", type=int, default=14, help="synthetic data seed")
    parser.add_argument("--steps", type=int, help="override the preset's steps")
    parser.add_argument("--size", type=int, help="override the preset's input size")
    parser.add_argument("--train-cases", type=int, help="override the preset's training cases")
    parser.add_argument(
        "--detector-lr-scale",
        type=float,
        help="the detector's rate as a fraction of the others' when it starts from learnt "
        "weights (default: the model's pretrained_detector_lr_scale)",
    )
    parser.add_argument(
        "--box-precision-confidence",
        type=float,
        help="how sure each class's box threshold must be of its precision target (default: "
        "the model's box_precision_confidence; 0: the plain validation precision)",
    )
    parser.add_argument("--init", type=Path, help="fine-tune from this saved built-in version")
    parser.add_argument(
        "--start",
        help="stored detector starting point a fresh model begins from, as a cycle's cold start "
        "does (active_learning/ml/builtin/starting_points); 'none': from scratch. Default: "
        "synthetic-cxr-256 with --quick, none with --tiny (128 px: the point does not fit)",
    )
    parser.add_argument("--save", type=Path, help="save the trained version here (new folder)")
    args = parser.parse_args(argv)
    results = run(args)
    print(f"precision of shown boxes      {results['precision_shown']}")
    print(f"false boxes per normal image  {results['false_boxes_per_normal_image']}")
    print(
        f"recall of shown boxes         {results['recall_shown']} (classes with enough "
        f"validation boxes: {', '.join(results['classes_with_enough_validation_positives'])})"
    )
    for name, value in results["recall_shown_per_class"].items():
        print(f"  recall {name:<14} {value}   AP50 {results['ap50_per_class'][name]}")
    print(f"mAP@0.5 (all candidates)      {results['map50']}")
    print(f"FROC                          {results['froc']}")
    print(
        f"kept / kept or edited         {results['kept_share']} / "
        f"{results['kept_or_edited_share']} (simulated annotator, VinDr reader variation)"
    )
    print(
        f"degenerate drafts             {results['degenerate_drafts']} of {results['test_cases']}"
    )
    print(
        f"prefilled findings            PPV {results['prefill_ppv']}, NPV "
        f"{results['prefill_npv']}, wrong per case {results['prefill_wrong_per_case']}, "
        f"coverage {results['prefill_coverage']} (without the lower bound: PPV "
        f"{results['prefill_without_bound']['ppv']}, wrong per case "
        f"{results['prefill_without_bound']['wrong_per_case']})"
    )
    head = results["finding_head_alone"]
    print(
        f"finding AUROC                 {results['finding_auroc']} (detector weight "
        f"{results['finding_detector_weight']}; head alone {head['finding_auroc']}, prefill PPV "
        f"{head['ppv']}, wrong per case {head['wrong_per_case']}, coverage {head['coverage']})"
    )
    print(f"seconds                       {results['seconds']} (CPU {results['cpu_seconds']})")
    print(json.dumps(results, sort_keys=True))


if __name__ == "__main__":
    main()
