"""Model evaluation: ``python bench/model_evaluation.py`` prints one table and writes one CSV.

1. Synthetic benchmark: the built-in model trained twice on the same synthetic cases, once on the
   image only and once on image + clinical text + labs, then scored on held-out synthetic cases:
   box mAP@0.5 and mAP@[.5:.95] (pycocotools), finding AUROC per class and macro, ECE before and
   after temperature scaling (the temperature fitted on the model's fixed calibration split),
   and report BLEU-4, ROUGE-L (pycocoevalcap's LCS F-measure, beta 1.2), CIDEr-D and
   finding-level F1 (findings read from text by :mod:`active_learning.ml.report_findings`).
2. Real text: the Indiana University reports (``iu_reports``), fixed split by report id; the
   built-in model's text path (:class:`ReportDrafter`) against a nearest-neighbour retrieval and
   a template baseline, all in this run.

Pure Python and torch; no Django. The metrics are those a retraining cycle stores for each
version (:func:`active_learning.ml.evaluate.evaluate_model`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from active_learning.ml import evaluate as ev  # noqa: E402
from active_learning.ml.evaluate import evaluate_model  # noqa: E402


def run_synthetic(
    train_cases: int,
    test_cases: int,
    epochs: int,
    size: int,
    seed: int,
    save_dir: Path | None = None,
) -> dict[str, dict[str, Any]]:
    from active_learning.ml.builtin import BuiltinConfig, BuiltinModel
    from active_learning.ml.datasets import synthetic_source

    train = synthetic_source(seed, 0, train_cases, size)
    test = synthetic_source(seed, 100_000, test_cases, size)
    results = {}
    for name, modalities in (
        ("synthetic: image only", ("image",)),
        ("synthetic: image+text+labs", ("image", "text", "labs")),
    ):
        model = BuiltinModel(BuiltinConfig(modalities=modalities, seed=seed))
        report = model.train(train, epochs=epochs)
        metrics = evaluate_model(model, test())
        metrics["train"] = {
            "seconds": report.seconds,
            "seconds_per_epoch_per_100_cases": report.seconds / epochs / train_cases * 100,
            "final_loss": float(np.mean(report.losses[-10:])),
        }
        results[name] = metrics
        print(f"{name}: trained in {report.seconds:.0f} s", flush=True)
        if save_dir is not None:
            model.save(save_dir / "-".join(modalities))
    return results


def run_iu(epochs: int, limit: int | None) -> dict[str, dict[str, Any]]:
    from active_learning.ml import iu_reports as iu
    from active_learning.ml.builtin.report_drafter import DrafterConfig, ReportDrafter

    reports = list(iu.iter_reports())
    if limit:
        reports = reports[:limit]
    train = [r for r in reports if iu.split_of(r.report_id) == "train"]
    test = [r for r in reports if iu.split_of(r.report_id) == "test"]
    references = [iu.target_text(r) for r in test]
    results: dict[str, dict[str, Any]] = {}
    retrieval = iu.RetrievalBaseline().fit(train).predict_many(test)
    template = iu.TemplateBaseline().fit(train).predict_many(test)
    drafter = ReportDrafter(DrafterConfig(epochs=epochs)).fit(
        [iu.source_text(r) for r in train], [iu.target_text(r) for r in train]
    )
    model = drafter.draft([iu.source_text(r) for r in test])
    for name, candidates in (
        ("IU: model (indication+tags)", model),
        ("IU: retrieval baseline", retrieval),
        ("IU: template baseline", template),
    ):
        metrics = ev.report_metrics(references, candidates)
        results[name] = {
            "cases": len(test),
            "reports": {
                key: metrics[key]
                for key in ("bleu_4", "rouge_l_f_beta1.2", "cider_d", "finding_f1_micro")
            },
        }
    results["IU: model (indication+tags)"]["train"] = {
        "seconds": sum(drafter.epoch_seconds),
        "seconds_per_epoch_per_100_cases": float(np.mean(drafter.epoch_seconds)) / len(train) * 100,
        "final_loss": drafter.epoch_losses[-1],
    }
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-cases", type=int, default=600)
    parser.add_argument("--test-cases", type=int, default=150)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--size", type=int, default=512, help="synthetic image size (pixels)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--iu-epochs", type=int, default=20)
    parser.add_argument("--iu-limit", type=int, default=None, help="use the first N IU reports")
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--skip-iu", action="store_true")
    parser.add_argument("--csv", type=Path, default=Path("var/evaluation/results.csv"))
    parser.add_argument("--save-dir", type=Path, help="save the trained synthetic models here")
    args = parser.parse_args(argv)
    import torch

    torch.manual_seed(args.seed)
    results: dict[str, dict[str, Any]] = {}
    if not args.skip_synthetic:
        results |= run_synthetic(
            args.train_cases, args.test_cases, args.epochs, args.size, args.seed, args.save_dir
        )
    if not args.skip_iu:
        results |= run_iu(args.iu_epochs, args.iu_limit)
    print(ev.evaluation_table(results))
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    print(f"written {ev.write_csv(results, args.csv)}")


if __name__ == "__main__":
    main()
