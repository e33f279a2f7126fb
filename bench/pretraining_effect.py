"""Effect of the self-supervised backbone: box mAP@0.5 and finding AUROC of the built-in model
trained on 50 labels from scratch and from the pretrained backbone, paired over seeds, and the
pretraining time.

    python bench/pretraining_effect.py [--quick] [--seeds 3] [--threads 2]

The unlabelled pool is ``--pool`` synthetic cases (set 101, ``active_learning.ml.synthetic``);
the backbone is pretrained once on all their images (SimCLR, ``active_learning.ml.pretraining``,
seed 0) and timed. For each seed, ``--labels`` cases are drawn from the pool (the labels a
project would have) and the model is trained twice for ``--train-steps`` steps, identical but for
``backbone_init``: same cases, same seed, so the same heads and the same batches. Both are
evaluated on ``--validation`` fixed cases outside the pool (the same for every seed):
``boxes.map_50`` from every candidate, ``findings.auroc_macro``. Printed: each seed's pair, the
mean and sample standard deviation of each arm, the paired difference with a 95 % t interval,
the pretraining seconds; the last line is one JSON object. ``--quick`` is the small form that
runs in about 15 minutes on 2 free cores (fewer images, steps and validation cases).

Figures are measured here, never in timed tests.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# Two-sided 95 % Student t quantiles by degrees of freedom (n - 1 seeds).
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}
POOL_SEED = 101
VALIDATION_START = 100_000  # validation indices of the same generator, never in the pool

FULL = {
    "pool": 2000,
    "labels": 50,
    "validation": 200,
    "size": 256,
    "pretrain_steps": 1500,
    "pretrain_batch": 32,
    "pretrain_size": 256,
    "train_steps": 600,
}
QUICK = {
    "pool": 300,
    "labels": 50,
    "validation": 50,
    "size": 256,
    "pretrain_steps": 120,
    "pretrain_batch": 16,
    "pretrain_size": 128,
    "train_steps": 150,
}


def _mean_sd(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else 0.0


def _paired(with_values: list[float], without: list[float]) -> dict[str, float]:
    """Mean paired difference (with - without), its sd and a 95 % t interval."""
    diffs = [a - b for a, b in zip(with_values, without, strict=True)]
    mean, sd = _mean_sd(diffs)
    half = T95.get(len(diffs) - 1, 1.96) * sd / len(diffs) ** 0.5 if len(diffs) > 1 else 0.0
    return {"mean": mean, "sd": sd, "low": mean - half, "high": mean + half}


def _metric(metrics: dict[str, Any], group: str, key: str) -> float:
    value = (metrics.get(group) or {}).get(key)
    return float(value) if isinstance(value, int | float) and value >= 0 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the ~15-minute form")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    for key, value in FULL.items():
        parser.add_argument(f"--{key.replace('_', '-')}", type=int, default=None, help=f"{value}")
    parser.add_argument("--prevalence", default="balanced", help="balanced or vindr")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()
    settings = dict(QUICK if args.quick else FULL)
    for key in FULL:
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from active_learning.ml.builtin import BuiltinConfig, BuiltinModel
    from active_learning.ml.datasets import labelled_from_synthetic
    from active_learning.ml.pretraining import PretrainConfig, pretrain, save_backbone
    from active_learning.ml.synthetic import generate_case

    size = settings["size"]

    def case(index: int):
        return generate_case(POOL_SEED, index, size, prevalence=args.prevalence)

    def source(indices: list[int]):
        def stream():
            for index in indices:
                yield labelled_from_synthetic(case(index), f"syn-{POOL_SEED}-{index}")

        return stream

    started_all = time.perf_counter()
    print(f"settings: {json.dumps(settings)} seeds {args.seeds} threads {args.threads}", flush=True)
    images = ((f"syn-{POOL_SEED}-{i}", case(i).pixels) for i in range(settings["pool"]))
    base = BuiltinConfig(input_size=size, seed=0)
    pretrain_config = PretrainConfig(
        steps=settings["pretrain_steps"],
        batch_size=settings["pretrain_batch"],
        image_size=settings["pretrain_size"],
        seed=0,
    )
    result = pretrain(images, backbone_config=base, config=pretrain_config)
    losses = result.losses
    window = max(1, len(losses) // 10)
    print(
        f"pretraining: {len(result.image_ids)} images, {result.steps} steps of "
        f"{pretrain_config.batch_size}, {result.seconds:.0f} s; NT-Xent first {window} steps "
        f"{statistics.fmean(losses[:window]):.3f} -> last {window} "
        f"{statistics.fmean(losses[-window:]):.3f}",
        flush=True,
    )
    workdir = Path(tempfile.mkdtemp(prefix="pretraining-effect-"))
    backbone_dir = workdir / "backbone"
    save_backbone(result, backbone_dir)
    validation = list(
        source(list(range(VALIDATION_START, VALIDATION_START + settings["validation"])))()
    )

    rows = []
    for seed in range(args.seeds):
        rng = np.random.default_rng(1000 + seed)
        labelled = sorted(
            int(i) for i in rng.choice(settings["pool"], settings["labels"], replace=False)
        )
        row: dict[str, Any] = {"seed": seed}
        for arm, init in (("scratch", None), ("pretrained", backbone_dir)):
            torch.manual_seed(seed)
            model = BuiltinModel(BuiltinConfig(input_size=size, seed=seed))
            began = time.perf_counter()
            model.train(source(labelled), max_steps=settings["train_steps"], backbone_init=init)
            train_seconds = time.perf_counter() - began
            metrics = model.evaluate(validation)
            row[arm] = {
                "map_50": _metric(metrics, "boxes", "map_50"),
                "auroc": _metric(metrics, "findings", "auroc_macro"),
                "train_seconds": round(train_seconds, 1),
            }
        rows.append(row)
        print(
            f"seed {seed}: map50 scratch {row['scratch']['map_50']:.4f} pretrained "
            f"{row['pretrained']['map_50']:.4f} | auroc scratch {row['scratch']['auroc']:.4f} "
            f"pretrained {row['pretrained']['auroc']:.4f} | train s "
            f"{row['scratch']['train_seconds']}/{row['pretrained']['train_seconds']}",
            flush=True,
        )

    summary: dict[str, Any] = {
        "labels": settings["labels"],
        "seeds": list(range(args.seeds)),
        "pool_images": len(result.image_ids),
        "validation_cases": settings["validation"],
        "input_size": size,
        "train_steps": settings["train_steps"],
        "pretrain_steps": result.steps,
        "pretrain_seconds": round(result.seconds, 1),
        "pretrain_loss_first": round(statistics.fmean(losses[:window]), 4),
        "pretrain_loss_last": round(statistics.fmean(losses[-window:]), 4),
        "quick": args.quick,
        "threads": args.threads,
    }
    print(f"{'metric':<8} {'scratch':>16} {'pretrained':>16} {'paired diff [95% CI]':>30}")
    for metric in ("map_50", "auroc"):
        scratch = [r["scratch"][metric] for r in rows]
        pre = [r["pretrained"][metric] for r in rows]
        s_mean, s_sd = _mean_sd(scratch)
        p_mean, p_sd = _mean_sd(pre)
        diff = _paired(pre, scratch)
        print(
            f"{metric:<8} {s_mean:8.4f} ± {s_sd:.4f} {p_mean:8.4f} ± {p_sd:.4f} "
            f"{diff['mean']:+8.4f} [{diff['low']:+.4f}, {diff['high']:+.4f}]"
        )
        summary[metric] = {
            "scratch": scratch,
            "pretrained": pre,
            "scratch_mean": s_mean,
            "scratch_sd": s_sd,
            "pretrained_mean": p_mean,
            "pretrained_sd": p_sd,
            "paired_diff": diff,
        }
    summary["total_seconds"] = round(time.perf_counter() - started_all, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    name = "pretraining_effect_quick.json" if args.quick else "pretraining_effect.json"
    (args.out / name).write_text(json.dumps({"summary": summary, "rows": rows}, indent=2))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
