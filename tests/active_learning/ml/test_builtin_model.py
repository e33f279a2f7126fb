"""The built-in suggestion model: it learns, round-trips through a saved version, keeps its
documented output contract, explains itself, and refuses or handles bad input as documented."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from active_learning.ml.builtin import BuiltinConfig, BuiltinModel
from active_learning.ml.builtin.inference import greedy_decode
from active_learning.ml.checkpoints import load_model
from active_learning.ml.datasets import synthetic_source
from active_learning.ml.interface import (
    CaseInput,
    CheckpointError,
    LabValue,
    ModelInputError,
    UncertaintyOptions,
)

SIZE = 128


def tiny_config(**overrides) -> BuiltinConfig:
    values = {
        "input_size": SIZE,
        "vocab_size": 600,
        "report_max_tokens": 120,
        "batch_size": 8,
        "seed": 3,
    }
    return BuiltinConfig(**(values | overrides))


@pytest.fixture(scope="module")
def source():
    return synthetic_source(seed=5, start=0, count=40, size=SIZE)


@pytest.fixture(scope="module")
def trained(source):
    torch.manual_seed(0)
    model = BuiltinModel(tiny_config())
    report = model.train(source, epochs=4)
    return model, report


@pytest.fixture(scope="module")
def test_cases():
    return list(synthetic_source(seed=5, start=1000, count=3, size=SIZE)())


def test_training_makes_the_loss_fall(trained):
    _, report = trained
    assert report.steps >= 16
    first, last = np.mean(report.losses[:4]), np.mean(report.losses[-4:])
    assert last < 0.8 * first, (first, last)
    # Every part of the loss is trained, and the held-out calibration split was used.
    assert set(report.loss_parts[0]) == {
        "box_classification",
        "box_regression",
        "findings",
        "report",
    }
    assert report.loss_parts[-1]["report"] < report.loss_parts[0]["report"]
    assert report.calibration_cases > 0
    assert 0.05 <= report.temperature <= 20


def test_predictions_keep_the_documented_shapes_and_ranges(trained, test_cases):
    model, _ = trained
    predictions = model.predict(
        test_cases, uncertainty=UncertaintyOptions(mc_samples=4, mc_report_drafts=2)
    )
    assert [p.case_id for p in predictions] == [c.case_id for c in test_cases]
    for case, prediction in zip(test_cases, predictions, strict=True):
        rows, columns = case.image.shape
        assert set(prediction.findings) == set(model.finding_classes)
        assert all(0.0 <= p <= 1.0 for p in prediction.findings.values())
        assert all(0.0 <= v <= math.log(2) + 1e-9 for v in prediction.finding_uncertainty.values())
        for box in prediction.boxes:
            assert box.finding in model.finding_classes
            assert box.x >= 0 and box.x + box.width <= columns + 1e-3
            assert box.y >= 0 and box.y + box.height <= rows + 1e-3
            assert box.score >= model.config.suggestion_score_threshold
            assert 0.0 <= box.localization_instability <= 1.0
            assert 0.0 <= box.class_entropy <= math.log(2) + 1e-9
        assert set(prediction.report) == {"findings", "impression"}
        assert prediction.report_uncertainty["mean_token_entropy"] >= 0
        assert prediction.report_uncertainty["nll"] >= 0
        assert 0.0 <= prediction.report_uncertainty["mc_disagreement"] <= 1.0
        assert 0.0 <= prediction.case_score <= 1.0
        for sentence in prediction.report_sentences:
            assert sentence.section in {"findings", "impression"}
            if sentence.box_index is not None:
                box = prediction.boxes[sentence.box_index]
                assert box.finding in sentence.findings
        stored = prediction.as_suggestion()
        assert set(stored) == {"boxes", "finding_probabilities", "report_draft", "uncertainty"}
    embedding = model.embed(test_cases)
    assert embedding.shape == (3, model.config.fusion_hidden)
    assert embedding.dtype == np.float32


def test_predict_gives_the_same_embedding_as_embed(trained, test_cases):
    model, _ = trained
    predictions = model.predict(test_cases, uncertainty=UncertaintyOptions(box_stability=True))
    embedded = model.embed(test_cases)
    assert embedded.shape == (3, model.config.fusion_hidden)
    given = np.stack([p.embedding for p in predictions])
    np.testing.assert_allclose(given, embedded, rtol=1e-4, atol=1e-5)


def test_the_trained_report_reads_like_the_training_reports(trained, test_cases):
    model, _ = trained
    draft = model.predict(test_cases[:1])[0].report["findings"]
    # After a few epochs on 36 cases the decoder has learnt the fixed normal sentences.
    assert "heart" in draft.lower() or "pneumothorax" in draft.lower(), draft


def test_save_and_load_give_identical_predictions(trained, test_cases, tmp_path):
    model, _ = trained
    manifest = model.save(tmp_path / "v1")
    assert manifest["kind"] == "builtin" and len(manifest["checksum"]) == 64
    assert {"weights.safetensors", "config.json"} <= set(manifest["files"])
    loaded = load_model(tmp_path / "v1")
    assert isinstance(loaded, BuiltinModel)
    before = model.predict(test_cases)
    after = loaded.predict(test_cases)
    for a, b in zip(before, after, strict=True):
        assert a.report == b.report
        assert [dataclasses.astuple(x) for x in a.boxes] == [
            dataclasses.astuple(x) for x in b.boxes
        ]
        np.testing.assert_allclose(list(a.findings.values()), list(b.findings.values()), atol=1e-6)
    np.testing.assert_allclose(model.embed(test_cases), loaded.embed(test_cases), atol=1e-6)


def test_a_saved_version_is_never_overwritten_and_tampering_is_refused(trained, tmp_path):
    model, _ = trained
    model.save(tmp_path / "v1")
    with pytest.raises(CheckpointError, match="already exists"):
        model.save(tmp_path / "v1")
    weights = tmp_path / "v1" / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"weights\.safetensors does not match"):
        load_model(tmp_path / "v1")
    with pytest.raises(CheckpointError, match=r"manifest\.json is missing"):
        load_model(tmp_path / "nowhere")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".v1")]  # no staging left


def test_warm_start_continues_from_a_saved_version(trained, source, tmp_path):
    model, report = trained
    model.save(tmp_path / "v1")
    warm = BuiltinModel(tiny_config())
    assert warm.refuses_to_build_on(tmp_path / "v1") is None
    warm_report = warm.train(source, epochs=1, max_steps=2, warm_start=tmp_path / "v1")
    assert warm.tokenizer is not None and len(warm.tokenizer) == len(model.tokenizer)
    assert warm_report.losses[0] < np.mean(report.losses[:2])


def test_a_warm_start_from_an_older_version_keeps_the_anchor_layout_it_learnt(source, tmp_path):
    older = BuiltinModel(tiny_config(anchor_indexing="ij"))
    older.train(source, max_steps=1)
    older.save(tmp_path / "v1")
    # A cycle asks first and starts over (tests/active_learning/test_cycles.py); a model told
    # to build on it anyway keeps the layout its weights learnt.
    refusal = BuiltinModel(tiny_config()).refuses_to_build_on(tmp_path / "v1")
    assert refusal is not None and "'ij'" in refusal and "transposed" in refusal
    assert "'xy'" in refusal
    assert (
        BuiltinModel(tiny_config(anchor_indexing="ij")).refuses_to_build_on(tmp_path / "v1") is None
    )
    warm = BuiltinModel(tiny_config())
    warm.train(source, max_steps=1, warm_start=tmp_path / "v1")
    assert warm.config.anchor_indexing == "ij"
    assert warm.network is not None
    assert warm.network.detector.anchor_generator.indexing == "ij"
    assert load_model(tmp_path / "v1").config.anchor_indexing == "ij"


def test_grad_cam_heatmap_covers_the_image_in_unit_range(trained, test_cases):
    model, _ = trained
    case = test_cases[0]
    heatmap = model.explain(case, "effusion")
    assert heatmap.shape == case.image.shape
    assert heatmap.dtype == np.float32
    assert heatmap.min() >= 0.0 and heatmap.max() <= 1.0
    with pytest.raises(ModelInputError, match="unknown finding 'fracture'"):
        model.explain(case, "fracture")


def test_grad_cam_is_hottest_where_the_gradient_weighted_activations_are_largest(
    trained, test_cases, tmp_path
):
    """The heatmap against Grad-CAM computed by hand (Selvaraju et al.: the layer's activations
    weighted by the spatial mean of the finding logit's gradient, summed over channels,
    rectified), scaled to [0, 1]: the same map, not its inverse (MONAI's default
    post-processing flips it), and the model is left as it was (evaluation mode, no hooks)."""
    from active_learning.ml.builtin.model import _ImageToFindings

    trained[0].save(tmp_path / "v1")
    model = load_model(tmp_path / "v1")
    network = model.network
    # The tiny model calls every finding absent, with no positive evidence anywhere (an
    # empty map, tested below); its finding head negated calls them present, on the evidence
    # its features held against them, so that every map has a hottest place.
    case = test_cases[0]
    assert not model.explain(case, "effusion").any()
    with torch.no_grad():
        network.finding_head[-1].weight.neg_()
        network.finding_head[-1].bias.neg_()
    hooks = sum(len(m._forward_hooks) + len(m._backward_hooks) for m in network.modules())
    for finding in model.finding_classes:
        heatmap = model.explain(case, finding)
        batch = model._collate([case], labelled=False)
        with torch.no_grad():
            _, text_vector = network.encode_text(batch.text_ids, batch.text_mask)
        wrapper = _ImageToFindings(network, text_vector, batch.labs).eval()
        layer = network.detector.network.feature_extractor.body.layer3
        seen: dict[str, torch.Tensor] = {}
        handle = layer.register_forward_hook(
            lambda _m, _i, out, seen=seen: seen.update(activations=out)
        )
        try:
            logits = wrapper(batch.images)
            activations = seen["activations"]
            index = model.finding_classes.index(finding)
            (gradient,) = torch.autograd.grad(logits[0, index], activations)
        finally:
            handle.remove()
        weights = gradient.mean(dim=(2, 3), keepdim=True)
        cam = torch.relu((weights * activations).sum(dim=1, keepdim=True)).detach()
        assert float(cam.max()) > 0, finding
        cam = F.interpolate(cam, size=batch.images.shape[-2:], mode="bilinear")
        cam = F.interpolate(cam, size=case.image.shape, mode="bilinear")[0, 0]
        expected = ((cam - cam.min()) / (cam.max() - cam.min())).numpy()
        assert np.corrcoef(heatmap.ravel(), expected.ravel())[0, 1] > 0.99, finding
        assert heatmap.argmax() == expected.argmax(), finding
    assert not network.training
    assert hooks == sum(len(m._forward_hooks) + len(m._backward_hooks) for m in network.modules())


def _case(image, **kwargs) -> CaseInput:
    return CaseInput(case_id="bad-1", image=image, **kwargs)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((SIZE, SIZE, 3), dtype=np.uint16), r"one grayscale frame.*3 channels"),
        (np.zeros((4, SIZE, SIZE), dtype=np.uint16), r"one grayscale frame"),
        (np.zeros((16, 16), dtype=np.uint16), r"16x16 pixels; at least 32x32"),
        (np.full((SIZE, SIZE), np.nan, dtype=np.float32), r"NaN or infinite"),
    ],
)
def test_unreadable_images_are_refused_with_a_reason(trained, image, message):
    model, _ = trained
    with pytest.raises(ModelInputError, match=message):
        model.predict([_case(image)])


def test_other_sizes_long_text_and_missing_or_unknown_labs_are_handled(trained):
    model, _ = trained
    rng = np.random.default_rng(0)
    image = rng.integers(0, 4096, size=(300, 200)).astype(np.uint16)  # not square, not SIZE
    long_text = "persistent cough and fever " * 200
    labs = [
        LabValue("1988-5", None, 0.0, 5.0, "mg/L"),  # ordered, not measured
        LabValue("99999-9", 3.0, 0.0, 1.0, "U/L"),  # unknown to the model
    ]
    (prediction,) = model.predict(
        [_case(image, indication=long_text, labs=labs)],
        uncertainty=UncertaintyOptions(box_stability=False),
    )
    assert any("truncated to its first" in w for w in prediction.warnings)
    assert any("99999-9" in w for w in prediction.warnings)
    for box in prediction.boxes:
        assert box.x + box.width <= 200 + 1e-3 and box.y + box.height <= 300 + 1e-3
    (no_labs,) = model.predict([_case(image)], uncertainty=UncertaintyOptions(box_stability=False))
    assert set(no_labs.findings) == set(model.finding_classes)


def test_unknown_box_findings_in_training_data_are_refused(source):
    model = BuiltinModel(tiny_config())
    case = next(iter(source()))
    bad = dataclasses.replace(case, boxes=[dataclasses.replace(case.boxes[0], finding="tumour")])
    with pytest.raises(ModelInputError, match="'tumour' is not one of"):
        model.train(lambda: [bad] * 2, epochs=1)


def test_greedy_decoding_matches_generate_and_compute_transition_scores(trained):
    model, _ = trained
    network = model.network
    network.eval()
    memory = torch.randn(1, 9, model.config.report_hidden)
    mask = torch.ones(1, 9)
    tok = model.tokenizer
    tokens, logits, keep = greedy_decode(
        network, memory, mask, bos=tok.bos_token_id, eos=tok.eos_token_id, max_tokens=20
    )
    generated = network.decoder.generate(
        input_ids=torch.tensor([[tok.bos_token_id]]),
        attention_mask=torch.ones(1, 1, dtype=torch.long),
        encoder_hidden_states=memory,
        encoder_attention_mask=mask,
        max_new_tokens=20,
        do_sample=False,
        output_scores=True,
        return_dict_in_generate=True,
    )
    n = int(keep.sum())
    assert generated.sequences[0, 1 : 1 + n].tolist() == tokens[0, :n].tolist()
    transition = network.decoder.compute_transition_scores(
        generated.sequences, generated.scores, normalize_logits=True
    )
    ours = torch.log_softmax(logits, -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(ours[0, :n], transition[0, :n], atol=1e-4, rtol=1e-4)


def test_config_rejects_unknown_settings_and_an_imageless_model():
    with pytest.raises(ValueError, match="unknown built-in model settings: colour"):
        BuiltinConfig.from_dict({"colour": 1})
    with pytest.raises(ValueError, match="must include 'image'"):
        BuiltinConfig.from_dict({"modalities": ["text"]})


def test_untrained_model_says_so(tmp_path: Path):
    with pytest.raises(RuntimeError, match="not been trained"):
        BuiltinModel(tiny_config()).predict([])
