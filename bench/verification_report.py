"""How long the statistics of a full verification report take.

    python bench/verification_report.py [--cases 1000] [--resamples 2000] [--findings 5]
        [--seed 0]

Two versions are simulated on the same test cases (``--findings`` findings that are also box
classes, prevalence about 0.5, about three detector candidates and 0.6 truth boxes per case and
class; the newer version sharper). A full report is what the report service computes:
every figure of :mod:`active_learning.ml.verification.figures` on all cases with its 95 %
percentile interval over ``--resamples`` case-level resamples; the same within each subgroup of
sex (2), age band (4), view position (2), manufacturer (3) and site (3); and the comparison with
the parent version (paired differences of every figure on the same resamples, DeLong per
finding). Prints the wall-clock and CPU seconds of each part, the total and the figures counted;
the last line is one JSON object with the same. Pure numpy, one process; no database. The goal
is <= 60 s on 2 cores; where other jobs share the cores, wall-clock exceeds CPU time.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from pycocoevalcap.rouge.rouge import Rouge

from active_learning.ml.paired_bootstrap import CaseOutcomes
from active_learning.ml.verification import text
from active_learning.ml.verification.figures import (
    VersionOutcomes,
    bootstrap_figures,
    delong_per_finding,
    paired_differences,
    subgroup_figures,
)

SUBGROUPS = {
    "sex": ("F", "M"),
    "age_band": ("18-39", "40-59", "60-79", "80+"),
    "view_position": ("PA", "AP"),
    "manufacturer": ("GE Healthcare", "Siemens Healthineers", "Philips"),
    "site": ("site-a", "site-b", "site-c"),
}


SIDES = ("left", "right", "bilateral")
FILLER = ("no acute change", "lungs otherwise clear", "heart size normal", "comparison made")


def reports(rng: np.random.Generator, states: np.ndarray) -> list[str]:
    """One tokenised report per case: a sentence per finding present (with a side) and a few
    negatives and fillers, so drafts share common n-grams and differ in rare ones."""
    out = []
    for row in states:
        words: list[str] = []
        for k, present in enumerate(row):
            if present:
                words += [str(rng.choice(SIDES)), f"finding_{k}", "seen", "."]
            elif rng.random() < 0.3:
                words += ["no", f"finding_{k}", "."]
        words += [*str(rng.choice(FILLER)).split(), "."]
        out.append(" ".join(words))
    return out


def simulate(
    rng: np.random.Generator, labels: np.ndarray, sharpness: float, references: list[str]
) -> VersionOutcomes:
    n, c = labels.shape
    probabilities = 1 / (1 + np.exp(-(sharpness * (2 * labels - 1) + rng.normal(size=(n, c)))))
    truth_counts = rng.poisson(0.6, (n, c))
    per_case = rng.poisson(3 * c, n)
    detection_case = np.repeat(np.arange(n), per_case)
    d = detection_case.size
    detection_class = rng.integers(0, c, d)
    hits = rng.uniform(size=d) < 0.3
    scores = np.clip(rng.normal(0.4 + 0.3 * hits, 0.2), 0, 1)
    outcomes = CaseOutcomes(
        classes=tuple(f"finding_{k}" for k in range(c)),
        n_cases=n,
        detection_case=detection_case,
        detection_class=detection_class,
        detection_score=scores,
        detection_tp=hits,
        truth_counts=truth_counts,
        finding_labels=labels.astype(np.float64),
        finding_probabilities=probabilities,
        report_counts=rng.integers(0, 3, (n, 3)),
    )
    drafts = reports(rng, probabilities >= 0.5)
    refs = {i: [r] for i, r in enumerate(references)}
    _, rouge = Rouge().compute_score(refs, {i: [d] for i, d in enumerate(drafts)})
    return VersionOutcomes(
        outcomes,
        thresholds={k: 0.5 for k in outcomes.classes},
        report_scores={"rouge_l_f_beta1.2": np.asarray(rouge, dtype=np.float64)},
        report_corpus=text.report_corpus(references, drafts),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--findings", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    labels = rng.integers(0, 2, (args.cases, args.findings))
    started = (time.perf_counter(), time.process_time())
    references = reports(rng, labels == 1)
    newer = simulate(rng, labels, 1.5, references)
    parent = simulate(rng, labels, 1.0, references)
    attributes = {name: list(rng.choice(values, args.cases)) for name, values in SUBGROUPS.items()}
    timings: dict[str, float] = {}
    cpu: dict[str, float] = {}
    common = {"resamples": args.resamples, "seed": args.seed}

    def timed(part: str, started: tuple[float, float]) -> None:
        timings[part] = time.perf_counter() - started[0]
        cpu[part] = time.process_time() - started[1]

    timed("report_texts", started)  # ROUGE-L per case and the corpus statistics, once

    started = (time.perf_counter(), time.process_time())
    figures = bootstrap_figures(newer, **common)
    timed("all_cases", started)

    started = (time.perf_counter(), time.process_time())
    groups = subgroup_figures(newer, attributes, min_cases=30, **common)
    timed("subgroups", started)

    started = (time.perf_counter(), time.process_time())
    differences = paired_differences(newer, parent, **common)
    delong = delong_per_finding(newer, parent)
    timed("comparison", started)
    timings["total"] = sum(timings.values())
    cpu["total"] = sum(cpu.values())

    result = {
        "cases": args.cases,
        "resamples": args.resamples,
        "findings": args.findings,
        "seed": args.seed,
        "figures": len(figures),
        "subgroups": sum(len(v) for v in groups.values()),
        "paired_figures": len(differences),
        "delong_findings": len(delong),
        "seconds": {k: round(v, 2) for k, v in timings.items()},
        "cpu_seconds": {k: round(v, 2) for k, v in cpu.items()},
    }
    print(f"{'part':<12} {'wall s':>8} {'cpu s':>8}")
    for part, seconds in timings.items():
        print(f"{part:<12} {seconds:8.2f} {cpu[part]:8.2f}")
    for name in ("findings.finding_0.auroc", "reports.bleu_4", "reports.cider_d"):
        f = figures[name]
        print(f"{name} {f.value:.3f} (95% CI {f.low:.3f}-{f.high:.3f})")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
