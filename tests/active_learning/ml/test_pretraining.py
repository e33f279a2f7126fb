"""Self-supervised pretraining of the detector's backbone: it learns on real synthetic
radiographs, its artefact is checksummed and refused when altered, its weights load into the
detector a cycle trains, and its embeddings come out one per image."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from active_learning.ml.builtin import BuiltinConfig, BuiltinModel
from active_learning.ml.datasets import synthetic_source
from active_learning.ml.interface import CheckpointError
from active_learning.ml.pretraining import (
    KIND,
    RECORD_FILE,
    WEIGHTS_FILE,
    PretrainConfig,
    apply_backbone,
    build_backbone,
    embed_images,
    load_backbone,
    nt_xent,
    pretrain,
    save_backbone,
)
from active_learning.ml.synthetic import generate_case

SIZE = 128
BATCH = 16


def _config() -> BuiltinConfig:
    return BuiltinConfig(input_size=SIZE, vocab_size=600, report_max_tokens=120, seed=3)


@pytest.fixture(scope="module")
def images() -> list[tuple[str, np.ndarray]]:
    return [(f"img-{i}", generate_case(7, i, SIZE).pixels) for i in range(48)]


@pytest.fixture(scope="module")
def pretrained(images):
    torch.manual_seed(0)
    config = PretrainConfig(steps=60, batch_size=BATCH, image_size=64, crop_area=(0.8, 1.0), seed=1)
    return pretrain(images, backbone_config=_config(), config=config, device="cpu")


def test_nt_xent_is_log_2b_minus_1_at_chance_and_small_for_matching_views():
    torch.manual_seed(0)
    constant = torch.ones(8, 4)
    assert float(nt_xent(constant, 0.2)) == pytest.approx(math.log(7), rel=1e-4)
    views = torch.randn(4, 16)
    assert float(nt_xent(torch.cat([views, views]), 0.1)) < 0.05


def test_the_contrastive_loss_falls_below_chance_within_sixty_steps(pretrained, images):
    losses = pretrained.losses
    assert pretrained.steps == 60 and len(losses) == 60
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    chance = math.log(2 * BATCH - 1)
    assert last < first - 0.15, (first, last)
    assert last < chance - 0.05, (last, chance)
    assert sorted(pretrained.image_ids) == sorted(image_id for image_id, _ in images)


def test_a_saved_backbone_records_what_it_saw_and_loads_back_verified(pretrained, tmp_path):
    manifest = save_backbone(pretrained, tmp_path / "b0001")
    assert manifest["kind"] == KIND and manifest["image_count"] == 48
    loaded = load_backbone(tmp_path / "b0001", expected_checksum=manifest["checksum"])
    assert loaded.record["image_ids"] == pretrained.image_ids
    assert loaded.record["steps"] == 60 and len(loaded.record["losses"]) == 60
    assert loaded.record["seconds"] > 0 and loaded.record["format_version"] == 1
    for key, tensor in pretrained.state.items():
        assert torch.equal(loaded.state[key], tensor), key
    with pytest.raises(CheckpointError, match="already exists"):
        save_backbone(pretrained, tmp_path / "b0001")
    with pytest.raises(CheckpointError, match="not the ones registered"):
        load_backbone(tmp_path / "b0001", expected_checksum="0" * 64)


@pytest.mark.parametrize("name", [WEIGHTS_FILE, RECORD_FILE])
def test_a_tampered_backbone_file_is_refused(pretrained, tmp_path, name):
    directory = tmp_path / "b0001"
    save_backbone(pretrained, directory)
    path = directory / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match its checksum"):
        load_backbone(directory)


def test_the_pretrained_weights_load_into_the_detector_a_cycle_trains(pretrained, tmp_path):
    directory = tmp_path / "b0001"
    save_backbone(pretrained, directory)
    source = synthetic_source(seed=5, start=0, count=10, size=SIZE)
    fresh, initialised = BuiltinModel(_config()), BuiltinModel(_config())
    fresh.train(source, max_steps=0)
    initialised.train(source, max_steps=0, backbone_init=directory)
    loaded = initialised.network.feature_extractor.state_dict()
    scratch = fresh.network.feature_extractor.state_dict()
    for key, tensor in pretrained.state.items():
        assert torch.equal(loaded[key].cpu(), tensor), key
    convolutions = [k for k in pretrained.state if k.endswith("weight") and "conv" in k]
    assert convolutions and any(
        not torch.equal(scratch[k].cpu(), loaded[k].cpu()) for k in convolutions
    )
    # The heads are untouched: the same seed builds the same heads with or without it.
    head = "detector.network.classification_head"
    own = {k: v for k, v in initialised.network.state_dict().items() if k.startswith(head)}
    assert own and all(torch.equal(v, fresh.network.state_dict()[k]) for k, v in own.items())


def test_a_backbone_of_other_widths_is_refused_not_half_loaded(pretrained):
    wider = build_backbone(BuiltinConfig(input_size=SIZE, backbone_channels=(8, 16, 32, 64)))
    with pytest.raises(CheckpointError, match="does not fit"):
        apply_backbone(wider, pretrained.state)


def test_embeddings_are_one_unit_vector_per_readable_image(pretrained, tmp_path, images):
    save_backbone(pretrained, tmp_path / "b0001")
    loaded = load_backbone(tmp_path / "b0001")
    unreadable = ("tiny", np.zeros((4, 4), dtype=np.uint16))
    ids, vectors = embed_images(loaded, [*images[:5], unreadable], device="cpu")
    assert ids == [image_id for image_id, _ in images[:5]]
    assert vectors.shape == (5, 4 * 48) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(vectors[0], vectors[1])
