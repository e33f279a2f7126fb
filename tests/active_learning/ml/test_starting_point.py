"""The stored detector starting point: built from synthetic phantoms, checksummed, loaded into a
fresh network by finding name, refused when altered or when it does not fit the model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from active_learning.ml.builtin import BuiltinConfig, BuiltinModel
from active_learning.ml.builtin import starting_point as sp
from active_learning.ml.builtin.network import build_detector
from active_learning.ml.datasets import synthetic_source


@pytest.fixture(scope="module")
def tiny_point(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A starting point built by the real builder, a few steps long (the shipped one takes an
    hour; this one checks the files, the card and the loading)."""
    root = tmp_path_factory.mktemp("points")
    settings = sp.BuildSettings(
        name="tiny", train_cases=6, validation_cases=3, steps=3, batch_size=2, warmup_steps=1,
        threads=1, evaluate_every=3,
    )  # fmt: skip
    card = sp.build(settings, root, log=lambda *a, **k: None)
    assert card["recipe"]["steps"] == 3 and len(card["validation"]) == 1
    assert 0.0 <= card["validation"][0]["map50"] <= 1.0
    return root


def test_the_card_names_what_made_it_and_the_checksum_holds(tiny_point: Path) -> None:
    point = sp.load("tiny", root=tiny_point)
    card = point.card
    assert card["network"]["input_size"] == 256
    assert card["data"]["data_seed"] not in (7, 14)  # neither the demo's nor the bench's seed
    assert set(card["data"]) >= {"generator", "train_indices", "validation_indices"}
    assert len(card["sha256"]) == 64
    assert all(k.startswith("network.") for k in point.state)


def test_altered_weights_are_refused(tiny_point: Path, tmp_path: Path) -> None:
    shutil.copytree(tiny_point / "tiny", tmp_path / "tiny")
    weights = tmp_path / "tiny" / sp.WEIGHTS
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(sp.StartingPointError, match="not the one that was built"):
        sp.load("tiny", root=tmp_path)
    with pytest.raises(sp.StartingPointError, match="no stored starting point 'absent'"):
        sp.load("absent", root=tmp_path)


def test_a_point_that_does_not_fit_says_what_differs(tiny_point: Path) -> None:
    point = sp.load("tiny", root=tiny_point)
    assert sp.fits(BuiltinConfig(), point) is None
    assert "input_size is 128" in str(sp.fits(BuiltinConfig(input_size=128), point))
    assert "fpn_channels" in str(sp.fits(BuiltinConfig(fpn_channels=32), point))
    assert point.card["network"]["anchor_indexing"] == "xy"
    transposed = BuiltinConfig(anchor_indexing="ij")
    assert "anchor_indexing is 'ij', the starting point was built with 'xy'" in str(
        sp.fits(transposed, point)
    )
    # A point built before the setting learnt MONAI's transposed layout, and says so.
    network = {k: v for k, v in point.card["network"].items() if k != "anchor_indexing"}
    older = sp.StartingPoint("older", point.card | {"network": network}, point.state)
    assert sp.anchor_indexing(older) == "ij"
    assert "built with 'ij'" in str(sp.fits(BuiltinConfig(), older))


def test_class_rows_are_matched_by_finding_name(tiny_point: Path) -> None:
    point = sp.load("tiny", root=tiny_point)
    config = BuiltinConfig(finding_classes=("cardiomegaly", "new_finding", "nodule"))
    config.anchor_shapes = tuple(tuple(s) for s in point.card["network"]["anchor_shapes"])
    holder = torch.nn.Module()
    holder.detector = build_detector(config)
    fresh = holder.detector.state_dict()["network.classification_head.cls_logits.weight"].clone()
    shared = sp.apply(holder, config, point)
    assert shared == ["cardiomegaly", "nodule"]
    loaded = holder.detector.state_dict()
    stored_classes = point.card["network"]["finding_classes"]
    stored = point.state["network.classification_head.cls_logits.weight"]
    rows = loaded["network.classification_head.cls_logits.weight"]
    for anchor in range(config.anchors_per_level):
        for name in ("cardiomegaly", "nodule"):
            mine = anchor * 3 + config.finding_classes.index(name)
            theirs = anchor * len(stored_classes) + stored_classes.index(name)
            assert torch.equal(rows[mine], stored[theirs])
        new = anchor * 3 + 1
        assert torch.equal(rows[new], fresh[new])  # an unknown class keeps its fresh start
    key = "network.feature_extractor.body.conv1.weight"
    assert torch.equal(loaded[key], point.state[key])


def test_the_shipped_point_loads_and_a_model_starts_from_it() -> None:
    assert sp.DEFAULT in sp.available()
    point = sp.load(sp.DEFAULT)
    card = json.loads((sp.ROOT / sp.DEFAULT / sp.CARD).read_text())
    assert card["recipe"]["steps"] >= 1000 and card["validation"]
    model = BuiltinModel(BuiltinConfig(train_steps=0))
    model.train(synthetic_source(3, 0, 4, 256), max_steps=0, starting_point=sp.DEFAULT)
    assert model.config.extra["starting_point"]["sha256"] == point.card["sha256"]
    detector = model.network.detector.state_dict()
    key = "network.regression_head.bbox_reg.weight"
    assert torch.equal(detector[key], point.state[key])
    with pytest.raises(ValueError, match="not both"):
        BuiltinModel().train(
            synthetic_source(3, 0, 4, 256), max_steps=0, starting_point=sp.DEFAULT,
            backbone_init="somewhere",
        )  # fmt: skip


def test_a_detector_that_starts_from_learnt_weights_moves_at_its_reduced_rate() -> None:
    def moved(scale: float) -> tuple[float, float]:
        """Largest change of a detector weight and of a report-decoder weight in 2 steps."""
        config = BuiltinConfig(train_steps=2, warmup_steps=0, batch_size=2, seed=1)
        config.pretrained_detector_lr_scale = scale
        model = BuiltinModel(config)
        point = sp.load(sp.DEFAULT)
        model.train(synthetic_source(3, 0, 4, 256), max_steps=2, starting_point=sp.DEFAULT)
        key = "network.classification_head.cls_logits.weight"
        detector = (model.network.detector.state_dict()[key] - point.state[key]).abs().max()
        before = BuiltinModel(BuiltinConfig(train_steps=0, seed=1))
        before.train(synthetic_source(3, 0, 4, 256), max_steps=0, starting_point=sp.DEFAULT)
        name = "transformer.h.0.mlp.c_fc.weight"
        decoder = (
            model.network.decoder.state_dict()[name] - before.network.decoder.state_dict()[name]
        )
        return float(detector), float(decoder.abs().max())

    full, reduced = moved(1.0), moved(0.01)
    # The other parts learn at the full rate either way; the detector at a hundredth of it.
    assert reduced[1] == pytest.approx(full[1], rel=0.05)
    assert reduced[0] < 0.05 * full[0]


def test_a_learnability_check_trains_and_evaluates_on_the_given_cases(tmp_path: Path) -> None:
    """bench/anchor_layout.py's builds: exactly these cases, in either anchor layout."""
    settings = sp.BuildSettings(
        name="check", steps=2, batch_size=2, warmup_steps=1, threads=1, evaluate_every=2,
        case_indices=(0, 3, 5), anchor_indexing="ij",
    )  # fmt: skip
    card = sp.build(settings, tmp_path, log=lambda *a, **k: None)
    assert card["data"]["case_indices"] == [0, 3, 5]
    assert card["network"]["anchor_indexing"] == "ij"
    assert sp.anchor_indexing(sp.load("check", root=tmp_path)) == "ij"
    assert "built with 'ij'" in str(sp.fits(BuiltinConfig(), sp.load("check", root=tmp_path)))
