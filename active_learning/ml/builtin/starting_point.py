"""A stored starting point for the built-in detector: its image branch (ResNet + FPN + RetinaNet
heads) trained once, for many steps, on many synthetic cases, shipped with the code, checksummed.

Why: a cycle has minutes on two CPU cores, and a detector trained from nothing on 10-80 labels
for a few hundred steps finds almost nothing (issue 14's probe: test mAP@0.5 0.35 after 1,220
steps on 300 cases, still rising). No hub weights can be downloaded, so the starting point is
made here, by :func:`build` (``python -m active_learning.ml.builtin.starting_point build``), from
the synthetic generator (:mod:`active_learning.ml.synthetic`) on a data seed that neither the
demo (7) nor the benchmarks (14, 21-25) use, with lesions of every difficulty.

What it is not: it has seen rendered phantoms, not radiographs. On the synthetic demo and the
benchmarks it is a strong start (it learnt the generator's look); on a real project it is a
generic initialisation that the project's labels (and its own self-supervised backbone,
``LoopSettings.starting_point``) must move. Its card says so.

Files (``starting_points/<name>/``): ``detector.safetensors`` (the ``detector.*`` weights of
:class:`~active_learning.ml.builtin.network.MultimodalNetwork`) and ``card.json`` (the network
settings it fits, the anchor shapes it learnt, the data and recipe that made it, its held-out
mAP, the weights' SHA-256). :func:`load` refuses weights whose checksum differs from the card.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from active_learning.ml.builtin.config import BuiltinConfig

ROOT = Path(__file__).resolve().parent / "starting_points"
DEFAULT = "synthetic-cxr-256"
WEIGHTS = "detector.safetensors"
CARD = "card.json"
# The network settings a starting point must share with the model it initialises.
FITTING = ("input_size", "backbone_channels", "fpn_channels", "anchors_per_level")


class StartingPointError(ValueError):
    """A starting point that is missing, altered, or does not fit the model's settings."""


@dataclass
class StartingPoint:
    name: str
    card: dict[str, Any]
    state: dict[str, torch.Tensor]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def available(root: Path = ROOT) -> list[str]:
    """Names of the stored starting points (folders holding a card)."""
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / CARD).is_file())


def load(name: str = DEFAULT, *, root: Path = ROOT) -> StartingPoint:
    """The starting point ``name``, its weights checked against the card's checksum."""
    folder = root / name
    if not (folder / CARD).is_file() or not (folder / WEIGHTS).is_file():
        raise StartingPointError(
            f"no stored starting point {name!r} (known: {', '.join(available(root)) or 'none'})"
        )
    card = json.loads((folder / CARD).read_text())
    actual = _sha256(folder / WEIGHTS)
    if actual != card.get("sha256"):
        raise StartingPointError(
            f"starting point {name!r}: {WEIGHTS} has SHA-256 {actual[:12]}..., the card says "
            f"{str(card.get('sha256'))[:12]}...; the file is not the one that was built"
        )
    return StartingPoint(name, card, load_file(str(folder / WEIGHTS)))


def fits(config: BuiltinConfig, point: StartingPoint) -> str | None:
    """None when ``point`` fits ``config``, else what differs (in words)."""
    settings = point.card["network"]
    for key in FITTING:
        mine = getattr(config, key)
        mine = list(mine) if isinstance(mine, tuple) else mine
        if settings[key] != mine:
            return f"{key} is {mine}, the starting point was built with {settings[key]}"
    if (
        config.anchor_shapes
        and [list(s) for s in config.anchor_shapes] != settings["anchor_shapes"]
    ):
        return "the model's anchor shapes differ from the starting point's"
    indexing = anchor_indexing(point)
    if config.anchor_indexing != indexing:
        return (
            f"anchor_indexing is {config.anchor_indexing!r}, the starting point was built with "
            f"{indexing!r}"
        )
    return None


def anchor_indexing(point: StartingPoint) -> str:
    """How the point's anchors were laid out (``BuiltinConfig.anchor_indexing``); points built
    before the setting used MONAI's default, "ij" (boxes transposed against the image)."""
    return str(point.card["network"].get("anchor_indexing", "ij"))


def apply(network: nn.Module, config: BuiltinConfig, point: StartingPoint) -> list[str]:
    """Load the starting point into a freshly built network's detector. The classification
    head's rows are matched by finding name: classes the starting point does not know keep
    their fresh initialisation. Returns the classes that started from the stored weights."""
    problem = fits(config, point)
    if problem:
        raise StartingPointError(f"starting point {point.name!r} does not fit: {problem}")
    detector = cast(nn.Module, network.detector)
    own = detector.state_dict()
    stored_classes = list(point.card["network"]["finding_classes"])
    anchors = int(point.card["network"]["anchors_per_level"])
    shared = [c for c in config.finding_classes if c in stored_classes]
    state = {}
    for key, value in point.state.items():
        if key not in own:
            raise StartingPointError(f"starting point {point.name!r}: unexpected weight {key}")
        if own[key].shape == value.shape and not _is_class_row(key):
            state[key] = value
    # Classification logits are laid out anchor-major: (anchor, class) for each position.
    for key in [k for k in point.state if _is_class_row(k)]:
        stored = point.state[key]
        target = own[key].clone()
        ours = len(config.finding_classes)
        for a in range(anchors):
            for c in shared:
                target[a * ours + config.finding_classes.index(c)] = stored[
                    a * len(stored_classes) + stored_classes.index(c)
                ]
        state[key] = target
    missing = set(own) - set(state)
    if missing:
        raise StartingPointError(
            f"starting point {point.name!r} lacks weights: {', '.join(sorted(missing)[:3])}"
        )
    detector.load_state_dict(state)
    return shared


def _is_class_row(key: str) -> bool:
    return key.startswith("network.classification_head.cls_logits.")


# ---------------------------------------------------------------------------- building
@dataclass
class BuildSettings:
    name: str = DEFAULT
    data_seed: int = 20261205
    train_cases: int = 3000
    validation_cases: int = 200
    steps: int = 6000
    batch_size: int = 8
    learning_rate: float = 2e-3
    warmup_steps: int = 200
    threads: int = 2
    seed: int = 0
    # Lesion difficulty cycles through these by case index (faint and small lesions included).
    difficulties: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75)
    # Cases rendered at these sizes by index (then resized to the input size like any image).
    render_sizes: tuple[int, ...] = (256, 256, 256, 512)
    evaluate_every: int = 1000
    # Continue from this stored point's weights (and its anchors) instead of from nothing; the
    # card then records the parent's checksum and recipe, and the steps add up.
    init: str = ""
    # How the anchors are laid out (BuiltinConfig.anchor_indexing): "ij" only to rebuild the
    # transposed layout for a comparison (bench/anchor_layout.py).
    anchor_indexing: str = "xy"
    # When set, train and evaluate on exactly these case indices of the data seed (can the
    # network learn these cases at all?) instead of train_cases / validation_cases.
    case_indices: tuple[int, ...] = ()


VALIDATION_START = 1_000_000  # validation cases' indices within the data seed


def _render(settings: BuildSettings, index: int, config: BuiltinConfig) -> tuple[Any, Any]:
    from active_learning.ml.builtin.preprocess import image_tensor
    from active_learning.ml.datasets import labelled_from_synthetic
    from active_learning.ml.synthetic import generate_case

    difficulty = settings.difficulties[index % len(settings.difficulties)]
    render = settings.render_sizes[(index // 7) % len(settings.render_sizes)]
    case = labelled_from_synthetic(
        generate_case(settings.data_seed, index, render, difficulty=difficulty),
        f"start-{index}",
    )
    image, sx, sy = image_tensor(case, size=config.input_size, min_size=config.min_image_size)
    classes = {name: i for i, name in enumerate(config.finding_classes)}
    boxes = [
        [b.x / sx, b.y / sy, (b.x + b.width) / sx, (b.y + b.height) / sy, classes[b.finding]]
        for b in case.boxes
        if b.finding in classes
    ]
    return image.to(torch.float16), torch.tensor(boxes, dtype=torch.float32).reshape(-1, 5)


def _targets(rows: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    return [{"boxes": r[:, :4].clone(), "labels": r[:, 4].long()} for r in rows]


def evaluate(
    network: nn.Module, images: torch.Tensor, rows: list[torch.Tensor], classes: tuple[str, ...]
) -> dict[str, Any]:
    """mAP@0.5 and per-class AP of every candidate (``active_learning.ml.evaluate``)."""
    from active_learning.ml import evaluate as ev

    detector = cast(nn.Module, network.detector)
    detector.eval()
    truth, predicted = [], []
    with torch.no_grad():
        for start in range(0, len(images), 16):
            outputs = detector(images[start : start + 16].float())
            for offset, output in enumerate(outputs):
                image_id = str(start + offset)
                for x1, y1, x2, y2, label in rows[start + offset].tolist():
                    truth.append(
                        ev.GroundTruthBox(image_id, classes[int(label)], x1, y1, x2 - x1, y2 - y1)
                    )
                for (x1, y1, x2, y2), label, score in zip(
                    output["boxes"].tolist(),
                    output["labels"].tolist(),
                    output["labels_scores"].tolist(),
                    strict=True,
                ):
                    predicted.append(
                        ev.PredictedBox(
                            image_id, classes[int(label)], x1, y1, x2 - x1, y2 - y1, score
                        )
                    )
    result = ev.box_map(truth, predicted, list(classes))
    return {"map50": result["map_50"], "ap50_per_class": result["ap_50_per_class"]}


def build(settings: BuildSettings, out: Path, *, log: Any = print) -> dict[str, Any]:
    """Train the detector branch on ``settings.train_cases`` synthetic cases for
    ``settings.steps`` steps (warm-up + cosine, the built-in augmentation), evaluate on the
    held-out validation cases, write ``out/<name>/`` (weights + card); returns the card."""
    from active_learning.ml.builtin.anchors import fit_anchor_shapes
    from active_learning.ml.builtin.augment import jitter_batch
    from active_learning.ml.builtin.model import warmup_cosine
    from active_learning.ml.builtin.network import build_detector

    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    started = time.perf_counter()
    config = BuiltinConfig(anchor_indexing=settings.anchor_indexing)
    config.anchor_shapes = fit_anchor_shapes(
        config.input_size, per_level=config.anchors_per_level, classes=config.finding_classes
    )
    parent: StartingPoint | None = None
    if settings.init:
        parent = load(settings.init)
        if tuple(parent.card["network"]["finding_classes"]) != tuple(config.finding_classes):
            raise StartingPointError(f"{settings.init} was trained on other classes")
        if anchor_indexing(parent) != config.anchor_indexing:
            raise StartingPointError(
                f"{settings.init} was built with anchor_indexing {anchor_indexing(parent)!r} "
                f"(its boxes transposed against the images); build a new point from nothing"
            )
        config.anchor_shapes = tuple(
            (int(w), int(h)) for w, h in parent.card["network"]["anchor_shapes"]
        )
    holder = nn.Module()
    holder.detector = build_detector(config)
    if parent is not None:
        holder.detector.load_state_dict(parent.state)
        log(f"continuing from {parent.name} (sha256 {parent.card['sha256'][:12]}...)")
    counts = (
        f"{len(settings.case_indices)} (trained and evaluated on)"
        if settings.case_indices
        else f"{settings.train_cases} + {settings.validation_cases}"
    )
    log(f"rendering {counts} cases", flush=True)
    if settings.case_indices:
        train = [_render(settings, i, config) for i in settings.case_indices]
        val = list(train)
    else:
        train = [_render(settings, i, config) for i in range(settings.train_cases)]
        val = [
            _render(settings, VALIDATION_START + i, config)
            for i in range(settings.validation_cases)
        ]
    train_images = torch.stack([t[0] for t in train])
    train_rows = [t[1] for t in train]
    val_images = torch.stack([v[0] for v in val])
    val_rows = [v[1] for v in val]
    render_seconds = time.perf_counter() - started
    log(f"rendered in {render_seconds:.0f} s", flush=True)
    optimizer = torch.optim.AdamW(
        holder.parameters(), lr=settings.learning_rate, weight_decay=config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: warmup_cosine(
            step,
            total=settings.steps,
            warmup=settings.warmup_steps,
            final_fraction=config.final_lr_fraction,
        ),
    )
    rng = np.random.default_rng(settings.seed)
    history: list[dict[str, Any]] = []
    losses: list[float] = []
    order = rng.permutation(len(train_rows))
    cursor = 0
    for step in range(1, settings.steps + 1):
        if cursor + settings.batch_size > len(order):
            order, cursor = rng.permutation(len(train_rows)), 0
        chosen = order[cursor : cursor + settings.batch_size]
        cursor += settings.batch_size
        images = train_images[chosen].float()
        rows = [train_rows[i].clone() for i in chosen]
        size = config.input_size
        for i in range(len(rows)):
            if rng.random() < config.flip_probability:
                images[i] = images[i].flip(-1)
                x1 = rows[i][:, 0].clone()
                rows[i][:, 0] = size - rows[i][:, 2]
                rows[i][:, 2] = size - x1
        images, targets = jitter_batch(
            images,
            _targets(rows),
            rng,
            scale_jitter=config.scale_jitter,
            shift_fraction=config.shift_fraction,
            contrast_jitter=config.contrast_jitter,
            brightness_jitter=config.brightness_jitter,
            gamma_range=(float(config.gamma_range[0]), float(config.gamma_range[1])),
        )
        holder.detector.train()
        parts = holder.detector(images, targets)
        loss = parts["classification"] + parts["box_regression"]
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(holder.parameters(), 5.0)
        optimizer.step()
        scheduler.step()
        losses.append(float(loss.detach()))
        if step % 100 == 0:
            log(
                f"step {step}/{settings.steps} loss {np.mean(losses[-100:]):.4f} "
                f"({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
        if step % settings.evaluate_every == 0 or step == settings.steps:
            figures = evaluate(holder, val_images, val_rows, config.finding_classes)
            history.append({"step": step, **figures})
            log(f"  validation mAP@0.5 {figures['map50']:.3f} {figures['ap50_per_class']}")
    folder = out / settings.name
    folder.mkdir(parents=True, exist_ok=True)
    state = {f"{k}": v.contiguous() for k, v in holder.detector.state_dict().items()}
    save_file(state, str(folder / WEIGHTS))
    card: dict[str, Any] = {
        "name": settings.name,
        "what": (
            "The built-in detector's image branch (ResNet + FPN + RetinaNet heads), trained on "
            "synthetic chest radiograph phantoms (active_learning.ml.synthetic). A strong start "
            "on the synthetic demo and benchmarks; on real radiographs only a generic "
            "initialisation that the project's labels must move."
        ),
        "command": "python -m active_learning.ml.builtin.starting_point build "
        + " ".join(sys.argv[2:]),
        "network": {
            "input_size": config.input_size,
            "backbone_channels": list(config.backbone_channels),
            "fpn_channels": config.fpn_channels,
            "anchors_per_level": config.anchors_per_level,
            "anchor_shapes": [list(s) for s in config.anchor_shapes],
            "anchor_indexing": config.anchor_indexing,
            "finding_classes": list(config.finding_classes),
        },
        "data": {
            "generator": "active_learning.ml.synthetic.generate_case (prevalence 'balanced')",
            "data_seed": settings.data_seed,
            "train_indices": [0, settings.train_cases - 1],
            "validation_indices": [
                VALIDATION_START,
                VALIDATION_START + settings.validation_cases - 1,
            ],
            # A learnability check: trained and evaluated on exactly these cases.
            **({"case_indices": list(settings.case_indices)} if settings.case_indices else {}),
            "difficulties": list(settings.difficulties),
            "render_sizes": list(settings.render_sizes),
        },
        "recipe": {
            "steps": settings.steps,
            "batch_size": settings.batch_size,
            "learning_rate": settings.learning_rate,
            "warmup_steps": settings.warmup_steps,
            "schedule": "linear warm-up then cosine decay",
            "loss": "sigmoid focal loss over all anchors per positive anchor + GIoU",
            "augmentation": "flip, scale, shift, contrast, brightness, gamma (BuiltinConfig)",
            "seed": settings.seed,
            "threads": settings.threads,
        },
        "validation": history,
        "continued_from": (
            None
            if parent is None
            else {
                "name": parent.name,
                "sha256": parent.card["sha256"],
                "command": parent.card["command"],
                "recipe": parent.card["recipe"],
                "validation": parent.card["validation"],
                "seconds": parent.card["seconds"],
                "continued_from": parent.card.get("continued_from"),
            }
        ),
        "total_steps": settings.steps
        + (
            0
            if parent is None
            else int(parent.card.get("total_steps", parent.card["recipe"]["steps"]))
        ),
        "final_loss": float(np.mean(losses[-100:])) if losses else math.nan,
        "seconds": round(time.perf_counter() - started, 1),
        "render_seconds": round(render_seconds, 1),
        "torch": torch.__version__,
        "sha256": _sha256(folder / WEIGHTS),
    }
    (folder / CARD).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    log(f"wrote {folder} (sha256 {card['sha256'][:12]}...)")
    return card


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build or check a stored detector starting point")
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("build")
    defaults = BuildSettings()
    for field_name in ("name", "data_seed", "train_cases", "validation_cases", "steps",
                       "batch_size", "learning_rate", "warmup_steps", "threads", "seed",
                       "evaluate_every", "init"):  # fmt: skip
        value = getattr(defaults, field_name)
        make.add_argument(f"--{field_name.replace('_', '-')}", type=type(value), default=value)
    make.add_argument("--out", type=Path, default=ROOT)
    check = sub.add_parser("check")
    check.add_argument("name", nargs="?", default=DEFAULT)
    args = parser.parse_args(argv)
    if args.command == "check":
        point = load(args.name)
        print(json.dumps({"name": point.name, "sha256": point.card["sha256"], "ok": True}))
        return
    settings = BuildSettings(**{k: v for k, v in vars(args).items() if k not in ("command", "out")})
    build(settings, args.out)


if __name__ == "__main__":
    main()
