"""Linear probe of a saved pretrained backbone: how well its frozen pooled features separate the
findings, against the same backbone at its random initialisation (same seed), at 50 labels.

    python bench/pretraining_probe.py --backbone DIR [--seeds 3] [--labels 50] [--validation 100]

A cheap proxy for ``bench/pretraining_effect.py`` (which fine-tunes the whole model and is slow
on a shared CPU): per seed, ``--labels`` cases of the pool the backbone saw (synthetic set 101)
train one logistic regression per finding on the L2-normalised features; the macro AUROC on
``--validation`` cases outside the pool is printed for both backbones with the paired
difference. The pool size and image size are read from the backbone's record.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

POOL_SEED = 101
VALIDATION_START = 100_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbone", type=Path, required=True)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--labels", type=int, default=50)
    parser.add_argument("--validation", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    torch.set_num_threads(args.threads)
    from active_learning.ml.pretraining import (
        LoadedBackbone,
        build_backbone,
        embed_images,
        load_backbone,
    )
    from active_learning.ml.synthetic import FINDING_CLASSES, generate_case

    loaded = load_backbone(args.backbone)
    config = loaded.backbone_config
    torch.manual_seed(0)
    random_state = {k: v.clone() for k, v in build_backbone(config).state_dict().items()}
    scratch = LoadedBackbone(state=random_state, manifest=loaded.manifest, record=loaded.record)
    size = config.input_size
    pool = [int(i.rsplit("-", 1)[-1]) for i in loaded.record["image_ids"]]
    validation = list(range(VALIDATION_START, VALIDATION_START + args.validation))

    def cases(indices):
        return [generate_case(POOL_SEED, i, size) for i in indices]

    def draw(seed: int) -> list[int]:
        """The labelled cases of ``seed``: the same draw as bench/pretraining_effect.py."""
        picks = np.random.default_rng(1000 + seed).choice(pool, args.labels, replace=False)
        return sorted(int(i) for i in picks)

    chosen = sorted({i for seed in range(args.seeds) for i in draw(seed)})
    labelled_cases = dict(zip(chosen, cases(chosen), strict=True))
    validation_cases = cases(validation)

    def features(backbone, items):
        _, vectors = embed_images(backbone, [(str(i), c.pixels) for i, c in items])
        return vectors

    feats = {}
    for name, backbone in (("scratch", scratch), ("pretrained", loaded)):
        feats[name] = (
            dict(zip(chosen, features(backbone, labelled_cases.items()), strict=True)),
            features(backbone, list(enumerate(validation_cases))),
        )
    truth_val = np.array(
        [[c.findings.get(f, False) for f in FINDING_CLASSES] for c in validation_cases]
    )
    rows = []
    for seed in range(args.seeds):
        picked = draw(seed)
        y = np.array(
            [[labelled_cases[i].findings.get(f, False) for f in FINDING_CLASSES] for i in picked]
        )
        row = {"seed": seed}
        for name in ("scratch", "pretrained"):
            train = np.stack([feats[name][0][i] for i in picked])
            aurocs = []
            for k in range(len(FINDING_CLASSES)):
                if len(set(y[:, k])) < 2 or len(set(truth_val[:, k])) < 2:
                    continue
                probe = LogisticRegression(C=1.0, max_iter=2000).fit(train, y[:, k])
                aurocs.append(
                    roc_auc_score(truth_val[:, k], probe.predict_proba(feats[name][1])[:, 1])
                )
            row[name] = float(np.mean(aurocs))
        rows.append(row)
        print(
            f"seed {seed}: linear-probe AUROC scratch {row['scratch']:.4f} "
            f"pretrained {row['pretrained']:.4f}",
            flush=True,
        )
    diffs = [r["pretrained"] - r["scratch"] for r in rows]
    summary = {
        "backbone_images": len(pool),
        "backbone_steps": loaded.record["steps"],
        "labels": args.labels,
        "validation": args.validation,
        "scratch_mean": statistics.fmean(r["scratch"] for r in rows),
        "pretrained_mean": statistics.fmean(r["pretrained"] for r in rows),
        "diff_mean": statistics.fmean(diffs),
        "diff_sd": statistics.stdev(diffs) if len(diffs) > 1 else 0.0,
        "rows": rows,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
