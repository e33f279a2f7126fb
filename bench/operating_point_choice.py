"""How sure a box threshold must be: the precision annotators see on new cases, and the recall
it costs, when each class's threshold is chosen on the validation labels at the plain
precision target or at a one-sided lower bound of it.

    python bench/operating_point_choice.py                       # 5 seeds, new-classes start
    python bench/operating_point_choice.py --start synthetic-cxr-256 --seed-ids 0,1

Per seed, the label-efficiency bench's own pool, validation and held-out test cases and its
first labels (``bench/label_efficiency.py``: the same seeds give the same first model), and
two models:

- **first**: ``--initial`` random labels, ``--first-steps`` steps from ``--start``;
- **lesion-rich**: trained on from *first* for ``--more-steps`` steps with ``--more`` more
  labels of which ``--lesion-share`` hold a lesion (what uncertainty sampling serves: 15-24 of
  every 30 in that bench), drawn at random within each kind.

Each model fits its operating points on the validation cases' annotator labels, as a cycle
does (the fusion weight included). Then, side by side on the same candidates, each
``--confidences`` level chooses every class's threshold (``box_precision_confidence``: the
lowest score whose precision's one-sided Wilson lower bound at that confidence reaches
``--target``; 0 is the plain precision), and the boxes at or above it are scored against the
truth of the held-out test cases: precision of the shown boxes (and against the test cases'
simulated reader's boxes: what an annotator would keep), recall (mean over the classes
with enough validation positives, as the issue's target; and over all classes), false boxes
per normal image, boxes shown. Printed: mean and sd over seeds, the seeds whose shown
precision reaches the target, and each level's paired difference from level 0 with its 95 %
interval (t over seeds). Level 0 must reproduce what the model itself shows: checked.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import label_efficiency as le  # noqa: E402  (the bench's pool, first labels and model)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--start", default="synthetic-cxr-256:new-classes")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--seed-ids", help="comma-separated seeds (default 0..seeds-1)")
    parser.add_argument("--pool", type=int, default=1000)
    parser.add_argument("--validation", type=int, default=200)
    parser.add_argument("--test", type=int, default=500)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--initial", type=int, default=30)
    parser.add_argument("--first-steps", type=int, default=300)
    parser.add_argument("--more", type=int, default=120)
    parser.add_argument("--more-steps", type=int, default=600)
    parser.add_argument("--lesion-share", type=float, default=0.7)
    parser.add_argument("--target", type=float, default=0.7)
    parser.add_argument("--confidences", default="0,0.6,0.75,0.9")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "operating_point_choice")
    parser.add_argument(
        "--combine",
        nargs="+",
        type=Path,
        metavar="JSON",
        help="print the summary of earlier runs' JSON files (one process per seed, then this)",
    )
    args = parser.parse_args(argv)
    args.seed_list = (
        [int(s) for s in args.seed_ids.split(",")] if args.seed_ids else list(range(args.seeds))
    )
    args.confidence_list = [float(c) for c in args.confidences.split(",")]
    if 0.0 not in args.confidence_list:
        args.confidence_list.insert(0, 0.0)
    if any(not (c == 0 or 0.5 <= c < 1) for c in args.confidence_list):
        parser.error("--confidences must be 0 or in [0.5, 1)")
    if not 0 <= args.lesion_share <= 1:
        parser.error("--lesion-share must be in [0, 1]")
    return args


def bench_args(args: argparse.Namespace) -> argparse.Namespace:
    """The label-efficiency bench's settings for this run (its model config and first labels)."""
    return le.parse_args(
        [
            "--pool", str(args.pool), "--validation", str(args.validation),
            "--test", str(args.test), "--size", str(args.size),
            "--initial", str(args.initial), "--first-steps", str(args.first_steps),
            "--budget", str(args.initial), "--report-tokens", "24", "--start", args.start,
            "--strategies", "random",
        ]
    )  # fmt: skip


def compare(
    model: Any, validation: list[Any], test: list[Any], args: argparse.Namespace
) -> dict[float, dict[str, Any]]:
    """Each confidence level's thresholds (from the validation annotator labels) and what they
    show on the test cases."""
    from active_learning.ml import evaluate as ev
    from active_learning.ml.interface import UncertaintyOptions

    config = model.config
    config.box_precision_target = args.target
    config.box_precision_confidence = 0.0
    annotated = [c.annotated for c in validation]
    model.fit_operating_points(annotated)  # fusion weight and the model's own points (level 0)
    refit = le.ThresholdRefit(model, annotated)
    classes = refit.classes
    test_cases = [c.truth for c in test]
    test_predictions = model.predict(
        test_cases, uncertainty=UncertaintyOptions(box_stability=False)
    )
    test_truth = le.truth_boxes(test_cases)
    # What annotators see: the same shown boxes against the test cases' simulated reader's boxes
    # (the operating points were chosen against the validation reader's, not the truth).
    test_reader = le.truth_boxes([c.annotated for c in test])
    test_candidates = le.predicted_boxes(test_cases, test_predictions, candidates=True)
    images = [c.case_id for c in test_cases]
    own = ev.shown_box_metrics(
        test_truth,
        le.predicted_boxes(test_cases, test_predictions, candidates=False),
        classes,
        images=images,
    )
    results = {}
    for confidence in args.confidence_list:
        points = refit.points(confidence)
        shown = le.ThresholdRefit.shown(points, test_candidates)
        seen = ev.shown_box_metrics(test_truth, shown, classes, images=images)
        by_reader = ev.shown_box_metrics(test_reader, shown, classes, images=images)
        if confidence == 0.0 and seen["shown_boxes"] != own["shown_boxes"]:
            raise SystemExit(
                f"level 0 shows {seen['shown_boxes']} boxes, the model itself "
                f"{own['shown_boxes']}: the bench does not reproduce the model's thresholds"
            )
        precision_per_class = {}
        matched = ev.match_candidates(test_truth, shown, iou_threshold=0.5, images=images)
        for c in classes:
            hits = [hit for f, _, hit in matched.candidates if f == c]
            precision_per_class[c] = sum(hits) / len(hits) if hits else None
        results[confidence] = {
            "precision_shown": seen["precision_shown"],
            "precision_vs_reader": by_reader["precision_shown"],
            "recall_enough": le.recall_over_enough(model, points, seen["recall_shown_per_class"]),
            "recall_shown": seen["recall_shown"],
            "false_boxes_per_normal_image": seen["false_boxes_per_normal_image"],
            "shown_boxes": seen["shown_boxes"],
            "reliable_classes": [c for c in classes if points[c]["reliable"]],
            "thresholds": {c: points[c]["threshold"] for c in classes if points[c]["reliable"]},
            "precision_per_class": precision_per_class,
            "recall_per_class": seen["recall_shown_per_class"],
        }
    return results


def run_seed(seed: int, args: argparse.Namespace, validation: list, test: list) -> dict:
    import loop_support
    import numpy as np

    from active_learning.ml.builtin.model import BuiltinModel

    settings = bench_args(args)
    pool = loop_support.synthetic_pool(
        seed=le.POOL_SEED + seed, count=args.pool, size=args.size,
        difficulty=settings.difficulty, annotator_seed=seed,
        annotator_scale=settings.annotator_scale,
    )  # fmt: skip
    rng = np.random.default_rng(seed)  # the label-efficiency bench's first labels
    first = sorted(int(i) for i in rng.choice(len(pool), size=args.initial, replace=False))
    model = BuiltinModel(le.model_config(settings, seed))
    start: Any = args.start
    if start.endswith(":new-classes"):
        start = start.removesuffix(":new-classes")
        le.unknown_classes_in(start)
    started = time.perf_counter()
    le.train(model, [pool[i].annotated for i in first], args.first_steps, start)
    out = {"first": compare(model, validation, test, args)}
    out["first"]["seconds"] = round(time.perf_counter() - started)  # type: ignore[index]
    picks = np.random.default_rng([seed, 17])
    rest = [i for i in range(len(pool)) if i not in set(first)]
    lesion = [i for i in rest if pool[i].truth.boxes]
    normal = [i for i in rest if not pool[i].truth.boxes]
    n_lesion = min(len(lesion), round(args.more * args.lesion_share))
    more = list(picks.choice(lesion, size=n_lesion, replace=False)) + list(
        picks.choice(normal, size=args.more - n_lesion, replace=False)
    )
    training = [pool[i].annotated for i in sorted(set(first) | {int(i) for i in more})]
    started = time.perf_counter()
    le.train(model, training, args.more_steps)
    out["lesion-rich"] = compare(model, validation, test, args)
    out["lesion-rich"]["seconds"] = round(time.perf_counter() - started)  # type: ignore[index]
    return out


def _interval(values: list[float]) -> str:
    mean, low, high = le.t_interval(values)
    return f"{mean:+.3f} (95 % {low:+.3f} to {high:+.3f})"


def _mean_sd(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return "    -        "
    sd = statistics.stdev(known) if len(known) > 1 else 0.0
    return f"{statistics.mean(known):.3f} ± {sd:.3f}"


def report(per_seed: dict[int, dict], args: argparse.Namespace) -> None:
    seeds = sorted(per_seed)
    print(f"\ntarget precision {args.target}, seeds {seeds}, start {args.start}, test cases "
          f"{args.test}; mean ± sd over seeds")  # fmt: skip
    print(
        f"{'model':<12} {'confidence':>10} {'precision':>14} {'reached':>8} {'vs reader':>14} "
        f"{'recall enough':>14} {'recall all':>14} {'false/normal':>13} {'shown':>7}"
    )
    for stage in ("first", "lesion-rich"):
        for c in args.confidence_list:
            rows = [per_seed[s][stage][c] for s in seeds]
            reached = sum(
                r["precision_shown"] is not None and r["precision_shown"] >= args.target
                for r in rows
            )
            print(
                f"{stage:<12} {c:>10.2f} {_mean_sd([r['precision_shown'] for r in rows]):>14} "
                f"{reached:>4} of {len(rows)} "
                f"{_mean_sd([r.get('precision_vs_reader') for r in rows]):>14} "
                f"{_mean_sd([r['recall_enough'] for r in rows]):>14} "
                f"{_mean_sd([r['recall_shown'] for r in rows]):>14} "
                f"{_mean_sd([r['false_boxes_per_normal_image'] for r in rows]):>13} "
                f"{statistics.mean(r['shown_boxes'] for r in rows):>7.1f}"
            )
        for c in args.confidence_list:
            if c == 0.0 or len(seeds) < 2:
                continue
            rows = [(per_seed[s][stage][0.0], per_seed[s][stage][c]) for s in seeds]
            paired = [
                (b["precision_shown"] or 0.0) - (a["precision_shown"] or 0.0) for a, b in rows
            ]
            recall = [(b["recall_enough"] or 0.0) - (a["recall_enough"] or 0.0) for a, b in rows]
            print(f"  {stage} {c:.2f} - 0: precision {_interval(paired)}, recall enough "
                  f"{_interval(recall)}")  # fmt: skip


def _level(key: str) -> float | str:
    try:
        return float(key)
    except ValueError:  # "seconds"
        return key


def combine(args: argparse.Namespace) -> None:
    """The summary of earlier runs' JSON files (their seeds merged; levels as numbers)."""
    per_seed: dict[int, dict] = {}
    for path in args.combine:
        data = json.loads(path.read_text())
        for seed, stages in data["seeds"].items():
            per_seed[int(seed)] = {
                stage: {_level(k): v for k, v in levels.items()} for stage, levels in stages.items()
            }
        settings = data["settings"]
        args.start, args.test = settings["start"], settings["test"]
        args.target = float(settings["target"])
        args.confidence_list = [float(c) for c in settings["confidences"].split(",")]
        if 0.0 not in args.confidence_list:
            args.confidence_list.insert(0, 0.0)
    report(per_seed, args)


def main(argv: list[str] | None = None) -> None:
    import os

    args = parse_args(argv)
    if args.combine:
        combine(args)
        return
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    settings = bench_args(args)
    started = time.perf_counter()

    validation, test = le.fixed_cases(settings)
    per_seed: dict[int, dict] = {}
    for seed in args.seed_list:
        per_seed[seed] = run_seed(seed, args, validation, test)
        for stage in ("first", "lesion-rich"):
            levels = per_seed[seed][stage]
            print(f"seed {seed} {stage} ({levels['seconds']} s): " + "; ".join(
                f"{c:.2f}: precision {le._fmt(levels[c]['precision_shown'])} (vs reader "
                f"{le._fmt(levels[c]['precision_vs_reader'])}) recall enough "
                f"{le._fmt(levels[c]['recall_enough'])} shown {levels[c]['shown_boxes']} "
                f"classes {','.join(levels[c]['reliable_classes'])}"
                for c in args.confidence_list
            ), flush=True)  # fmt: skip
    report(per_seed, args)
    args.out.mkdir(parents=True, exist_ok=True)
    name = "seeds-" + "-".join(str(s) for s in args.seed_list) + ".json"
    (args.out / name).write_text(
        json.dumps(
            {"settings": {k: str(v) for k, v in vars(args).items()}, "seeds": per_seed},
            indent=1,
            default=str,
        )
    )
    print(f"\nwritten {args.out / name}; total wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
