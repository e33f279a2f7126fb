"""Label efficiency of the acquisition strategies, through the real loop.

    python bench/label_efficiency.py [--pool 240] [--validation 40] [--step 20]
        [--max-labels 100] [--seeds 3] [--strategies random,uncertainty,hybrid]

For each strategy and seed: a project with a pool of synthetic labelled cases (the same pool
for every strategy of a seed), ingested as DICOM; a fixed validation set labelled up front;
then a simulated annotator takes cases from the queue in the order the strategy wrote and
corrects each suggestion to the ground truth. Each ``--step`` labels reach the project's
retrain threshold, so the *automatic* trigger starts a cycle that a real Celery worker runs
(snapshot, train with warm start, evaluate on the validation set, register, promote if better,
score the pool, re-rank); the annotator waits for it and goes on.

Prints per strategy the metric (the project's promotion metric: mean of box mAP@0.5, finding
AUROC and report finding F1 on the validation set) against labels, mean and spread over seeds,
the label-efficiency ratio (labels the best strategy needs to reach random's final metric,
over random's labels; goal <= 0.5) and the suggestion acceptance rate by cycle. Writes a CSV
and a PNG learning curve.
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loop_support


def labels_to_reach(curve: list[tuple[int, float]], target: float) -> float | None:
    """Labels at which a (labels, metric) curve first reaches ``target`` (linear between
    points); None if it never does."""
    previous = None
    for labels, value in curve:
        if value >= target:
            if previous is None or previous[1] >= target:
                return float(labels)
            (l0, v0) = previous
            return l0 + (target - v0) / (value - v0) * (labels - l0)
        previous = (labels, value)
    return None


def run_arm(strategy: str, seed: int, args, worker_log: Path) -> list[dict]:
    from active_learning.models import ModelVersion, RetrainingCycle
    from active_learning.services import ranking
    from annotations.models import Case

    project, annotator, truth = loop_support.make_project(
        f"{strategy}-seed{seed}",
        pool=args.pool,
        size=args.size,
        seed=1000 + seed,
        settings={
            "acquisition_strategy": strategy,
            "auto_retrain_threshold": args.step,
            "training_epochs": args.epochs,
            "model_config": {
                "input_size": args.size,
                "vocab_size": 500,
                "report_max_tokens": 100,
                "batch_size": 8,
                "seed": seed,
            },
        },
    )
    # A fixed validation set (the same for every version), labelled before the loop starts.
    ids = sorted(truth)
    validation = ids[:: max(len(ids) // args.validation, 1)][: args.validation]
    Case.objects.filter(pk__in=validation).update(is_validation=True)
    loop_support.label_given(project, annotator, truth, validation)
    assert not Case.objects.filter(pk__in=validation, state=Case.State.OPEN).exists()
    ranking.rerank_project(project)  # before any model: the strategy's first order

    rows = []
    labelled = 0
    while labelled < args.max_labels:
        stats = loop_support.Corrections()
        before = RetrainingCycle.objects.filter(project=project).count()
        served = loop_support.label_cases(project, annotator, truth, args.step, stats)
        labelled += len(served)
        started = time.monotonic()
        while RetrainingCycle.objects.filter(project=project).count() == before:
            if time.monotonic() - started > 120:
                raise RuntimeError(f"no automatic cycle after {labelled} labels\n{worker_log}")
            time.sleep(0.3)
        cycle = RetrainingCycle.objects.filter(project=project).order_by("-created_at").first()
        while cycle.status in RetrainingCycle.ACTIVE:
            time.sleep(0.5)
            cycle.refresh_from_db()
        if cycle.status != RetrainingCycle.Status.SUCCEEDED:
            raise RuntimeError(f"cycle {cycle.pk} {cycle.status}: {cycle.error}")
        version: ModelVersion = cycle.model_version
        validation_metrics = version.metrics.get("validation", {})
        row = {
            "strategy": strategy,
            "seed": seed,
            "labels": version.label_count,
            "version": version.number,
            "promoted": cycle.outcome.get("promoted"),
            "metric": version.metrics.get("primary", {}).get("value"),
            "map_50": validation_metrics.get("boxes", {}).get("map_50"),
            "auroc_macro": validation_metrics.get("findings", {}).get("auroc_macro"),
            "finding_f1": validation_metrics.get("reports", {}).get("finding_f1_micro"),
            "cycle_seconds": sum(cycle.stage_seconds.values()),
            **{f"served_{k}": v for k, v in stats.row().items()},
        }
        rows.append(row)
        print(
            f"  {strategy:<12} seed {seed} labels {row['labels']:>4}  metric {row['metric']:.4f}"
            f"  (mAP50 {row['map_50']:.3f} AUROC {row['auroc_macro']:.3f} "
            f"F1 {row['finding_f1']:.3f})  cycle {row['cycle_seconds']:.0f} s",
            flush=True,
        )
    return rows


def summarise(rows: list[dict], strategies: list[str]) -> dict[str, list[tuple[int, float, float]]]:
    by = defaultdict(list)
    for row in rows:
        if row["metric"] is not None:
            by[(row["strategy"], row["labels"])].append(row["metric"])
    curves = {}
    for strategy in strategies:
        points = sorted((labels, values) for (s, labels), values in by.items() if s == strategy)
        curves[strategy] = [
            (labels, statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0)
            for labels, v in points
        ]
    return curves


def plot(curves, path: Path, random_final: float | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5), dpi=120)
    for strategy, points in curves.items():
        x = [p[0] for p in points]
        mean = [p[1] for p in points]
        spread = [p[2] for p in points]
        axis.plot(x, mean, marker="o", label=strategy)
        axis.fill_between(
            x,
            [m - s for m, s in zip(mean, spread, strict=True)],
            [m + s for m, s in zip(mean, spread, strict=True)],
            alpha=0.15,
        )
    if random_final is not None:
        axis.axhline(random_final, color="grey", linestyle=":", label="random, final")
    axis.set_xlabel("labels (cases annotated)")
    axis.set_ylabel("validation metric (mean of mAP@0.5, AUROC, finding F1)")
    axis.set_title("MedLoop label efficiency (mean ± sd over seeds)")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pool", type=int, default=240)
    parser.add_argument("--validation", type=int, default=40)
    parser.add_argument("--step", type=int, default=20)
    parser.add_argument("--max-labels", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--strategies", default="random,uncertainty,hybrid")
    parser.add_argument("--size", type=int, default=128, help="synthetic image size")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--database-url", help="PostgreSQL URL; default SQLite in a temp dir")
    parser.add_argument("--out", type=Path, default=Path("var/bench"))
    args = parser.parse_args()
    strategies = args.strategies.split(",")
    if "random" not in strategies:
        parser.error("the random arm always runs: it is the baseline")

    var = loop_support.prepare(args.database_url)
    worker = loop_support.start_worker(var)
    rows: list[dict] = []
    started = time.monotonic()
    try:
        for seed in range(args.seeds):
            for strategy in strategies:
                rows += run_arm(strategy, seed, args, var / "worker.log")
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "label_efficiency.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    curves = summarise(rows, strategies)
    print(f"\nMetric against labels (mean ± sd over {args.seeds} seeds):")
    print(f"{'labels':>8} " + " ".join(f"{s:>20}" for s in strategies))
    for index, (labels, _, _) in enumerate(curves["random"]):
        cells = []
        for s in strategies:
            point = curves[s][index] if index < len(curves[s]) else None
            cells.append(f"{point[1]:.4f} ± {point[2]:.4f}" if point else "-")
        print(f"{labels:>8} " + " ".join(f"{c:>20}" for c in cells))

    random_curve = [(labels, mean) for labels, mean, _ in curves["random"]]
    random_labels, random_final = random_curve[-1]
    print(f"\nrandom's final metric: {random_final:.4f} at {random_labels} labels")
    best = None
    for strategy in strategies:
        if strategy == "random":
            continue
        needed = labels_to_reach([(lab, m) for lab, m, _ in curves[strategy]], random_final)
        ratio = needed / random_labels if needed is not None else math.inf
        shown = f"{needed:.0f} labels, ratio {ratio:.2f}" if needed else "never reached"
        print(f"  {strategy:<12} reaches it at {shown}")
        if best is None or ratio < best[1]:
            best = (strategy, ratio)
    if best is not None:
        print(f"label-efficiency ratio (best: {best[0]}): {best[1]:.2f}  (goal <= 0.5)")

    print("\nSuggestion acceptance by cycle (boxes of served cases; mean over seeds):")
    print(
        f"{'strategy':<12} {'labels':>6} {'kept':>6} {'edited':>7} {'rejected':>9} "
        f"{'added':>6} {'report edit':>12}"
    )
    grouped = defaultdict(list)
    for row in rows:
        grouped[(row["strategy"], row["labels"])].append(row)
    for (strategy, labels), group in sorted(grouped.items()):

        def mean(key, group=group):
            values = [g[key] for g in group if g[key] == g[key]]
            return statistics.mean(values) if values else float("nan")

        print(
            f"{strategy:<12} {labels:>6} {mean('served_accepted_share'):>6.2f} "
            f"{mean('served_edited_share'):>7.2f} {mean('served_rejected_share'):>9.2f} "
            f"{mean('served_added_boxes'):>6.1f} {mean('served_report_edit_distance'):>12.2f}"
        )
    plot(curves, args.out / "label_efficiency.png", random_final)
    print(f"\nwritten {args.out / 'label_efficiency.csv'} and {args.out / 'label_efficiency.png'}")
    print(f"total wall time {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
