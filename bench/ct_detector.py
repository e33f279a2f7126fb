"""The 3D CT detector (MONAI RetinaNet in 3D) on synthetic chest CT: training time, sliding-window
suggestion time and FROC at LUNA16's rates on held-out volumes, over seeds.

    python bench/ct_detector.py [--seeds 0 1] [--train 10] [--test 8] [--steps 100]
        [--size 80] [--slices 40] [--fov 160] [--threads 2]

Per seed: ``--train`` and ``--test`` synthetic chest CT volumes (``active_learning.ml.
synthetic_ct``: two nodules each, diameters LIDC-like, log-normal around 6 mm, 3-30 mm) of
``--size`` x ``--size`` pixels over a ``--fov`` mm field of view and ``--slices`` slices 2 mm
apart; by default 80 x 80 x 40 voxels of 2 mm, resampled to the detector's 2 mm isotropic
voxels (no change). The held-out volumes use other generator seeds than the training ones.
The model trains ``--steps`` optimisation steps from scratch with its default settings
(patches 32 x 32 x 32, batch 2, so an epoch over 10 volumes is 5 steps), then predicts every
held-out volume as the Celery scoring task does (MONAI's sliding windows of 48 x 48 x 40, 25 %
overlap, plus the flipped pass for box stability); FROC comes from those predictions'
candidates (every candidate, none cut at a display threshold).

Prints, per seed and as mean and standard deviation over seeds: training seconds per epoch per
10 volumes, suggestion seconds per volume (p50 over the held-out volumes; without the flipped
pass on the first three), FROC sensitivity at 1/8 ... 8 false positives per scan (3D IoU >= 0.1,
MONAI's LUNA16 matching) and its mean, AP at 3D IoU 0.1.

Operating points: the nodule class's display threshold fitted on the first half of the held-out
volumes (precision target 0.7, the default) two ways: as the detector fits it (candidates
matched by 3D IoU 0.1, the AP floor at 3D IoU 0.1:
``active_learning.ml.ct_detector.operating_points``) and by the built-in model's rule (3D IoU
0.5, AP@0.5 floor), with what the boxes shown at each threshold are worth on the second half
(precision and recall, matched at 3D IoU 0.1 as the version's evaluation counts them).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _volumes(seeds: range, args: argparse.Namespace) -> list:
    from active_learning.ml import synthetic_ct

    return [
        synthetic_ct.labelled_volume(
            synthetic_ct.generate_series(
                seed, args.slices, args.size, slice_spacing_mm=args.fov / args.size,
                field_of_view_mm=args.fov, nodules=2,
            ),
            case_id=f"ct{seed}",
        )
        for seed in seeds
    ]  # fmt: skip


def run_seed(seed: int, args: argparse.Namespace) -> dict:
    from active_learning.ml.ct_detector import CTDetector, CTDetectorConfig
    from active_learning.ml.ct_detector.model import average_precision_3d
    from active_learning.ml.interface import UncertaintyOptions
    from active_learning.ml.metrics.boxes import LUNA16_FROC_RATES, froc

    base = 1000 * (seed + 1)
    train = _volumes(range(base, base + args.train), args)
    test = _volumes(range(base + 500, base + 500 + args.test), args)
    config = CTDetectorConfig(seed=seed, train_steps=args.steps, warmup_steps=args.steps // 10)
    model = CTDetector(config)
    report = model.train(lambda: iter(train))
    patches = report.steps * config.batch_size  # one patch per volume read
    per_epoch_10 = report.seconds / patches * 10
    scoring, plain, truth, candidates = [], [], [], []
    for n, volume in enumerate(test):
        started = time.perf_counter()
        (prediction,) = model.predict([volume], uncertainty=UncertaintyOptions(box_stability=True))
        scoring.append(time.perf_counter() - started)
        if n < 3:
            started = time.perf_counter()
            model.predict([volume], uncertainty=UncertaintyOptions(box_stability=False))
            plain.append(time.perf_counter() - started)
        truth += [_row(volume.case_id, b) for b in volume.boxes]
        candidates += [{**_row(volume.case_id, b), "score": b.score} for b in prediction.candidates]
    images = [v.case_id for v in test]
    curve = froc(truth, candidates, images=images, rates=LUNA16_FROC_RATES, iou_threshold=0.1)
    ap = average_precision_3d(truth, candidates, config.finding_classes, images=images)
    return {
        **_operating_points(truth, candidates, images, config),
        "seed": seed,
        "train_seconds": report.seconds,
        "epoch_per_10_volumes_s": per_epoch_10,
        "loss_first": statistics.mean(report.losses[:10]),
        "loss_last": statistics.mean(report.losses[-10:]),
        "suggest_p50_s": statistics.median(scoring),
        "suggest_plain_p50_s": statistics.median(plain),
        "froc": curve,
        "ap_10": ap["map_10"],
        "nodules": len(truth),
    }


def _operating_points(truth: list, candidates: list, images: list, config: object) -> dict:
    """The nodule threshold fitted on the first half of ``images`` by 3D IoU 0.1 (the
    detector's rule) and by the built-in rule (IoU 0.5), each with the shown boxes' precision
    and recall on the second half (matched at 3D IoU 0.1)."""
    from active_learning.ml.builtin import operating_points as op
    from active_learning.ml.ct_detector.model import average_precision_3d
    from active_learning.ml.ct_detector.operating_points import fit_box_operating_points_3d
    from active_learning.ml.metrics.boxes import match_candidates

    classes = list(config.finding_classes)  # type: ignore[attr-defined]
    fit_on, judged_on = set(images[: len(images) // 2]), set(images[len(images) // 2 :])

    def part(rows: list, names: set) -> list:
        return [r for r in rows if r["image_id"] in names]

    truth_fit, cand_fit = part(truth, fit_on), part(candidates, fit_on)
    ap = average_precision_3d(truth_fit, cand_fit, classes, images=sorted(fit_on))
    common = {
        "target": config.box_precision_target,  # type: ignore[attr-defined]
        "min_positives": config.min_validation_positives,  # type: ignore[attr-defined]
        "min_ap": config.min_class_ap,  # type: ignore[attr-defined]
    }
    fitted = {
        "3d_iou_0.1": fit_box_operating_points_3d(
            truth_fit, cand_fit, classes, ap_per_class=ap["ap_10_per_class"],
            ap50_per_class=ap["ap_50_per_class"], iou_threshold=0.1, **common,
        ),
        "iou_0.5": op.fit_box_operating_points(
            truth_fit, cand_fit, classes, ap50_per_class=ap["ap_50_per_class"], **common
        ),
    }  # fmt: skip
    truth_judged, cand_judged = part(truth, judged_on), part(candidates, judged_on)
    out = {}
    for rule, points in fitted.items():
        point = points[classes[0]]
        threshold = point["threshold"] if point["reliable"] else None
        shown = [c for c in cand_judged if threshold is not None and c["score"] >= threshold]
        hits = sum(hit for _, _, hit in match_candidates(truth_judged, shown, iou_threshold=0.1)
                   .candidates)  # fmt: skip
        out[f"op_{rule}"] = {
            "threshold": threshold,
            "reason": point["reason"],
            "shown": len(shown),
            "precision": hits / len(shown) if shown else None,
            "recall": hits / len(truth_judged) if truth_judged else None,
        }
    return out


def _row(case_id: str, box: object) -> dict:
    keys = ("finding", "x", "y", "z", "width", "height", "depth")
    return {"image_id": case_id, **{k: getattr(box, k) for k in keys}}


def _spread(values: list[float]) -> str:
    mean = statistics.mean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.3f} +- {sd:.3f} (min {min(values):.3f}, max {max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--train", type=int, default=10, help="training volumes per seed")
    parser.add_argument("--test", type=int, default=8, help="held-out volumes per seed")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--size", type=int, default=80, help="pixels per side")
    parser.add_argument("--slices", type=int, default=40)
    parser.add_argument("--fov", type=float, default=160.0, help="field of view, mm")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from active_learning.ml.metrics.boxes import LUNA16_FROC_RATES

    torch.set_num_threads(args.threads)
    pixel = args.fov / args.size
    print(
        f"CT detector bench: {args.train} training + {args.test} held-out volumes per seed, "
        f"{args.size}x{args.size}x{args.slices} voxels of {pixel:.2f} mm, {args.steps} steps, "
        f"seeds {args.seeds}, {args.threads} threads"
    )
    rows = []
    for seed in args.seeds:
        row = run_seed(seed, args)
        rows.append(row)
        froc = row["froc"]
        points = " ".join(
            f"{rate:g}:{froc[f'sensitivity_at_{rate:g}_fp']:.2f}" for rate in LUNA16_FROC_RATES
        )
        print(
            f"seed {seed}: train {row['train_seconds']:.1f} s (loss {row['loss_first']:.3f} -> "
            f"{row['loss_last']:.3f}), epoch/10 volumes {row['epoch_per_10_volumes_s']:.2f} s, "
            f"suggestion p50 {row['suggest_p50_s']:.2f} s/volume "
            f"({row['suggest_plain_p50_s']:.2f} s without the flipped pass), "
            f"{row['nodules']} nodules; FROC {points}; mean {froc['froc_mean']:.3f}; "
            f"AP@0.1 {row['ap_10'] if row['ap_10'] is None else round(row['ap_10'], 3)}"
        )
    print("over seeds (mean +- sd):")
    figures = {
        "training s per epoch per 10 volumes": "epoch_per_10_volumes_s",
        "suggestion s per volume, p50 (sliding window + flip)": "suggest_p50_s",
        "suggestion s per volume, p50 (sliding window only)": "suggest_plain_p50_s",
    }
    for label, key in figures.items():
        print(f"  {label}: {_spread([r[key] for r in rows])}")
    for rate in LUNA16_FROC_RATES:
        key = f"sensitivity_at_{rate:g}_fp"
        print(f"  FROC sensitivity at {rate:g} FP/scan: {_spread([r['froc'][key] for r in rows])}")
    print(f"  FROC mean (LUNA16 score): {_spread([r['froc']['froc_mean'] for r in rows])}")
    aps = [r["ap_10"] for r in rows if r["ap_10"] is not None]
    if aps:
        print(f"  AP at 3D IoU 0.1: {_spread(aps)}")
    print("operating points (fitted on the first half of the held-out volumes, judged on the")
    print("second half at 3D IoU 0.1):")
    for rule in ("3d_iou_0.1", "iou_0.5"):
        for row in rows:
            point = row[f"op_{rule}"]
            print(
                f"  {rule} seed {row['seed']}: threshold {_num(point['threshold'])}, "
                f"{point['shown']} boxes shown, precision {_num(point['precision'])}, "
                f"recall {_num(point['recall'])} ({point['reason']})"
            )


def _num(value: float | None) -> str:
    return "none" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
