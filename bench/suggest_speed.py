"""Suggestion speed of the built-in model: one 512x512 case (boxes, findings, report draft and
the cheap uncertainty) on N CPU threads, the extra cost of each uncertainty method, batch
scoring throughput, and training time per 100 optimisation steps.

    python bench/suggest_speed.py [--threads 2] [--model DIR] [--repeats 30]

Without --model, a model is first trained for --train-steps steps on synthetic cases so that
its report drafts end where real ones do (an untrained decoder runs to the token limit). The
input is a 512x512 case; the model resizes it to its input size (BuiltinConfig.input_size).
Box stability (a flip and rescales at 0.9x and 1.1x the input size) runs only in Celery scoring,
so the interactive figure is the row without it. The
baseline in the same process is the detector's forward pass alone on the same image: the least
any image model here costs. Goal (issue 5): under 150 ms per case without MC dropout.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _times(fn, repeats: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def _row(name: str, values: list[float], baseline: float | None) -> str:
    p50 = statistics.median(values)
    p95 = sorted(values)[max(0, round(0.95 * len(values)) - 1)]
    ratio = f"{p50 / baseline:6.1f}x" if baseline else "      "
    return f"{name:<44} {p50:8.1f} {p95:8.1f}  {ratio}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", type=Path, help="a saved built-in model version")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--train-cases", type=int, default=200)
    parser.add_argument("--train-steps", type=int, default=100)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from active_learning.ml.builtin import BuiltinConfig, BuiltinModel
    from active_learning.ml.checkpoints import load_model
    from active_learning.ml.datasets import synthetic_source
    from active_learning.ml.interface import UncertaintyOptions

    train = synthetic_source(seed=21, start=0, count=args.train_cases, size=512)
    started = time.perf_counter()
    if args.model:
        model = load_model(args.model)
        assert isinstance(model, BuiltinModel)
    else:
        model = BuiltinModel(BuiltinConfig(seed=21))
        model.train(train, max_steps=args.train_steps)
    print(
        f"model ready in {time.perf_counter() - started:.0f} s ({args.threads} threads, "
        f"input size {model.config.input_size} px)"
    )

    cases = list(synthetic_source(seed=21, start=50_000, count=16, size=512)())
    one = cases[:1]
    network = model.network
    assert network is not None
    network.eval()
    image = model._collate(one, labelled=False).images

    def detector_only() -> None:
        with torch.no_grad():
            network.detector(image)

    def suggest(options: UncertaintyOptions):
        return lambda: model.predict(one, uncertainty=options)

    base = statistics.median(_times(detector_only, args.repeats))
    cheap = UncertaintyOptions(box_stability=False)
    plain = statistics.median(_times(suggest(cheap), args.repeats))
    rows = [
        ("detector forward only (baseline)", _times(detector_only, args.repeats)),
        ("suggestion, no box stability, no MC", _times(suggest(cheap), args.repeats)),
        ("scoring + box stability (flip, 0.9x, 1.1x)", _times(suggest(UncertaintyOptions()),
                                                               args.repeats)),
        ("suggestion + MC dropout findings (K=10)",
         _times(suggest(UncertaintyOptions(box_stability=False, mc_samples=10)), args.repeats)),
        ("suggestion + MC dropout report drafts (K=3)",
         _times(suggest(UncertaintyOptions(box_stability=False, mc_report_drafts=3)),
                max(5, args.repeats // 3))),
    ]  # fmt: skip
    (prediction,) = model.predict(one)
    tokens = len(model.tokenizer(" ".join(prediction.report.values()))["input_ids"])
    print(f"\nper case, 512x512 input, report draft of ~{tokens} tokens")
    print(f"{'measure':<44} {'p50 ms':>8} {'p95 ms':>8}  vs base")
    for name, values in rows:
        print(_row(name, values, base))
    print(f"uncertainty costs over the plain suggestion (p50): see rows above minus {plain:.1f} ms")

    for batch in (1, 8, 16):
        chunk = cases[:batch]
        started = time.perf_counter()
        model.predict(chunk)
        seconds = time.perf_counter() - started
        print(
            f"batch scoring, batch {batch:>2}: {batch / seconds:6.1f} cases/s (with box stability)"
        )

    sample = synthetic_source(seed=22, start=0, count=100, size=512)
    with tempfile.TemporaryDirectory() as folder:
        model.save(Path(folder) / "v")
        warm = BuiltinModel(BuiltinConfig(seed=21))
        report = warm.train(sample, max_steps=20, warm_start=Path(folder) / "v")
    print(
        f"training: {report.seconds / report.steps * 100:.0f} s per 100 steps of "
        f"{model.config.batch_size} cases (incl. case generation, augmentation, calibration)"
    )


if __name__ == "__main__":
    main()
