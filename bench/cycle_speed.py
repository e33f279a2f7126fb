"""Wall time of one retraining cycle, split by stage, through a real Celery worker.

    python bench/cycle_speed.py [--labels 500] [--unlabelled 2000] [--validation 50]
        [--size 512] [--steps 300] [--threads 2]

A project with ``labels + validation + unlabelled`` synthetic cases (ingested as DICOM), the
labels and validation labels submitted by a simulated annotator, a first cycle's version
promoted so that the measured cycle warm-starts and compares against a serving version as in
steady state; then one cycle, whose stage times (training, evaluating, registering, scoring,
ranking) come from the cycle's own record. The baseline in the same process is the model alone:
``BuiltinModel.train`` on the same labels for the same number of optimisation steps, from the
same first version, without the platform (cycles count training in steps,
``BuiltinConfig.train_steps``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loop_support


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labels", type=int, default=500)
    parser.add_argument("--unlabelled", type=int, default=2000)
    parser.add_argument("--validation", type=int, default=50)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=300, help="training steps of the cycle")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--database-url", help="PostgreSQL URL; default SQLite in a temp dir")
    args = parser.parse_args()

    var = loop_support.prepare(args.database_url, threads=args.threads)
    import torch

    torch.set_num_threads(args.threads)
    from active_learning.ml.builtin import BuiltinConfig, BuiltinModel
    from active_learning.services import case_inputs, cycles, loop_settings, versions
    from annotations.models import Case

    total = args.labels + args.validation + args.unlabelled
    started = time.perf_counter()
    project, annotator, truth = loop_support.make_project(
        "cycle-speed",
        pool=total,
        size=args.size,
        seed=5,
        settings={},
    )
    loop_settings.update_loop_settings(
        project=project,
        model_config={"train_steps": args.steps},
        acquisition_strategy="hybrid",
        auto_retrain_threshold=0,
    )
    print(f"{total} cases generated and ingested in {time.perf_counter() - started:.0f} s")
    ids = sorted(truth)
    Case.objects.filter(pk__in=ids[: args.validation]).update(is_validation=True)
    started = time.perf_counter()
    loop_support.label_given(project, annotator, truth, ids[: args.validation + args.labels])
    seconds = time.perf_counter() - started
    print(f"{args.validation + args.labels} labels submitted in {seconds:.0f} s")

    worker = loop_support.start_worker(var)
    try:
        # Steady state: a serving version exists, trained by a first cycle on the same labels
        # (promoted by hand, not by the guard; it scores nothing, as nothing served yet).
        loop_settings.update_loop_settings(project=project, auto_promote=False)
        first = loop_support.run_cycle(project).model_version
        versions.promote(first)
        loop_settings.update_loop_settings(project=project, auto_promote=True)
        started = time.perf_counter()
        cycle = loop_support.run_cycle(project)
        wall = time.perf_counter() - started
    finally:
        worker.terminate()
        worker.wait(timeout=60)

    # Baseline: the model alone on the same labels for the same steps, this process.
    snapshot = [pk for pk, _ in cycle.label_snapshot]
    model = BuiltinModel(BuiltinConfig(finding_classes=tuple(project.finding_keys)))
    base_started = time.perf_counter()
    model.train(
        case_inputs.labelled_source(snapshot), max_steps=args.steps, warm_start=first.weights_path
    )
    baseline = time.perf_counter() - base_started

    print(
        f"\nOne cycle: {len(snapshot)} labels, {sum(map(len, cycle.chunks))} cases scored, "
        f"{args.validation} validation cases, {args.size}x{args.size}, "
        f"{args.threads} threads, {args.steps} training steps"
    )
    print(f"{'stage':<14} {'seconds':>9} {'share':>7}")
    stages = cycle.stage_seconds
    for name in ("training", "evaluating", "registering", "scoring", "ranking"):
        seconds = stages.get(name, 0.0)
        print(f"{name:<14} {seconds:>9.1f} {seconds / wall:>7.1%}")
    overhead = wall - sum(stages.values())
    print(f"{'queues, other':<14} {overhead:>9.1f} {overhead / wall:>7.1%}")
    print(f"{'total (wall)':<14} {wall:>9.1f}")
    scored = sum(map(len, cycle.chunks))
    if stages.get("scoring"):
        print(f"scoring throughput: {scored / stages['scoring']:.1f} cases/s")
    print(
        f"baseline, the model alone training the same labels ({args.steps} steps): "
        f"{baseline:.1f} s; "
        f"cycle training / baseline = {stages.get('training', 0.0) / baseline:.2f}x"
    )
    print(f"cycle {cycles.RetrainingCycle.objects.get(pk=cycle.pk).outcome}")


if __name__ == "__main__":
    main()
