"""How often each promotion rule promotes a candidate, with and without a real gain.

    python bench/promotion_guard.py [--sizes 20,50,100] [--trials 30] [--resamples 1000]
        [--gain 0.6] [--seed 0]

Two versions are simulated on the same N validation cases (three findings, prevalence 0.3 each,
a difficulty per case shared by both versions, as on a real validation set). The serving
version has quality 1.0; the candidate has the same quality (no gain: promoting it is a false
promotion) or 1.0 + ``--gain``. Per case each version gives calibrated finding probabilities,
detector candidates (one per truth box, matched at IoU >= 0.5 with probability 0.8, plus two
background candidates) and report findings (probability > 0.5), which
:mod:`active_learning.ml.paired_bootstrap` turns into the ``combined`` promotion metric.

Rules compared:
- ``old``: promote when the candidate's metric is higher on the validation cases (the rule before
  the guard; version 1 was promoted on one label);
- ``guard``: at least 20 validation labels and the lower end of the paired bootstrap's 95 %
  interval above 0 (``active_learning.services.promotion``).

Prints, per size and gain, each rule's promotion rate over the trials (seeds ``seed .. seed +
trials - 1``) with its binomial standard error, and the seconds one bootstrap took; the last
line is one JSON object with the same figures. Pure numpy; no database.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

from active_learning.ml import paired_bootstrap as pb

CLASSES = ("nodule", "effusion", "consolidation")
PREVALENCE = 0.3
MIN_LABELS = 20


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def simulate(
    rng: np.random.Generator,
    labels: np.ndarray,
    difficulty: np.ndarray,
    quality: float,
) -> pb.CaseOutcomes:
    """One version's outcomes on the cases (``labels`` ``(n, C)`` 0/1, ``difficulty`` ``(n,)``)."""
    n, c = labels.shape
    signed = 2 * labels - 1
    probabilities = _sigmoid(
        quality * signed - 0.5 * difficulty[:, None] + 0.8 * rng.normal(size=(n, c))
    )
    det_case, det_class, det_score, det_tp = [], [], [], []
    for i in range(n):
        for k in range(c):
            if labels[i, k]:
                det_case.append(i)
                det_class.append(k)
                det_score.append(float(_sigmoid(quality - difficulty[i] + 0.8 * rng.normal())))
                det_tp.append(bool(rng.uniform() < 0.8))
        for _ in range(2):
            det_case.append(i)
            det_class.append(int(rng.integers(c)))
            det_score.append(float(_sigmoid(-2.0 + rng.normal())))
            det_tp.append(False)
    stated = probabilities > 0.5
    truth = labels.astype(bool)
    report = np.stack(
        [(stated & truth).sum(1), (stated & ~truth).sum(1), (~stated & truth).sum(1)], axis=1
    )
    return pb.CaseOutcomes(
        classes=CLASSES,
        n_cases=n,
        detection_case=np.asarray(det_case, dtype=np.int64),
        detection_class=np.asarray(det_class, dtype=np.int64),
        detection_score=np.asarray(det_score),
        detection_tp=np.asarray(det_tp, dtype=bool),
        truth_counts=labels.astype(np.int64),
        finding_labels=labels.astype(np.float64),
        finding_probabilities=probabilities,
        report_counts=report.astype(np.int64),
    )


def trial(seed: int, size: int, gain: float, resamples: int) -> tuple[bool, bool, float]:
    """(old rule promotes, guard promotes, seconds of the bootstrap) for one simulated pair."""
    rng = np.random.default_rng(seed)
    labels = (rng.uniform(size=(size, len(CLASSES))) < PREVALENCE).astype(np.int64)
    difficulty = rng.normal(size=size)
    serving = simulate(rng, labels, difficulty, 1.0)
    candidate = simulate(rng, labels, difficulty, 1.0 + gain)
    started = time.perf_counter()
    result = pb.paired_bootstrap(
        candidate, serving, metric_name="combined", resamples=resamples, seed=seed
    )
    seconds = time.perf_counter() - started
    old = (result.difference or 0.0) > 0
    guard = size >= MIN_LABELS and result.beyond_noise
    return old, guard, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="20,50,100")
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--gain", type=float, default=0.6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    figures = []
    print(f"{'cases':>6} {'gain':>5} {'old rule':>16} {'guard':>16} {'s/bootstrap':>12}")
    for size in sizes:
        for gain in (0.0, args.gain):
            runs = [trial(args.seed + t, size, gain, args.resamples) for t in range(args.trials)]
            row = {"cases": size, "gain": gain, "trials": args.trials}
            for name, index in (("old", 0), ("guard", 1)):
                rate = float(np.mean([r[index] for r in runs]))
                row[name] = round(rate, 3)
                row[f"{name}_se"] = round(math.sqrt(rate * (1 - rate) / args.trials), 3)
            row["seconds_per_bootstrap"] = round(float(np.median([r[2] for r in runs])), 3)
            figures.append(row)
            old = f"{row['old']:.2f} ± {row['old_se']:.2f}"
            guard = f"{row['guard']:.2f} ± {row['guard_se']:.2f}"
            seconds = row["seconds_per_bootstrap"]
            print(f"{size:>6} {gain:>5.2f} {old:>16} {guard:>16} {seconds:>12.3f}", flush=True)
    print(
        json.dumps(
            {
                "seeds": [args.seed, args.seed + args.trials - 1],
                "resamples": args.resamples,
                "figures": figures,
            }
        )
    )


if __name__ == "__main__":
    main()
