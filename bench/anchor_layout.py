"""Can the built-in detector learn small lesions? The anchor layout, side by side.

    python bench/anchor_layout.py [--cases 8] [--steps 200] [--threads 1] [--seed 0]

MedLoop's boxes are x along the columns. MONAI's anchor generator, by default ("ij"), lays box x
along the rows, so until 2026-12-07 every training box was transposed against its image
(README, "Anchor layout"). This bench trains the detector branch from nothing with the stored
starting point's builder (``active_learning.ml.builtin.starting_point.build``, the same
augmentation and schedule) on the same few synthetic cases holding a nodule, once per layout,
and prints each layout's AP@0.5 on those very cases every 50 steps: a network that cannot fit
a handful of images it trains on cannot learn them from a project either. Both runs use the same
seed, cases and steps; the only difference is ``anchor_indexing``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DATA_SEED = 20261205


def nodule_cases(count: int) -> list[int]:
    """The first ``count`` case indices of the builder's data seed that hold a nodule."""
    from active_learning.ml.synthetic import generate_case

    found: list[int] = []
    index = 0
    while len(found) < count:
        if generate_case(DATA_SEED, index, 64).findings.get("nodule"):
            found.append(index)
        index += 1
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from active_learning.ml.builtin import starting_point as sp

    indices = tuple(nodule_cases(args.cases))
    results = {}
    for layout in ("ij", "xy"):
        settings = sp.BuildSettings(
            name=f"layout-{layout}", data_seed=DATA_SEED, steps=args.steps, learning_rate=2e-3,
            warmup_steps=10, threads=args.threads, seed=args.seed, evaluate_every=50,
            anchor_indexing=layout, case_indices=indices,
        )  # fmt: skip
        with tempfile.TemporaryDirectory() as out:
            card = sp.build(settings, Path(out), log=lambda *a, **k: None)
        results[layout] = {
            str(row["step"]): {
                "nodule_ap50": row["ap50_per_class"]["nodule"],
                "map50": row["map50"],
            }
            for row in card["validation"]
        }
        print(f"anchor_indexing {layout!r}: " + ", ".join(
            f"step {step} nodule AP@0.5 {v['nodule_ap50']:.3f} (mAP {v['map50']:.3f})"
            for step, v in results[layout].items()
        ), flush=True)  # fmt: skip
    print(json.dumps({"cases": list(indices), "steps": args.steps, "seed": args.seed,
                      "data_seed": DATA_SEED, "results": results}))  # fmt: skip


if __name__ == "__main__":
    main()
