"""The ``local-checkpoint`` model kind on a tiny checkpoint the test builds itself: a WordPiece
tokenizer trained here, a one-layer BERT and a one-layer GPT-2 report model. No network: sockets
are blocked and ``HF_HUB_OFFLINE=1`` is set. Pure Python and torch: no Django, no database."""

from __future__ import annotations

import itertools
import random
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from tokenizers.trainers import WordPieceTrainer
from transformers import (
    BertConfig,
    BertModel,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
)

from active_learning.ml.checkpoints import load_model
from active_learning.ml.interface import (
    CaseInput,
    CheckpointError,
    LabelledCase,
    LabValue,
    ModelInputError,
    UncertaintyOptions,
)
from active_learning.ml.local_checkpoint import (
    LocalCheckpointModel,
    bald,
    case_text,
    is_calibration_case,
    lab_text,
    report_prompt,
)

CLASSES = ("effusion", "nodule", "pneumothorax")
MENTIONS = {
    "effusion": ["Pleural effusion suspected.", "Blunted angle, effusion likely."],
    "nodule": ["Follow up of a lung nodule.", "Nodule seen on prior CT."],
    "pneumothorax": ["Sudden chest pain, pneumothorax?", "Stab wound, pneumothorax."],
}
FILLERS = [
    "Cough and fever for three days.",
    "Shortness of breath on exertion.",
    "Routine preoperative chest film.",
    "Smoker for forty years.",
    "Known heart failure.",
    "No significant past medical history.",
]
CRP_NAME = "C reactive protein [Mass/volume] in Serum or Plasma"
REPORT = "Small left pleural effusion. No pneumothorax."
FAST = {"batch_size": 8, "learning_rate": 3e-3, "report_max_new_tokens": 16}


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """One torch thread: these models are tiny, and on a busy 2-core machine two threads wait
    for each other (a training step takes 100 times longer)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hub offline mode, and any network connection fails the test."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _save_tokenizer(directory: Path, **special: str) -> PreTrainedTokenizerFast:
    corpus = [*FILLERS, *(s for texts in MENTIONS.values() for s in texts)]
    corpus += ["Labs: C reactive protein 266.6 mg/L high (0-5); Leukocytes not measured."]
    corpus += ["Clinical information: none. Suggested findings: effusion, nodule. Report:"]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer.train_from_iterator(
        corpus * 3, WordPieceTrainer(vocab_size=300, special_tokens=specials)
    )
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tokenizer.decoder = decoders.WordPiece()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        **special,
    )
    fast.save_pretrained(directory)
    return fast


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``plain``: tokenizer + BERT encoder; ``with_report``: the same plus ``report/`` GPT-2."""
    root = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    plain = root / "plain"
    tokenizer = _save_tokenizer(plain)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(plain)
    with_report = root / "with_report"
    shutil.copytree(plain, with_report)
    report_tokenizer = _save_tokenizer(with_report / "report", bos_token="[CLS]", eos_token="[SEP]")
    gpt = GPT2Config(
        vocab_size=len(report_tokenizer),
        n_positions=128,
        n_embd=32,
        n_layer=1,
        n_head=2,
        bos_token_id=report_tokenizer.cls_token_id,
        eos_token_id=report_tokenizer.sep_token_id,
        pad_token_id=report_tokenizer.pad_token_id,
    )
    report_model = GPT2LMHeadModel(gpt)
    _teach_report(report_model, report_tokenizer)
    report_model.save_pretrained(with_report / "report")
    return {"plain": plain, "with_report": with_report}


def _teach_report(model: GPT2LMHeadModel, tokenizer: PreTrainedTokenizerFast) -> None:
    """A few steps so that the report model writes :data:`REPORT` (then its end token) after any
    prompt, as :meth:`LocalCheckpointModel.predict` builds them."""
    # Every case text with every set of suggested findings: whatever the (untrained) classifier
    # predicts at test time, the prompt is one the report model has seen.
    subsets = [
        {name: 0.9 for name in combo}
        for size in range(len(CLASSES) + 1)
        for combo in itertools.combinations(CLASSES, size)
    ]
    prompts = [
        report_prompt(case_text(case), findings)
        for case in _labelled_cases(8)
        for findings in subsets
    ]
    answer = tokenizer(REPORT, add_special_tokens=False)["input_ids"] + [tokenizer.sep_token_id]
    prompt_ids = [tokenizer(prompt)["input_ids"] for prompt in prompts]
    rows = [row + answer for row in prompt_ids]
    width = max(len(row) for row in rows)
    ids = torch.tensor([row + [tokenizer.pad_token_id] * (width - len(row)) for row in rows])
    mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in rows])
    # The loss is on the answer and its end token only, and training goes on until it is
    # learnt (a fixed step count was not always enough: the tokenizer's vocabulary, trained in
    # parallel, can differ between runs).
    answer_only = torch.tensor(
        [
            [0] * len(p) + [1] * len(answer) + [0] * (width - len(p) - len(answer))
            for p in prompt_ids
        ]
    )
    labels = ids.masked_fill(answer_only == 0, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for step in range(400):
        optimizer.zero_grad()
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        if step >= 60 and loss.item() < 0.01:
            break
    model.eval()


def _case(case_id: str, text: str, **kwargs: Any) -> LabelledCase:
    """A case whose image is blank: this model kind ignores images."""
    return LabelledCase(case_id=case_id, image=np.zeros((8, 8)), indication=text, **kwargs)


def _labelled_cases(n: int, seed: int = 0) -> list[LabelledCase]:
    """Cases whose text determines the findings: a class is present iff it is mentioned."""
    rng = random.Random(seed)
    cases = []
    for index in range(n):
        present = {name: rng.random() < 0.4 for name in CLASSES}
        parts = [rng.choice(FILLERS)]
        parts += [rng.choice(MENTIONS[name]) for name in CLASSES if present[name]]
        rng.shuffle(parts)
        findings: dict[str, bool | None] = dict(present)
        if index % 5 == 0:
            findings["nodule"] = None  # not read: masked out of the loss
        cases.append(_case(f"case-{index}", " ".join(parts), findings=findings))
    return cases


def _probabilities(predictions: list) -> np.ndarray:
    return np.array([[p.findings[name] for name in CLASSES] for p in predictions])


def test_lab_text_and_case_text_write_values_flags_ranges_and_missing_values() -> None:
    crp = LabValue("1988-5", 266.6, 0.0, 5.0, "mg/L", CRP_NAME)
    assert lab_text(crp) == "C reactive protein 266.6 mg/L high (0-5)"
    assert lab_text(LabValue("718-7", 13.1, 12.0, None, "g/dL")) == "718-7 13.1 g/dL normal (>12)"
    assert lab_text(LabValue("1988-5", None, 0.0, 5.0, "mg/L", CRP_NAME)).endswith("not measured")
    assert lab_text(LabValue("x", float("nan"), name="Lactate")) == "Lactate not measured"
    case = _case("c", "Fever.", history="Smoker.", labs=[crp, LabValue("6690-2", None)])
    assert case_text(case) == (
        "Fever. Smoker. Labs: C reactive protein 266.6 mg/L high (0-5); 6690-2 not measured."
    )


def test_predictions_have_the_documented_shapes_and_ranges(checkpoints: dict[str, Path]) -> None:
    model = LocalCheckpointModel.from_directory(checkpoints["plain"], CLASSES, **FAST)
    cases = _labelled_cases(11)
    cases.append(_case("missing-labs", "", labs=[LabValue("1988-5", None, 0, 5, "mg/L", CRP_NAME)]))
    cases.append(_case("long", "Pleural effusion suspected. " * 60))
    predictions = model.predict(cases)

    assert [p.case_id for p in predictions] == [c.case_id for c in cases]
    for prediction in predictions:
        assert set(prediction.findings) == set(CLASSES) == set(prediction.finding_uncertainty)
        assert all(0.0 <= value <= 1.0 for value in prediction.findings.values())
        assert all(0.0 <= u <= np.log(2) + 1e-9 for u in prediction.finding_uncertainty.values())
        assert 0.0 <= prediction.case_score <= 1.0
        assert prediction.boxes == []
        assert prediction.report == {} and prediction.report_uncertainty == {}
        assert any("no report model" in warning for warning in prediction.warnings)
        suggestion = prediction.as_suggestion()
        assert suggestion["boxes"] == [] and set(suggestion["finding_probabilities"]) == set(
            CLASSES
        )
    truncated = [p.case_id for p in predictions if any("truncated" in w for w in p.warnings)]
    assert truncated == ["long"]
    assert model.token_limit == 128  # max_length 256 lowered to the 128 position embeddings

    # padding does not change a case's prediction: alone or in a padded batch, the same
    alone = model.predict([cases[3]])
    np.testing.assert_allclose(_probabilities(alone), _probabilities(predictions[3:4]), atol=1e-5)

    embeddings = model.embed(cases)
    assert embeddings.shape == (len(cases), 32) and embeddings.dtype == np.float32
    assert np.isfinite(embeddings).all()
    assert model.embed([]).shape == (0, 32)


def test_mc_dropout_bald_is_non_negative_and_reproducible(checkpoints: dict[str, Path]) -> None:
    model = LocalCheckpointModel.from_directory(checkpoints["plain"], CLASSES, **FAST)
    cases = _labelled_cases(6)
    options = UncertaintyOptions(mc_samples=5)
    first, second = (
        model.predict(cases, uncertainty=options),
        model.predict(cases, uncertainty=options),
    )
    values = np.array([[p.finding_uncertainty[name] for name in CLASSES] for p in first])
    assert (values >= 0).all() and values.max() > 0  # dropout makes the passes differ
    assert values.max() <= np.log(2)
    again = np.array([[p.finding_uncertainty[name] for name in CLASSES] for p in second])
    np.testing.assert_array_equal(values, again)
    # the probabilities are those of the deterministic pass, and the model is back in eval mode
    np.testing.assert_array_equal(_probabilities(first), _probabilities(model.predict(cases)))
    assert not model.classifier.training
    # BALD: the disagreeing column gives H(0.5) - H(0.2); the agreeing one none.
    entropy_02 = -(0.2 * np.log(0.2) + 0.8 * np.log(0.8))
    np.testing.assert_allclose(
        bald(np.array([[0.2, 0.9], [0.8, 0.9]])), [np.log(2) - entropy_02, 0.0], atol=1e-12
    )


def test_training_lowers_the_loss_and_fits_a_temperature(checkpoints: dict[str, Path]) -> None:
    model = LocalCheckpointModel.from_directory(checkpoints["plain"], CLASSES, **FAST)
    cases = _labelled_cases(120)
    passes = []

    def source() -> Iterator[LabelledCase]:
        passes.append(1)
        yield from cases  # a generator: training must stream it

    messages: list[tuple[str, float]] = []
    report = model.train(source, epochs=20, progress=lambda m, f: messages.append((m, f)))

    held_out = sum(is_calibration_case(c.case_id) for c in cases)
    assert 0 < held_out < len(cases)
    assert len(passes) == 20  # one pass of the source per epoch
    assert report.calibration_cases == held_out
    assert report.cases_seen == 20 * (len(cases) - held_out)
    assert report.steps == len(report.losses) == len(report.loss_parts) > 10
    first, last = np.mean(report.losses[:4]), np.mean(report.losses[-4:])
    assert last < 0.6 * first, report.losses
    assert report.temperature == model.temperature != 1.0
    assert 0.05 <= report.temperature <= 20 and report.seconds > 0
    assert messages[-1] == ("epoch 20/20 done", 1.0)

    # the text determines the findings and the model has learnt it (on the whole: a tiny BERT
    # from scratch learns some classes much faster than others, depending on its tokenizer)
    test = _labelled_cases(40, seed=1)
    probabilities = _probabilities(model.predict(test))
    gaps = []
    for k, name in enumerate(CLASSES):
        present = np.array([bool(case.findings[name]) for case in test])
        gaps.append(probabilities[present, k].mean() - probabilities[~present, k].mean())
    assert np.mean(gaps) > 0.2, gaps


def test_max_steps_and_unlabelled_cases(checkpoints: dict[str, Path]) -> None:
    model = LocalCheckpointModel.from_directory(checkpoints["plain"], CLASSES, **FAST)
    cases = _labelled_cases(40)
    report = model.train(lambda: iter(cases), epochs=5, max_steps=3)
    assert report.steps == 3
    unlabelled = [_case(f"u{i}", "Cough.", findings={"effusion": None}) for i in range(20)]
    report = model.train(lambda: iter(unlabelled))
    assert report.steps == 0 and report.temperature == 1.0 and report.calibration_cases == 0
    not_labelled = CaseInput(case_id="x", image=np.zeros((8, 8)), indication="Cough.")
    with pytest.raises(ModelInputError, match="'x' has no findings"):
        model.train(lambda: iter([not_labelled]))  # type: ignore[list-item]


def test_save_then_load_gives_identical_predictions(
    checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    model = LocalCheckpointModel.from_directory(checkpoints["with_report"], CLASSES, **FAST)
    model.train(lambda: iter(_labelled_cases(40)), max_steps=2)
    manifest = model.save(tmp_path / "v1")
    assert manifest["kind"] == "local-checkpoint" and manifest["finding_classes"] == list(CLASSES)
    assert {"config.json", "classifier/config.json", "report/config.json"} <= set(manifest["files"])

    loaded = load_model(tmp_path / "v1")
    assert isinstance(loaded, LocalCheckpointModel)
    assert loaded.temperature == model.temperature and loaded.finding_classes == CLASSES
    cases = _labelled_cases(9, seed=3)
    options = UncertaintyOptions(mc_samples=3)
    before, after = (
        model.predict(cases, uncertainty=options),
        loaded.predict(cases, uncertainty=options),
    )
    np.testing.assert_allclose(_probabilities(before), _probabilities(after), atol=1e-6)
    for old, new in zip(before, after, strict=True):
        assert old.report == new.report
        for name in CLASSES:
            assert abs(old.finding_uncertainty[name] - new.finding_uncertainty[name]) < 1e-6
        assert old.report_uncertainty == pytest.approx(new.report_uncertainty, abs=1e-5)
    np.testing.assert_allclose(model.embed(cases), loaded.embed(cases), atol=1e-6)

    # warm start from the saved version: same weights before any step
    fresh = LocalCheckpointModel.from_directory(checkpoints["plain"], CLASSES, **FAST)
    assert not np.allclose(fresh.embed(cases), model.embed(cases), atol=1e-6)
    fresh.train(lambda: iter(cases), max_steps=0, warm_start=tmp_path / "v1")
    np.testing.assert_allclose(fresh.embed(cases), model.embed(cases), atol=1e-6)


def test_report_model_drafts_with_token_uncertainty(checkpoints: dict[str, Path]) -> None:
    model = LocalCheckpointModel.from_directory(checkpoints["with_report"], CLASSES, **FAST)
    cases = _labelled_cases(3)
    predictions = model.predict(cases, uncertainty=UncertaintyOptions(mc_report_drafts=2))
    for prediction in predictions:
        assert prediction.report == {"findings": REPORT.lower()}  # the tokenizer lower-cases
        assert not prediction.warnings
        uncertainty = prediction.report_uncertainty
        assert set(uncertainty) == {"mean_token_entropy", "nll", "mc_disagreement"}
        assert 0 <= uncertainty["nll"] < 0.5 and 0 <= uncertainty["mean_token_entropy"] < 1.0
        assert 0.0 <= uncertainty["mc_disagreement"] <= 1.0
        sentences = [
            (s.section, s.text, s.findings, s.box_index) for s in prediction.report_sentences
        ]
        assert sentences == [
            ("findings", "small left pleural effusion.", ["effusion"], None),
            ("findings", "no pneumothorax.", [], None),
        ]
        assert prediction.as_suggestion()["report_draft"] == prediction.report
    assert not model.report_model.training


def test_tampered_weights_are_refused(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    model = LocalCheckpointModel.from_directory(checkpoints["plain"], CLASSES, **FAST)
    model.save(tmp_path / "v1")
    weights = tmp_path / "v1" / "classifier" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match its checksum"):
        load_model(tmp_path / "v1")
    with pytest.raises(CheckpointError, match="does not match its checksum"):
        model.train(lambda: iter(()), warm_start=tmp_path / "v1")


def test_missing_or_incomplete_directories_give_clear_errors(
    checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-checkpoint"
    with pytest.raises(CheckpointError, match=r"no-such-checkpoint does not exist"):
        LocalCheckpointModel.from_directory(missing, CLASSES)
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(checkpoints["plain"] / "config.json", partial)
    with pytest.raises(CheckpointError, match=r"partial lacks weights .*; tokenizer files"):
        LocalCheckpointModel.from_directory(partial, CLASSES)
    with pytest.raises(CheckpointError, match=r"manifest\.json is missing"):
        load_model(checkpoints["plain"])  # a raw checkpoint is not a saved version
