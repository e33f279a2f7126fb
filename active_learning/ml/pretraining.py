"""Self-supervised pretraining of the detector's image backbone on unlabelled images (SimCLR).

Why: every project has far more unlabelled images than labels, and no hub weights may be
downloaded. Contrastive pretraining (Chen et al., "A Simple Framework for Contrastive Learning
of Visual Representations", ICML 2020) teaches the backbone what the project's images look like
before the first label: two random views of each image (crop and scale, small rotation, flip,
gamma, contrast, blur, noise) are pulled together and pushed away from every other image's views
(NT-Xent loss on a small projection head). The head is thrown away; the backbone is kept.

The backbone is the detector's own feature extractor (the MONAI ResNet + FPN that
:func:`active_learning.ml.builtin.network.build_detector` builds from a
:class:`~active_learning.ml.builtin.config.BuiltinConfig`), so its state dict loads into a
:class:`~active_learning.ml.builtin.model.BuiltinModel` being trained from scratch
(:func:`apply_backbone`). Its pooled features are also the image embeddings of the cold start
(:func:`embed_images`: TypiClust and k-center before any model is trained).

Pure Python and torch, never Django. A saved backbone is a directory written once
(:func:`save_backbone`, through :func:`~active_learning.ml.checkpoints.write_version`):
``backbone.safetensors`` (the state dict), ``pretraining.json`` (config, the image ids it saw,
steps, loss curve, seconds, format version) and ``manifest.json`` with every file's sha256;
:func:`load_backbone` verifies every checksum (and, when given, the registered one) before
reading a weight.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from active_learning.ml.builtin.config import BuiltinConfig
from active_learning.ml.builtin.network import build_detector
from active_learning.ml.builtin.preprocess import image_tensor
from active_learning.ml.checkpoints import read_manifest, write_version
from active_learning.ml.interface import CaseInput, CheckpointError, ModelInputError

KIND = "backbone-simclr"
FORMAT_VERSION = 1
WEIGHTS_FILE = "backbone.safetensors"
RECORD_FILE = "pretraining.json"
# FPN levels the pooled image vector is made of (stride 4, 8, 16 and the max-pooled 32).
LEVELS = ("0", "1", "2", "pool")

ProgressCallback = Callable[[int, int, float], None]  # (step, total steps, loss)


@dataclass
class PretrainConfig:
    """Settings of one pretraining run.

    ``steps`` optimisation steps of ``batch_size`` images (two views each), AdamW with linear
    warm-up over ``warmup_fraction`` of the steps then cosine decay. ``image_size``: the side the
    views are made at (None: the backbone config's ``input_size``; convolutions do not care, a
    smaller side is faster). ``crop_area``: the share of the image a view keeps (min, max).
    ``max_images``: images held in memory (uint8) at most, a seeded sample when more are given.
    ``max_seconds``: stop early after this long (the record says so).
    """

    steps: int = 300
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 1e-5
    warmup_fraction: float = 0.05
    temperature: float = 0.2
    projection_hidden: int = 256
    projection_dim: int = 64
    image_size: int | None = None
    crop_area: tuple[float, float] = (0.6, 1.0)
    max_images: int = 4000
    max_seconds: float | None = None
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["crop_area"] = list(self.crop_area)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PretrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown pretraining settings: {', '.join(sorted(unknown))}")
        values = dict(data)
        if "crop_area" in values:
            values["crop_area"] = tuple(values["crop_area"])
        return cls(**values)


@dataclass
class PretrainResult:
    """A pretrained backbone: its state dict and the record of how it was made."""

    state: dict[str, torch.Tensor]
    backbone_config: dict[str, Any]
    config: PretrainConfig
    image_ids: list[str]
    steps: int = 0
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    stopped_early: bool = False

    def record(self) -> dict[str, Any]:
        """What ``pretraining.json`` holds."""
        return {
            "format_version": FORMAT_VERSION,
            "kind": KIND,
            "backbone_config": self.backbone_config,
            "pretrain_config": self.config.to_dict(),
            "image_ids": list(self.image_ids),
            "images_sha256": images_digest(self.image_ids),
            "steps": self.steps,
            "losses": [round(v, 5) for v in self.losses],
            "seconds": round(self.seconds, 2),
            "stopped_early": self.stopped_early,
        }


def images_digest(image_ids: Iterable[str]) -> str:
    """sha256 over the sorted image ids: the identity of the set of images a run saw."""
    return hashlib.sha256("\n".join(sorted(str(i) for i in image_ids)).encode()).hexdigest()


def backbone_settings(config: BuiltinConfig) -> dict[str, Any]:
    """The whole detector config as a dict (what the backbone was built from)."""
    return config.to_dict()


def build_backbone(config: BuiltinConfig) -> nn.Module:
    """The detector's feature extractor (ResNet + FPN) exactly as ``build_detector`` makes it,
    so its state dict fits ``BuiltinModel``'s ``network.feature_extractor``. Input ``(B, 1, S,
    S)`` float in [0, 1]; output a dict of FPN maps keyed by :data:`LEVELS`."""
    detector = build_detector(config)
    return cast(nn.Module, detector.network.feature_extractor)


def pooled_features(features: dict[str, torch.Tensor]) -> torch.Tensor:
    """``(B, len(LEVELS) * fpn_channels)``: each FPN level average-pooled, concatenated."""
    return torch.cat([features[level].mean(dim=(2, 3)) for level in LEVELS], dim=1)


class _SimCLR(nn.Module):
    def __init__(self, backbone: nn.Module, feature_dim: int, hidden: int, out: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.projector = nn.Sequential(
            nn.Linear(feature_dim, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Linear(hidden, out),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.projector(pooled_features(self.backbone(images)))


def nt_xent(z: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's NT-Xent loss for ``z`` = ``(2B, d)`` projections where rows ``i`` and ``i + B``
    are two views of one image: cross-entropy of each row's cosine similarities (over
    ``temperature``) against its partner, every other row a negative. log(2B - 1) at chance."""
    z = F.normalize(z, dim=1)
    n = z.shape[0]
    half = n // 2
    similarity = z @ z.T / temperature
    similarity = similarity.masked_fill(torch.eye(n, dtype=torch.bool, device=z.device), -1e9)
    partner = torch.cat([torch.arange(half, n), torch.arange(0, half)]).to(z.device)
    return F.cross_entropy(similarity, partner)


def _gaussian_kernel(sigma: float, device: torch.device) -> torch.Tensor:
    radius = max(1, math.ceil(2.5 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


def augment(
    images: torch.Tensor, generator: torch.Generator, crop_area: Sequence[float]
) -> torch.Tensor:
    """One random view per image of ``images`` ``(B, 1, S, S)`` float in [0, 1], same shape:
    a crop of ``crop_area`` of the image (aspect 3/4..4/3) rescaled to S, rotation up to 7
    degrees, horizontal flip, gamma 0.8..1.25, contrast 0.85..1.15, brightness +-0.05, blur
    half the time, Gaussian noise. Milder than SimCLR's natural-image recipe on purpose:
    radiographs differ little from each other, and with strong crops and colour jitter the
    loss stays at chance (log(2B - 1)) for hundreds of steps. Every draw comes from
    ``generator`` (reproducible per seed)."""
    batch, device = images.shape[0], images.device

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(batch, generator=generator).to(device)

    area = uniform(float(crop_area[0]), float(crop_area[1]))
    aspect = torch.exp(uniform(math.log(3 / 4), math.log(4 / 3)))
    scale_x = torch.sqrt(area * aspect).clamp(max=1.0)
    scale_y = torch.sqrt(area / aspect).clamp(max=1.0)
    shift_x = (1 - scale_x) * uniform(-1.0, 1.0)
    shift_y = (1 - scale_y) * uniform(-1.0, 1.0)
    angle = uniform(-7.0, 7.0) * math.pi / 180
    flip = torch.where(uniform(0.0, 1.0) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack(
        [
            torch.stack([scale_x * cos * flip, -scale_y * sin, shift_x], dim=1),
            torch.stack([scale_x * sin * flip, scale_y * cos, shift_y], dim=1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    views = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    gamma = torch.exp(uniform(math.log(0.8), math.log(1.25))).view(-1, 1, 1, 1)
    views = views.clamp(1e-4, 1.0) ** gamma
    contrast = uniform(0.85, 1.15).view(-1, 1, 1, 1)
    brightness = uniform(-0.05, 0.05).view(-1, 1, 1, 1)
    mean = views.mean(dim=(2, 3), keepdim=True)
    views = (views - mean) * contrast + mean + brightness
    blurred = uniform(0.0, 1.0) < 0.5
    if bool(blurred.any()):
        sigma = float(uniform(0.5, 1.0)[0]) * images.shape[-1] / 256
        kernel = _gaussian_kernel(max(sigma, 0.3), device)
        pad = kernel.numel() // 2
        smooth = F.conv2d(
            F.pad(views, (pad, pad, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1)
        )
        smooth = F.conv2d(
            F.pad(smooth, (0, 0, pad, pad), mode="replicate"), kernel.view(1, 1, -1, 1)
        )
        views = torch.where(blurred.view(-1, 1, 1, 1), smooth, views)
    noise = uniform(0.0, 0.03).view(-1, 1, 1, 1)
    views = views + noise * torch.randn(views.shape, generator=generator).to(device)
    return views.clamp(0.0, 1.0)


def prepare_images(
    images: Iterable[tuple[str, np.ndarray]], *, size: int, min_size: int
) -> tuple[list[str], torch.Tensor, list[str]]:
    """``(ids, (N, 1, size, size) uint8, refused)``: each image scaled the way the detector
    scales its input (robust percentiles, antialiased resize), kept as bytes to hold thousands
    in memory. Unreadable images are refused by id (with the reason), not fatal."""
    ids: list[str] = []
    tensors: list[torch.Tensor] = []
    refused: list[str] = []
    for image_id, pixels in images:
        try:
            tensor, _, _ = image_tensor(
                CaseInput(case_id=str(image_id), image=pixels), size=size, min_size=min_size
            )
        except ModelInputError as exc:
            refused.append(f"{image_id}: {exc}")
            continue
        ids.append(str(image_id))
        tensors.append((tensor * 255).round().to(torch.uint8))
    if not tensors:
        return ids, torch.zeros((0, 1, size, size), dtype=torch.uint8), refused
    return ids, torch.stack(tensors), refused


def _learning_rate(step: int, total: int, config: PretrainConfig) -> float:
    warmup = max(1, int(total * config.warmup_fraction))
    if step < warmup:
        return config.learning_rate * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return config.learning_rate * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def pretrain(
    images: Iterable[tuple[str, np.ndarray]],
    *,
    backbone_config: BuiltinConfig,
    config: PretrainConfig | None = None,
    progress: ProgressCallback | None = None,
    device: torch.device | str | None = None,
) -> PretrainResult:
    """Pretrain the backbone of ``backbone_config`` on ``images`` (``(image id, pixels)`` pairs,
    pixels ``(rows, columns)`` stored values, any numeric dtype) with SimCLR.

    Raises ``ValueError`` when fewer than two readable images are given (a contrastive loss
    needs negatives). Deterministic for a seed on one device and thread count."""
    config = config or PretrainConfig()
    if config.steps < 1 or config.batch_size < 2:
        raise ValueError("pretraining needs at least 1 step and a batch of at least 2 images")
    size = config.image_size or backbone_config.input_size
    ids, pixels, _refused = prepare_images(
        images, size=size, min_size=backbone_config.min_image_size
    )
    if len(ids) < 2:
        raise ValueError(f"pretraining needs at least 2 readable images, got {len(ids)}")
    rng = np.random.default_rng(config.seed)
    if len(ids) > config.max_images:
        keep = np.sort(rng.choice(len(ids), size=config.max_images, replace=False))
        ids = [ids[i] for i in keep]
        pixels = pixels[torch.from_numpy(keep)]
    run_device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(config.seed)
    backbone = build_backbone(backbone_config)
    feature_dim = len(LEVELS) * backbone_config.fpn_channels
    model = _SimCLR(backbone, feature_dim, config.projection_hidden, config.projection_dim).to(
        run_device
    )
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    generator = torch.Generator().manual_seed(config.seed)
    batch = min(config.batch_size, len(ids))
    result = PretrainResult(
        state={}, backbone_config=backbone_settings(backbone_config), config=config, image_ids=ids
    )
    started = time.perf_counter()
    model.train()
    order = rng.permutation(len(ids))
    cursor = 0
    for step in range(config.steps):
        if config.max_seconds is not None and time.perf_counter() - started > config.max_seconds:
            result.stopped_early = True
            break
        if cursor + batch > len(order):
            order, cursor = rng.permutation(len(ids)), 0
        chosen = torch.from_numpy(order[cursor : cursor + batch])
        cursor += batch
        originals = pixels[chosen].to(run_device, dtype=torch.float32) / 255
        views = torch.cat(
            [
                augment(originals, generator, config.crop_area),
                augment(originals, generator, config.crop_area),
            ]
        )
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(step, config.steps, config)
        loss = nt_xent(model(views), config.temperature)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        result.steps += 1
        result.losses.append(float(loss.detach()))
        if progress:
            progress(result.steps, config.steps, result.losses[-1])
    result.seconds = time.perf_counter() - started
    result.state = {k: v.detach().cpu().clone() for k, v in backbone.state_dict().items()}
    return result


# --- saving, loading --------------------------------------------------------------------------


def save_backbone(result: PretrainResult, directory: Path | str) -> dict[str, Any]:
    """Write ``result`` to ``directory`` (created; never overwritten) and return its manifest,
    whose ``checksum`` is the artefact's identity."""
    record = result.record()

    def write(folder: Path) -> None:
        save_file(result.state, str(folder / WEIGHTS_FILE))
        (folder / RECORD_FILE).write_text(json.dumps(record, indent=1, sort_keys=True))

    return write_version(
        directory,
        kind=KIND,
        finding_classes=[],
        write_files=write,
        extra={
            "pretrain_format_version": FORMAT_VERSION,
            "image_count": len(result.image_ids),
            "images_sha256": record["images_sha256"],
            "steps": result.steps,
        },
    )


@dataclass
class LoadedBackbone:
    """A verified backbone: its state dict, manifest (with ``checksum``) and record."""

    state: dict[str, torch.Tensor]
    manifest: dict[str, Any]
    record: dict[str, Any]

    @property
    def backbone_config(self) -> BuiltinConfig:
        return BuiltinConfig.from_dict(self.record["backbone_config"])


def load_backbone(directory: Path | str, *, expected_checksum: str | None = None) -> LoadedBackbone:
    """Read a saved backbone after verifying every file's sha256 and, when given, that the
    directory is the one registered (``expected_checksum``). :class:`CheckpointError` when a
    file is missing or altered, the kind or format is another, or the checksum differs."""
    manifest = read_manifest(directory)
    if manifest.get("kind") != KIND:
        raise CheckpointError(f"{directory} holds a {manifest.get('kind')!r}, not a backbone")
    if manifest.get("pretrain_format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{directory}: backbone format {manifest.get('pretrain_format_version')!r}; "
            f"this MedLoop reads {FORMAT_VERSION}"
        )
    if expected_checksum is not None and manifest["checksum"] != expected_checksum:
        raise CheckpointError(f"{directory}: the files are not the ones registered")
    root = Path(directory)
    record = json.loads((root / RECORD_FILE).read_text())
    state = load_file(str(root / WEIGHTS_FILE))
    return LoadedBackbone(state=state, manifest=manifest, record=record)


def apply_backbone(feature_extractor: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy a pretrained state dict into a detector's ``feature_extractor`` (every key, every
    shape must match: :class:`CheckpointError` otherwise, so a backbone built for other channel
    widths is refused rather than half-loaded)."""
    own = feature_extractor.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        raise CheckpointError(
            "the pretrained backbone does not fit this detector "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]}, other shapes {wrong[:3]})"
        )
    device = next(iter(own.values())).device if own else torch.device("cpu")
    feature_extractor.load_state_dict({k: v.to(device) for k, v in state.items()})


def backbone_fits(config: BuiltinConfig, loaded: LoadedBackbone) -> bool:
    """Whether ``loaded`` was built with the same backbone shapes as ``config`` builds."""
    try:
        apply_backbone(build_backbone(config), loaded.state)
    except CheckpointError:
        return False
    return True


def embed_images(
    loaded: LoadedBackbone,
    images: Iterable[tuple[str, np.ndarray]],
    *,
    batch_size: int = 16,
    device: torch.device | str | None = None,
) -> tuple[list[str], np.ndarray]:
    """``(ids, (n, len(LEVELS) * fpn_channels) float32)``: the pretrained backbone's pooled
    features of each readable image, L2-normalised (cosine geometry, as SimCLR trained it), at
    the size the backbone was pretrained at."""
    config = loaded.backbone_config
    size = int(loaded.record["pretrain_config"].get("image_size") or config.input_size)
    run_device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    backbone = build_backbone(config)
    apply_backbone(backbone, loaded.state)
    backbone = backbone.to(run_device).eval()
    ids, pixels, _ = prepare_images(images, size=size, min_size=config.min_image_size)
    vectors = []
    with torch.no_grad():
        for start in range(0, len(ids), batch_size):
            chunk = pixels[start : start + batch_size].to(run_device, dtype=torch.float32) / 255
            vectors.append(F.normalize(pooled_features(backbone(chunk)), dim=1).cpu().numpy())
    dim = len(LEVELS) * config.fpn_channels
    matrix = np.concatenate(vectors) if vectors else np.zeros((0, dim), dtype=np.float32)
    return ids, matrix.astype(np.float32)
