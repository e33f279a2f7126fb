"""Label efficiency of the acquisition strategies: labels each strategy needs to reach the
validation mAP that random sampling reaches with the whole budget.

    python bench/label_efficiency.py            # the full run (see bench/README.md for its time)
    python bench/label_efficiency.py --quick    # the reduced run, <= 15 minutes on 2 cores

What runs, per seed (every strategy of a seed sees the same pool, the same first labels and the
same first model, so strategies are compared pairwise, seed by seed):

- a pool of ``--pool`` synthetic cases with VinDr-CXR's image-level prevalence (about 77 % with
  none of the six findings, pneumothorax 0.6 %) and faint, small lesions (``--difficulty``), and
  ``--validation`` fixed validation cases (the same for every seed and strategy);
- a simulated annotator (:mod:`active_learning.ml.simulated_annotator`) whose boxes differ from
  the truth as one VinDr reader's differ from another's; training and the operating points see
  the annotator's boxes, the metrics are computed against the truth;
- ``--initial`` random first labels and a first model (``--first-steps`` steps); then, until
  ``--budget`` labels (default 15 % of the pool), each strategy picks ``--step`` cases through the
  real strategies registry from the current model's predictions on the unlabelled pool (scores
  as the real loop derives them from a stored suggestion), the annotator labels them (what the
  model showed on them is tallied: kept at IoU >= 0.5), and the model trains on for
  ``--train-steps`` steps (a cycle building on the latest candidate), fits its operating points on
  the validation cases' annotator labels and is evaluated on their truth.

Printed per cycle (mean and sd over seeds): labels, validation mAP@0.5 from all candidates,
FROC mean, shown precision and recall, false boxes per normal image, the kept and kept-or-edited
shares of the boxes shown on the cases served next, and how many of those cases hold a lesion
(and a faint one, contrast < 0.6). Then, per strategy, the labels it needs to
reach random's final mAP (same seed), its ratio to random's labels with a 95 % interval over
seeds (t on log ratios), and the paired difference of final mAP with its 95 % interval. With
``--compare-confidences``, what other box precision confidences would have shown on the same
cycles' candidates (thresholds refitted on the same validation labels). Writes
``label_efficiency.csv`` and ``label_efficiency.json`` under ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

VALIDATION_SEED = 900_001  # the fixed validation cases: the same for every seed and strategy
TEST_SEED = 920_001  # the fixed held-out test cases the metrics are computed on
POOL_SEED = 910_000  # pool of seed s: synthetic set POOL_SEED + s

# Row keys of the shown boxes at the compared box precision confidences (``..._at_C``).
COMPARED = ("precision_shown_at_", "recall_shown_enough_at_", "false_boxes_per_normal_image_at_")

QUICK = {
    "pool": 1000,
    "validation": 200,
    "size": 128,
    "initial": 30,
    "step": 30,
    "budget": 120,
    "seeds": 2,
    "first_steps": 150,
    "train_steps": 60,
    "score_sample": 300,
    "report_tokens": 24,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"reduced run: {QUICK}")
    parser.add_argument("--pool", type=int, default=1000)
    parser.add_argument("--validation", type=int, default=200)
    parser.add_argument(
        "--test",
        type=int,
        default=200,
        help="fixed held-out cases the metrics are computed on (0: the validation cases, on "
        "which the operating points and the detector blend are chosen: optimistic)",
    )
    parser.add_argument("--size", type=int, default=256, help="image and model input size, px")
    parser.add_argument("--difficulty", type=float, default=0.7)
    parser.add_argument("--initial", type=int, default=30, help="random first labels")
    parser.add_argument("--step", type=int, default=30, help="labels per cycle")
    parser.add_argument("--budget", type=int, help="labels at the end (default 15 %% of pool)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--seed-ids",
        help="run these seeds only (comma-separated, e.g. 2,3): one process per core, each with "
        "its own --out, then --combine their JSON files",
    )
    parser.add_argument(
        "--combine",
        nargs="+",
        type=Path,
        metavar="JSON",
        help="print and write the summary of earlier runs' label_efficiency.json files "
        "(the same settings, different seeds) instead of running",
    )
    parser.add_argument("--strategies", default="random,uncertainty,hybrid")
    parser.add_argument("--first-steps", type=int, default=1200)
    parser.add_argument("--train-steps", type=int, default=400, help="steps per later cycle")
    parser.add_argument(
        "--score-sample",
        type=int,
        default=0,
        help="score only this many unlabelled cases per cycle, drawn at random (0: all)",
    )
    parser.add_argument(
        "--start",
        default="none",
        help="stored detector starting point the first model begins from, as a cycle's cold "
        "start does by default (synthetic-cxr-256: 256 px only); 'none': from scratch; "
        "'NAME:backbone': only its feature extractor (ResNet + FPN), loaded as a project's "
        "pretrained backbone is, the detection heads learnt from the labels; "
        "'NAME:new-classes': all of it, but with none of its finding classes matched to ours by "
        "name, as for a project whose findings the start does not know: the classification "
        "layer starts fresh (boxes, features and the heads' towers are the start's)",
    )
    parser.add_argument(
        "--annotator-scale",
        type=float,
        default=1.0,
        help="the simulated annotator's offsets times this (1.0: one VinDr reader against "
        "another; 0.0: the true boxes), to tell label noise from the recipe",
    )
    parser.add_argument("--box-stability", action="store_true", help="test-time views in scoring")
    parser.add_argument(
        "--compare-confidences",
        default="",
        metavar="C[,C...]",
        help="box precision confidences whose shown boxes are also scored each cycle, on the same "
        "candidates (thresholds refitted on the same validation labels; the loop itself runs at "
        "the model's box_precision_confidence), e.g. 0 for the plain validation precision",
    )
    parser.add_argument(
        "--skip-start-eval",
        action="store_true",
        help="do not evaluate the starting point with no training (by default each process's "
        "first seed does: with one process per seed that is the same figure several times)",
    )
    parser.add_argument(
        "--model-config",
        type=json.loads,
        default={},
        metavar="JSON",
        help="BuiltinConfig fields for recipe experiments, as a JSON object, e.g. "
        "'{\"pretrained_detector_lr_scale\": 0.1}'",
    )
    parser.add_argument("--report-tokens", type=int, default=64, help="report decoder length")
    # One thread by default: on a shared 2-core machine two OpenMP threads spin against the
    # other processes and a training step took 20x longer than with one.
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    args.strategies = args.strategies.split(",")
    args.seed_list = (
        [int(s) for s in args.seed_ids.split(",")] if args.seed_ids else list(range(args.seeds))
    )
    args.seeds = len(args.seed_list)
    if "random" not in args.strategies:
        parser.error("the random arm always runs: it is the baseline")
    args.compare_confidence_list = [
        float(c) for c in args.compare_confidences.split(",") if c.strip()
    ]
    if any(not (c == 0 or 0.5 <= c < 1) for c in args.compare_confidence_list):
        parser.error("--compare-confidences must be 0 or in [0.5, 1)")
    if args.budget is None:
        args.budget = round(0.15 * args.pool)
    # budget == initial: the first model only (recipe probes); no strategy is compared then.
    if args.initial > args.budget or args.budget > args.pool:
        parser.error("need initial <= budget <= pool")
    return args


# ------------------------------------------------------------------------------ one cycle
def model_config(args: argparse.Namespace, seed: int) -> Any:
    """The built-in model's settings for the bench (anything newer in BuiltinConfig keeps its
    default, so the bench picks up the detector's recipe as it changes)."""
    from dataclasses import fields

    from active_learning.ml.builtin.config import BuiltinConfig

    wanted = {
        "input_size": args.size,
        "seed": seed,
        "vocab_size": 400,
        "report_max_tokens": args.report_tokens,
        "train_steps": args.first_steps,
    }
    known = {f.name for f in fields(BuiltinConfig)}
    unknown = sorted(set(args.model_config) - known)
    if unknown:
        raise SystemExit(f"--model-config: no such BuiltinConfig field(s): {', '.join(unknown)}")
    wanted.update(args.model_config)
    return BuiltinConfig(**{k: v for k, v in wanted.items() if k in known})


def train(model: Any, cases: list[Any], steps: int, start: str | Path | None = None) -> float:
    """Train ``model`` for ``steps`` more optimisation steps on ``cases`` (a fresh one from the
    stored starting point ``start`` when given, or from the saved backbone directory ``start``
    is a path); returns seconds."""
    started = time.perf_counter()
    if isinstance(start, Path):
        model.train(lambda: iter(cases), max_steps=steps, backbone_init=start)
    else:
        model.train(lambda: iter(cases), max_steps=steps, starting_point=start)
    return time.perf_counter() - started


def backbone_of_start(name: str, config: Any, work: Path) -> Path:
    """The stored starting point ``name``'s feature extractor (ResNet + FPN) saved as a
    pretrained backbone artefact under ``work``: the path a project's self-supervised backbone
    takes into a cycle (:func:`active_learning.ml.pretraining.apply_backbone`), with heads that
    start fresh and learn only from the labels."""
    from active_learning.ml import pretraining
    from active_learning.ml.builtin import starting_point as stored

    point = stored.load(name)
    problem = stored.fits(config, point)
    if problem:
        raise SystemExit(f"--start {name}:backbone does not fit: {problem}")
    prefix = "network.feature_extractor."
    state = {k[len(prefix) :]: v for k, v in point.state.items() if k.startswith(prefix)}
    result = pretraining.PretrainResult(
        state=state,
        backbone_config=pretraining.backbone_settings(config),
        config=pretraining.PretrainConfig(steps=0),
        image_ids=[f"starting-point:{name}:{point.card['sha256']}"],
    )
    target = work / f"backbone-of-{name}"
    if not target.exists():
        pretraining.save_backbone(result, target)
    return target


def unknown_classes_in(name: str) -> None:
    """Make the stored starting point ``name`` load, in this process, as if it knew none of
    our finding classes: its card's class names are prefixed, so that
    :func:`active_learning.ml.builtin.starting_point.apply` matches no classification row by
    name and every class of ours keeps its fresh initialisation (the platform's path for a
    project whose findings the start does not know). Everything else it holds is loaded."""
    import copy

    from active_learning.ml.builtin import starting_point as stored

    original = getattr(stored.load, "__wrapped__", stored.load)

    def load(point_name: str = stored.DEFAULT, *, root: Path = stored.ROOT) -> Any:
        point = original(point_name, root=root)
        if point_name != name:
            return point
        card = copy.deepcopy(point.card)
        network = card["network"]
        network["finding_classes"] = [f"start:{c}" for c in network["finding_classes"]]
        return stored.StartingPoint(point.name, card, point.state)

    load.__wrapped__ = original  # type: ignore[attr-defined]
    stored.load = load


def candidates_of(prediction: Any) -> list[Any]:
    """Every candidate box of a prediction (``boxes`` for a model without candidates)."""
    return list(getattr(prediction, "candidates", None) or prediction.boxes)


def truth_boxes(cases: list[Any]) -> list[Any]:
    """The cases' boxes as evaluation ground truth."""
    from active_learning.ml import evaluate as ev

    return [
        ev.GroundTruthBox(case.case_id, b.finding, b.x, b.y, b.width, b.height)
        for case in cases
        for b in case.boxes
    ]


def predicted_boxes(cases: list[Any], predictions: list[Any], *, candidates: bool) -> list[Any]:
    """Every candidate (``candidates``) or the shown boxes of each case's prediction."""
    from active_learning.ml import evaluate as ev

    out = []
    for case, prediction in zip(cases, predictions, strict=True):
        boxes = candidates_of(prediction) if candidates else prediction.boxes
        out += [
            ev.PredictedBox(case.case_id, b.finding, b.x, b.y, b.width, b.height, b.score)
            for b in boxes
        ]
    return out


class ThresholdRefit:
    """Box thresholds chosen again at another ``box_precision_confidence`` from the same
    candidates a model fitted its own operating points on: what that level would have shown,
    side by side with what the model showed. Build it after ``fit_operating_points`` (the fused
    scores then are the ones the model fitted on)."""

    def __init__(self, model: Any, annotated: list[Any]) -> None:
        from active_learning.ml import evaluate as ev
        from active_learning.ml.interface import UncertaintyOptions

        self.model = model
        self.classes = list(model.finding_classes)
        predictions = model.predict(annotated, uncertainty=UncertaintyOptions(box_stability=False))
        self.truth = truth_boxes(annotated)
        self.candidates = predicted_boxes(annotated, predictions, candidates=True)
        self.ap50 = ev.box_map(self.truth, self.candidates, self.classes)["ap_50_per_class"]

    def points(self, confidence: float) -> dict[str, Any]:
        """Each class's box operating point at ``confidence`` (the model's precision target),
        by the rule the model uses."""
        from active_learning.ml.builtin import operating_points as op

        config = self.model.config
        return op.fit_box_operating_points(
            self.truth,
            self.candidates,
            self.classes,
            ap50_per_class=self.ap50,
            target=config.box_precision_target,
            min_positives=config.min_validation_positives,
            min_ap=config.min_class_ap,
            confidence=confidence,
        )

    @staticmethod
    def shown(points: dict[str, Any], candidates: list[Any]) -> list[Any]:
        """The candidates those points show."""
        return [
            b
            for b in candidates
            if points[b.finding]["reliable"] and b.score >= points[b.finding]["threshold"]
        ]


def recall_over_enough(
    model: Any, points: dict[str, Any], recall_per_class: dict[str, Any]
) -> float | None:
    """The target's recall: the mean over the classes with enough validation positives for an
    operating point (``config.min_validation_positives``), as suggestion_quality reports."""
    enough = [
        c for c in model.finding_classes
        if points.get(c, {}).get("validation_positives", 0)
        >= model.config.min_validation_positives
        and recall_per_class.get(c) is not None
    ]  # fmt: skip
    return statistics.mean(recall_per_class[c] for c in enough) if enough else None


def evaluate(
    model: Any, validation: list[Any], annotated: list[Any], compare: list[float] | None = None
) -> dict[str, Any]:
    """Fit the operating points on the annotator's validation labels (as a cycle does), then
    metrics against the truth: mAP@0.5 and FROC from all candidates, shown boxes' precision,
    recall and false boxes per normal image. ``compare``: box precision confidences whose shown
    boxes are scored too, chosen on the same validation candidates (keys ``..._at_C``)."""
    from active_learning.ml import evaluate as ev
    from active_learning.ml.draft_guard import is_degenerate
    from active_learning.ml.interface import UncertaintyOptions
    from active_learning.ml.metrics.findings import prefill_metrics
    from medloop.metrics.text import word_edit_distance

    if hasattr(model, "fit_operating_points"):
        model.fit_operating_points(annotated)
    classes = list(model.finding_classes)
    predictions = model.predict(validation, uncertainty=UncertaintyOptions(box_stability=False))
    truth = truth_boxes(validation)
    candidates = predicted_boxes(validation, predictions, candidates=True)
    shown = predicted_boxes(validation, predictions, candidates=False)
    images = [case.case_id for case in validation]
    edits, degenerate = [], 0
    labels: dict[str, list[int]] = {c: [] for c in classes}
    probabilities: dict[str, list[float]] = {c: [] for c in classes}
    for case, prediction in zip(validation, predictions, strict=True):
        for c in classes:
            if case.findings.get(c) is not None:
                labels[c].append(int(bool(case.findings[c])))
                probabilities[c].append(prediction.findings[c])
        draft = " ".join(v for v in prediction.report.values() if v)
        final = " ".join(case.report[k] for k in prediction.report if case.report.get(k))
        if final:
            edits.append(word_edit_distance(draft, final))
        degenerate += is_degenerate(draft) is not None
    boxes = ev.box_map(truth, candidates, classes)
    metrics = {"map50": boxes["map_50"], "ap50_per_class": boxes["ap_50_per_class"]}
    metrics["positives_per_class"] = {
        name: len({b.image_id for b in truth if b.finding == name}) for name in classes
    }
    if hasattr(ev, "froc"):
        metrics["froc_mean"] = ev.froc(truth, candidates, images=images).get("froc_mean")
    if hasattr(ev, "shown_box_metrics"):
        seen = ev.shown_box_metrics(truth, shown, classes, images=images)
        metrics.update(
            precision_shown=seen.get("precision_shown"),
            recall_shown=seen.get("recall_shown"),
            recall_shown_per_class=seen.get("recall_shown_per_class"),
            false_boxes_per_normal_image=seen.get("false_boxes_per_normal_image"),
        )
        points = (model.operating_points() or {}).get("boxes", {})
        metrics["recall_shown_enough"] = recall_over_enough(
            model, points, seen.get("recall_shown_per_class") or {}
        )
        if compare:
            refit = ThresholdRefit(model, annotated)
            own = model.config.box_precision_confidence
            mine = ThresholdRefit.shown(refit.points(own), candidates)
            if len(mine) != len(shown):
                raise SystemExit(
                    f"refitted at the model's confidence {own} the thresholds show {len(mine)} "
                    f"boxes, the model itself {len(shown)}: the refit does not reproduce them"
                )
            for level in compare:
                at = refit.points(level)
                boxes_at = ThresholdRefit.shown(at, candidates)
                seen_at = ev.shown_box_metrics(truth, boxes_at, classes, images=images)
                metrics[f"precision_shown_at_{level:g}"] = seen_at["precision_shown"]
                metrics[f"recall_shown_enough_at_{level:g}"] = recall_over_enough(
                    model, at, seen_at.get("recall_shown_per_class") or {}
                )
                metrics[f"false_boxes_per_normal_image_at_{level:g}"] = seen_at[
                    "false_boxes_per_normal_image"
                ]
    # Word edit distance from each draft to the case's true report, over the report's length
    # (as suggestion_quality and the Models page measure it), and drafts the guard refuses.
    metrics["report_edit_distance"] = statistics.mean(edits) if edits else None
    metrics["degenerate_drafts"] = degenerate
    # The findings the workspace would prefill (the version's findings operating points) against
    # the truth: predictive values, wrong prefills per case, share of case-findings prefilled.
    prefilled = prefill_metrics(
        labels, probabilities, (model.operating_points() or {}).get("findings", {})
    )
    metrics.update(
        prefill_ppv=prefilled["ppv"],
        prefill_npv=prefilled["npv"],
        prefill_wrong_per_case=prefilled["wrong_per_case"],
        prefill_coverage=prefilled["coverage"],
    )
    return metrics


def next_batch(
    strategy_name: str,
    model: Any,
    unlabelled: list[Any],
    labelled: list[Any],
    args: argparse.Namespace,
    seed: int,
    cycle: int,
) -> tuple[list[int], dict[int, Any], float]:
    """The next ``args.step`` case ids by the registered strategy, the predictions made on the
    way (case id -> prediction) and the seconds scoring took."""
    import numpy as np

    from active_learning import strategies
    from active_learning.ml.interface import UncertaintyOptions

    strategy = strategies.get(strategy_name)
    rng = np.random.default_rng([seed, cycle, 7])
    scored = unlabelled
    if args.score_sample and len(unlabelled) > args.score_sample:
        picks = rng.choice(len(unlabelled), size=args.score_sample, replace=False)
        scored = [unlabelled[int(i)] for i in sorted(picks)]
    predictions: dict[int, Any] = {}
    started = time.perf_counter()
    labelled_embeddings = None
    if strategy.needs_scores or strategy.needs_embeddings:
        options = UncertaintyOptions(box_stability=args.box_stability)
        for item, prediction in zip(
            scored, model.predict([c.truth for c in scored], uncertainty=options), strict=True
        ):
            predictions[item.case_id] = prediction
        if strategy.needs_embeddings:
            labelled_embeddings = model.embed([c.truth for c in labelled])
    seconds = time.perf_counter() - started
    candidates = [
        strategies.Candidate(
            item.case_id,
            strategy_scores(predictions[item.case_id]) if item.case_id in predictions else {},
            getattr(predictions.get(item.case_id), "embedding", None),
        )
        for item in scored
    ]
    context = strategies.RankingContext(
        batch_size=args.step, labelled_embeddings=labelled_embeddings, seed=seed * 1000 + cycle
    )
    order = strategy.rank(candidates, context)
    return order[: args.step], predictions, seconds


def strategy_scores(prediction: Any) -> dict[str, float]:
    import loop_support

    return loop_support.strategy_scores(prediction)


# ---------------------------------------------------------------------------- one seed
def run_seed(
    seed: int, args: argparse.Namespace, validation: list[Any], test: list[Any], work: Path
) -> list[dict]:
    """Every strategy's curve for one seed (rows of the CSV)."""
    import loop_support
    import numpy as np

    from active_learning.ml.builtin.model import BuiltinModel
    from active_learning.ml.checkpoints import load_model
    from active_learning.ml.interface import UncertaintyOptions

    started = time.perf_counter()
    pool = loop_support.synthetic_pool(
        seed=POOL_SEED + seed,
        count=args.pool,
        size=args.size,
        difficulty=args.difficulty,
        annotator_seed=seed,
        annotator_scale=args.annotator_scale,
    )
    # Metrics on the held-out test cases when there are any: the validation cases chose the
    # operating points and the detector blend.
    truth_validation = [c.truth for c in (test or validation)]
    annotated_validation = [c.annotated for c in validation]
    rng = np.random.default_rng(seed)
    first = sorted(int(i) for i in rng.choice(len(pool), size=args.initial, replace=False))
    print(
        f"seed {seed}: pool {len(pool)} ({sum(bool(c.truth.boxes) for c in pool)} with lesions) "
        f"made in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    model = BuiltinModel(model_config(args, seed))
    start: str | Path | None = None if args.start == "none" else args.start
    if isinstance(start, str) and start.endswith(":backbone"):
        start = backbone_of_start(start.removesuffix(":backbone"), model.config, work)
    if isinstance(start, str) and start.endswith(":new-classes"):
        start = start.removesuffix(":new-classes")
        unknown_classes_in(start)
    if isinstance(start, str) and seed == args.seed_list[0] and not args.skip_start_eval:
        # What the stored starting point does with no label of this pool (its operating points
        # fitted on the validation labels, as a cycle does): the bar every cycle must clear.
        untouched = BuiltinModel(model_config(args, seed))
        train(untouched, [pool[i].annotated for i in first], 0, start)
        zero = evaluate(untouched, truth_validation, annotated_validation)
        print(f"  starting point, no training: mAP50 {_fmt(zero['map50'])}  per class "
              f"{_per_class(zero)}", flush=True)  # fmt: skip
    seconds = train(model, [pool[i].annotated for i in first], args.first_steps, start)
    first_metrics = evaluate(
        model, truth_validation, annotated_validation, args.compare_confidence_list
    )
    first_version = work / f"seed{seed}-first"
    model.save(first_version)
    print(f"  first model: {args.initial} labels, {seconds:.0f} s, mAP50 "
          f"{_fmt(first_metrics['map50'])}  per class {_per_class(first_metrics)}"
          f"{_choices(model)}", flush=True)  # fmt: skip

    rows = []
    for name in args.strategies:
        # Each arm starts from the shared first version (weights, temperature, operating points)
        # and builds on its own latest model from then on.
        model = load_model(first_version)
        labelled_ids = set(first)
        metrics = first_metrics
        cycle = 0
        while True:
            row = {"seed": seed, "strategy": name, "cycle": cycle, "labels": len(labelled_ids)}
            row.update({k: v for k, v in metrics.items() if not isinstance(v, dict)})
            row["ap50_per_class"] = json.dumps(metrics.get("ap50_per_class"))
            row["recall_shown_per_class"] = json.dumps(metrics.get("recall_shown_per_class"))
            if len(labelled_ids) >= args.budget:
                rows.append(row)
                break
            unlabelled = [c for c in pool if c.case_id not in labelled_ids]
            labelled = [c for c in pool if c.case_id in labelled_ids]
            picked, predictions, score_seconds = next_batch(
                name, model, unlabelled, labelled, args, seed, cycle
            )
            picked = picked[: args.budget - len(labelled_ids)]
            by_id = {c.case_id: c for c in pool}
            missing = [by_id[i] for i in picked if i not in predictions]
            if missing:  # what the annotator is shown on cases the strategy did not score
                cheap = UncertaintyOptions(box_stability=False)
                for item, prediction in zip(
                    missing, model.predict([c.truth for c in missing], uncertainty=cheap),
                    strict=True,
                ):  # fmt: skip
                    predictions[item.case_id] = prediction
            tally = loop_support.ServedTally()
            for case_id in picked:
                loop_support.tally_served(
                    tally, list(predictions[case_id].boxes), list(by_id[case_id].annotated.boxes)
                )
            row.update(tally.row())
            row["served_with_lesions"] = tally.lesion_cases
            row["served_faint"] = sum(by_id[i].contrast < 0.6 for i in picked)
            row["score_seconds"] = round(score_seconds, 1)
            rows.append(row)
            labelled_ids.update(picked)
            cycle += 1
            training = [by_id[i].annotated for i in sorted(labelled_ids)]
            seconds = train(model, training, args.train_steps)
            metrics = evaluate(
                model, truth_validation, annotated_validation, args.compare_confidence_list
            )
            print(
                f"  {name:<12} cycle {cycle} labels {len(labelled_ids):>4}  mAP50 "
                f"{_fmt(metrics['map50'])}  shown precision {_fmt(metrics.get('precision_shown'))}"
                f"  false/normal {_fmt(metrics.get('false_boxes_per_normal_image'))}  kept "
                f"{_fmt(row.get('kept_share'))}  report edit "
                f"{_fmt(metrics.get('report_edit_distance'))}  prefill PPV "
                f"{_fmt(metrics.get('prefill_ppv'))} NPV {_fmt(metrics.get('prefill_npv'))} "
                f"coverage {_fmt(metrics.get('prefill_coverage'))}  lesion cases served "
                f"{tally.lesion_cases}"
                f"  ({seconds:.0f} s train, {score_seconds:.0f} s scoring)\n"
                f"    per class {_per_class(metrics)}{_choices(model)}",
                flush=True,
            )
    shutil.rmtree(first_version, ignore_errors=True)
    return rows


# ---------------------------------------------------------------------------- summary
def _per_class(metrics: dict[str, Any]) -> str:
    """AP@0.5 per class with the validation positives behind it: with real-like prevalence a
    class with one or two positives swings the mean by a sixth on its own."""
    ap = metrics.get("ap50_per_class") or {}
    positives = metrics.get("positives_per_class") or {}
    return ", ".join(f"{name} {_fmt(value, 2)} ({positives.get(name, '?')})"
                     for name, value in ap.items())  # fmt: skip


def _choices(model: Any) -> str:
    """What the validation labels chose for ``model``: the detector blend (the trained
    weights' share) and the box-score fusion weight."""
    config = getattr(model, "config", None)
    if config is None:
        return ""
    record = config.extra.get("detector_blend", {})
    blend, p = record.get("trained_share"), record.get("p_not_better")
    weight = config.box_finding_weight
    tested = f" (bootstrap p(not better than the start) {_fmt(p, 2)})" if p is not None else ""
    lineage = (
        ", trained on from the last cycle's own weights"
        if config.extra.get("detector_trained_from") == "lineage"
        else ""
    )
    return (
        f"\n    chosen: detector blend {_fmt(blend, 1)}{tested}, fusion weight {weight:g}{lineage}"
    )


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


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


def t_interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and 95 % t interval of ``values`` (the interval is the mean twice for one value)."""
    from scipy import stats

    mean = statistics.mean(values)
    if len(values) < 2:
        return mean, mean, mean
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def summarise(rows: list[dict], strategies: list[str]) -> dict[str, Any]:
    """Curves (mean, sd over seeds per labels) and the paired label-efficiency figures."""
    by: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for row in rows:
        by[(row["strategy"], row["labels"])].append(row)
    keys = ["map50", "froc_mean", "precision_shown", "recall_shown",
            "false_boxes_per_normal_image", "kept_share", "kept_or_edited_share",
            "lesion_cases_kept_share", "served_with_lesions", "served_faint",
            "recall_shown_enough", "report_edit_distance", "degenerate_drafts",
            "prefill_ppv", "prefill_npv", "prefill_wrong_per_case", "prefill_coverage"]  # fmt: skip
    keys += sorted({key for row in rows for key in row if key.startswith(COMPARED)})
    curves: dict[str, list[dict[str, Any]]] = {}
    for strategy in strategies:
        points = []
        for (s, labels), group in sorted(by.items(), key=lambda item: item[0][1]):
            if s != strategy:
                continue
            point: dict[str, Any] = {"labels": labels, "seeds": len(group)}
            for key in keys:
                values = [g[key] for g in group if g.get(key) is not None]
                point[key] = statistics.mean(values) if values else None
                point[f"{key}_sd"] = statistics.stdev(values) if len(values) > 1 else None
            per_class: dict[str, list[float]] = defaultdict(list)
            for g in group:
                for name, value in json.loads(g.get("recall_shown_per_class") or "{}").items():
                    if value is not None:
                        per_class[name].append(value)
            if per_class:
                point["recall_shown_per_class"] = {
                    name: statistics.mean(values) for name, values in per_class.items()
                }
            points.append(point)
        curves[strategy] = points

    seeds = sorted({row["seed"] for row in rows})
    curve_of = {
        (row["seed"], row["strategy"]): [] for row in rows
    }  # (seed, strategy) -> [(labels, map)]
    for row in sorted(rows, key=lambda r: r["labels"]):
        if row.get("map50") is not None:
            curve_of[(row["seed"], row["strategy"])].append((row["labels"], row["map50"]))
    efficiency: dict[str, Any] = {}
    for strategy in strategies:
        if strategy == "random":
            continue
        ratios, reached, differences, flat = [], 0, [], 0
        curve_differences: list[float] = []
        # Stricter: labels to reach the best mAP random showed at any point of its curve (its
        # final point can sit below its peak when a cycle's noise or the blend test held it).
        best_ratios: list[float] = []
        unflat_ratios: list[float] = []
        for seed in seeds:
            baseline = curve_of.get((seed, "random"), [])
            mine = curve_of.get((seed, strategy), [])
            if not baseline or not mine:
                continue
            random_labels, random_final = baseline[-1]
            # Random never beat the shared first model: any strategy "reaches" its final mAP at
            # the first labels, and the ratio says nothing about label efficiency.
            flat += random_final <= baseline[0][1]
            needed = labels_to_reach(mine, random_final)
            # Not reached within the budget: the ratio is at least 1; 1.0 is counted (a bound
            # in the strategy's favour, said so in the output).
            ratios.append(needed / random_labels if needed is not None else 1.0)
            reached += needed is not None
            if random_final > baseline[0][1]:
                unflat_ratios.append(ratios[-1])
            random_best = max(value for _, value in baseline)
            if random_best > baseline[0][1]:  # random beat the first model at some point
                best = labels_to_reach(mine, random_best)
                best_ratios.append(best / random_labels if best is not None else 1.0)
            differences.append(mine[-1][1] - random_final)
            # Area under the learning curve after the shared first model: the mean mAP over
            # the later cycles, paired with random's (less at the mercy of one cycle's noise
            # than the final point the ratio rests on).
            later = [value for labels, value in mine if labels > mine[0][0]]
            random_later = [value for labels, value in baseline if labels > baseline[0][0]]
            if later and random_later:
                curve_differences.append(statistics.mean(later) - statistics.mean(random_later))
        if not ratios:
            continue
        logs = [math.log(max(r, 1e-6)) for r in ratios]
        mean_log, low_log, high_log = t_interval(logs)

        def geometric(values: list[float]) -> dict[str, Any] | None:
            if not values:
                return None
            mean, low, high = t_interval([math.log(max(v, 1e-6)) for v in values])
            return {"ratios": values, "mean": math.exp(mean), "95": [math.exp(low), math.exp(high)]}

        efficiency[strategy] = {
            "ratio_to_random_best": geometric(best_ratios),
            "ratio_without_flat_seeds": geometric(unflat_ratios),
            "ratios": ratios,
            "reached": reached,
            "seeds": len(ratios),
            "ratio_geometric_mean": math.exp(mean_log),
            "ratio_95": [math.exp(low_log), math.exp(high_log)],
            "final_map_difference": t_interval(differences)[0],
            "final_map_difference_95": list(t_interval(differences)[1:]),
            "random_flat_seeds": flat,
            "curve_map_difference": t_interval(curve_differences)[0] if curve_differences else None,
            "curve_map_difference_95": list(t_interval(curve_differences)[1:])
            if curve_differences
            else None,
            "curve_map_differences": curve_differences,
        }
    return {"curves": curves, "efficiency": efficiency}


def print_summary(summary: dict[str, Any], args: argparse.Namespace) -> None:
    measured = (f"{getattr(args, 'test', 0)} held-out test cases" if getattr(args, "test", 0)
                else f"the {args.validation} validation cases")  # fmt: skip
    print(f"\nPer cycle, mean ± sd over {args.seeds} seeds (metrics on {measured}, against the"
          " truth; kept: boxes shown on the cases served next):")  # fmt: skip
    header = (f"{'strategy':<12} {'labels':>6} {'mAP50':>13} {'FROC':>6} {'prec shown':>10} "
              f"{'recall shown':>12} {'false/normal':>12} {'kept':>6} {'kept+edit':>9} "
              f"{'lesion cases kept':>17} {'served: lesion/faint':>20} {'recall enough':>13} "
              f"{'report edit':>11} {'degenerate':>10}")  # fmt: skip
    print(header)
    for strategy, points in summary["curves"].items():
        for p in points:
            sd = p.get("map50_sd")
            map_cell = f"{_fmt(p['map50'])} ± {_fmt(sd)}" if sd is not None else _fmt(p["map50"])
            print(
                f"{strategy:<12} {p['labels']:>6} {map_cell:>13} {_fmt(p['froc_mean']):>6} "
                f"{_fmt(p['precision_shown']):>10} {_fmt(p['recall_shown']):>12} "
                f"{_fmt(p['false_boxes_per_normal_image']):>12} {_fmt(p['kept_share']):>6} "
                f"{_fmt(p['kept_or_edited_share']):>9} {_fmt(p['lesion_cases_kept_share']):>17} "
                f"{_fmt(p['served_with_lesions'], 1):>9} / {_fmt(p['served_faint'], 1):<8} "
                f"{_fmt(p.get('recall_shown_enough')):>13} "
                f"{_fmt(p.get('report_edit_distance')):>11} "
                f"{_fmt(p.get('degenerate_drafts'), 1):>10}"
            )
    print("\nPrefilled findings on the same cases (the version's findings operating points; PPV "
          "/ NPV of the present / absent prefills, wrong prefills per case, share of "
          "case-findings prefilled):")  # fmt: skip
    print(f"{'strategy':<12} {'labels':>6} {'PPV':>6} {'NPV':>6} {'wrong/case':>10} "
          f"{'coverage':>8}")  # fmt: skip
    for strategy, points in summary["curves"].items():
        for p in points:
            print(
                f"{strategy:<12} {p['labels']:>6} {_fmt(p.get('prefill_ppv')):>6} "
                f"{_fmt(p.get('prefill_npv')):>6} {_fmt(p.get('prefill_wrong_per_case')):>10} "
                f"{_fmt(p.get('prefill_coverage')):>8}"
            )
    levels = sorted(
        {
            key.removeprefix(COMPARED[0])
            for points in summary["curves"].values()
            for p in points
            for key in p
            if key.startswith(COMPARED[0]) and not key.endswith("_sd")
        },
        key=float,
    )
    if levels:
        print("\nShown boxes at other box precision confidences, thresholds refitted on the same "
              "validation candidates (precision ± sd / recall over the classes with enough "
              "validation positives / false boxes per normal image):")  # fmt: skip
        print(f"{'strategy':<12} {'labels':>6}  "
              + "  ".join(f"{'at ' + level:>27}" for level in levels))  # fmt: skip
        for strategy, points in summary["curves"].items():
            for p in points:
                cells = []
                for level in levels:
                    precision = p.get(f"{COMPARED[0]}{level}")
                    sd = p.get(f"{COMPARED[0]}{level}_sd")
                    cells.append(
                        f"{_fmt(precision)} ± {_fmt(sd)} / {_fmt(p.get(COMPARED[1] + level))} / "
                        f"{_fmt(p.get(COMPARED[2] + level))}"
                    )
                print(f"{strategy:<12} {p['labels']:>6}  " + "  ".join(f"{c:>27}" for c in cells))
    classes = sorted(
        {name for ps in summary["curves"].values() for p in ps
         for name in p.get("recall_shown_per_class", {})}
    )  # fmt: skip
    if classes:
        print("\nRecall of the shown boxes per class (mean over the seeds whose test cases hold "
              "the class):")  # fmt: skip
        print(f"{'strategy':<12} {'labels':>6} " + " ".join(f"{c[:13]:>13}" for c in classes))
        for strategy, points in summary["curves"].items():
            for p in points:
                recall = p.get("recall_shown_per_class", {})
                print(f"{strategy:<12} {p['labels']:>6} "
                      + " ".join(f"{_fmt(recall.get(c)):>13}" for c in classes))  # fmt: skip
    print("\nLabels to reach random's final mAP@0.5 (paired by seed; goal <= 0.5x random's):")
    for strategy, e in summary["efficiency"].items():
        low, high = e["ratio_95"]
        d_low, d_high = e["final_map_difference_95"]
        print(
            f"  {strategy:<12} ratio {e['ratio_geometric_mean']:.2f} (95 % {low:.2f}-{high:.2f}; "
            f"per seed {', '.join(f'{r:.2f}' for r in e['ratios'])}; reached in {e['reached']} "
            f"of {e['seeds']} seeds, not reached counted as 1.00)  final mAP - random's: "
            f"{e['final_map_difference']:+.3f} (95 % {d_low:+.3f} to {d_high:+.3f})"
        )
        for key, label in (
            (
                "ratio_without_flat_seeds",
                "without the seeds where random never beat the first model",
            ),
            (
                "ratio_to_random_best",
                "to reach random's best mAP@0.5 at any labels (seeds "
                "where it ever beat the first model)",
            ),
        ):
            g = e.get(key)
            if g is not None:
                low, high = g["95"]
                print(f"    ratio {label}: {g['mean']:.2f} (95 % {low:.2f}-{high:.2f}; "
                      f"per seed {', '.join(f'{r:.2f}' for r in g['ratios'])})")  # fmt: skip
        if e.get("curve_map_difference") is not None:
            c_low, c_high = e["curve_map_difference_95"]
            print(
                f"    mean mAP over the cycles after the first model - random's: "
                f"{e['curve_map_difference']:+.3f} (95 % {c_low:+.3f} to {c_high:+.3f}; per seed "
                f"{', '.join(f'{d:+.3f}' for d in e['curve_map_differences'])})"
            )
        if e["random_flat_seeds"]:
            print(
                f"    warning: in {e['random_flat_seeds']} seed(s) random never beat the shared "
                "first model, so the ratio there is the first labels over random's: no evidence"
            )


def combine(args: argparse.Namespace) -> None:
    """Summarise the rows of several runs (seeds run in separate processes). Their settings must
    agree, apart from the seeds and where the results went; a seed must not appear twice."""
    ignored = {"seeds", "seed_ids", "seed_list", "out", "combine", "threads"}
    rows: list[dict] = []
    settings: dict[str, Any] | None = None
    for path in args.combine:
        data = json.loads(path.read_text())
        if "rows" not in data:
            raise SystemExit(f"{path}: no rows (written by an older version of this script)")
        mine = {k: v for k, v in data["settings"].items() if k not in ignored}
        if settings is not None and mine != settings:
            differing = sorted(k for k in mine.keys() | settings.keys()
                               if mine.get(k) != settings.get(k))  # fmt: skip
            raise SystemExit(f"{path}: settings differ from the first file's: {differing}")
        settings = mine
        seen = {row["seed"] for row in rows}
        if seen & {row["seed"] for row in data["rows"]}:
            raise SystemExit(f"{path}: seed(s) {sorted(seen)} already read from another file")
        rows += data["rows"]
    assert settings is not None
    for key, value in settings.items():
        setattr(args, key, value)
    args.seed_list = sorted({row["seed"] for row in rows})
    args.seeds = len(args.seed_list)
    summary = summarise(rows, args.strategies)
    print(f"combined {len(args.combine)} runs: seeds {', '.join(map(str, args.seed_list))}")
    print_summary(summary, args)
    write_results(rows, summary, args)
    print(f"\nwritten {args.out / 'label_efficiency.csv'} and .json")


def fixed_cases(args: argparse.Namespace) -> tuple[list[Any], list[Any]]:
    """The validation and held-out test cases, the same for every seed and strategy (each set's
    annotator seeded by the set; the test cases' at the default scale)."""
    import loop_support

    def cases(seed: int, count: int, id_offset: int, scale: float = 1.0) -> list[Any]:
        return loop_support.synthetic_pool(
            seed=seed, count=count, size=args.size, difficulty=args.difficulty,
            annotator_seed=seed, id_offset=id_offset, annotator_scale=scale,
        )  # fmt: skip

    return (
        cases(VALIDATION_SEED, args.validation, 10_000_000, args.annotator_scale),
        cases(TEST_SEED, args.test, 20_000_000),
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.combine:
        combine(args)
        return
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    print(
        f"pool {args.pool}, validation {args.validation}, test {args.test}, {args.size} px, "
        f"difficulty {args.difficulty}, labels {args.initial} + {args.step}/cycle to "
        f"{args.budget}, seeds {args.seeds}, steps {args.first_steps} then "
        f"{args.train_steps}/cycle, strategies {', '.join(args.strategies)}, "
        f"{args.threads} threads",
        flush=True,
    )

    validation, test = fixed_cases(args)
    rows: list[dict] = []
    work = Path(tempfile.mkdtemp(prefix="medloop-label-efficiency-"))
    try:
        for seed in args.seed_list:
            rows += run_seed(seed, args, validation, test, work)
            if seed != args.seed_list[-1]:  # a run stopped early still leaves the seeds it finished
                write_results(rows, summarise(rows, args.strategies), args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = summarise(rows, args.strategies)
    print_summary(summary, args)
    write_results(rows, summary, args)
    print(f"\nwritten {args.out / 'label_efficiency.csv'} and .json")
    print(f"total wall time {time.perf_counter() - started:.0f} s")


def write_results(rows: list[dict], summary: dict[str, Any], args: argparse.Namespace) -> None:
    """The rows (CSV) and the summary with the run's settings (JSON) under ``args.out``."""
    args.out.mkdir(parents=True, exist_ok=True)
    fields = sorted({key for row in rows for key in row})
    with (args.out / "label_efficiency.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    settings = {
        k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "combine"
    }
    (args.out / "label_efficiency.json").write_text(
        json.dumps({"settings": settings, **summary, "rows": rows}, indent=1, default=str)
    )


if __name__ == "__main__":
    main()
