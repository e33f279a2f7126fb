"""The built-in model's text path alone: clinical text (and stated findings) -> report draft.

The same parts as in :class:`~active_learning.ml.builtin.network.MultimodalNetwork` (the
project-trained byte-level BPE tokenizer, a small BERT encoder, a GPT-2 decoder cross-attending
to the encoder's token states), trained and decoded the same way (teacher forcing; greedy
decoding with a key/value cache). Used for the real-text benchmark on the Indiana University
reports, where there is no image: the source is INDICATION plus the MeSH finding tags.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import BertConfig, BertModel, GPT2Config, GPT2LMHeadModel

from active_learning.ml.builtin.inference import greedy_decode
from active_learning.ml.builtin.preprocess import train_tokenizer


@dataclass
class DrafterConfig:
    vocab_size: int = 3000
    source_max_tokens: int = 64
    target_max_tokens: int = 128
    hidden: int = 192
    encoder_layers: int = 2
    decoder_layers: int = 3
    heads: int = 4
    dropout: float = 0.1
    batch_size: int = 32
    learning_rate: float = 1e-3
    epochs: int = 20
    seed: int = 0


class _Seq2Seq(nn.Module):
    def __init__(self, config: DrafterConfig, vocab: int, pad: int, bos: int, eos: int) -> None:
        super().__init__()
        self.encoder = BertModel(
            BertConfig(
                vocab_size=vocab,
                hidden_size=config.hidden,
                num_hidden_layers=config.encoder_layers,
                num_attention_heads=config.heads,
                intermediate_size=4 * config.hidden,
                max_position_embeddings=config.source_max_tokens + 2,
                type_vocab_size=1,
                pad_token_id=pad,
                hidden_dropout_prob=config.dropout,
                attention_probs_dropout_prob=config.dropout,
            ),
            add_pooling_layer=False,
        )
        self.decoder = GPT2LMHeadModel(
            GPT2Config(
                vocab_size=vocab,
                n_positions=config.target_max_tokens + 2,
                n_embd=config.hidden,
                n_layer=config.decoder_layers,
                n_head=config.heads,
                add_cross_attention=True,
                bos_token_id=bos,
                eos_token_id=eos,
                pad_token_id=pad,
                resid_pdrop=config.dropout,
                embd_pdrop=config.dropout,
                attn_pdrop=config.dropout,
            )
        )


class ReportDrafter:
    """Fit on (source, target) text pairs; :meth:`draft` greedy drafts for sources."""

    def __init__(self, config: DrafterConfig | None = None) -> None:
        self.config = config or DrafterConfig()
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer: Any = None
        self.network: _Seq2Seq | None = None
        self.epoch_seconds: list[float] = []
        self.epoch_losses: list[float] = []

    def fit(self, sources: Sequence[str], targets: Sequence[str]) -> ReportDrafter:
        config = self.config
        torch.manual_seed(config.seed)
        rng = random.Random(config.seed)
        self.tokenizer = tok = train_tokenizer(
            (text for pair in zip(sources, targets, strict=True) for text in pair),
            config.vocab_size,
        )
        self.network = net = _Seq2Seq(
            config, len(tok), tok.pad_token_id, tok.bos_token_id, tok.eos_token_id
        ).to(self.device)
        optimizer = torch.optim.AdamW(net.parameters(), lr=config.learning_rate)
        steps_per_epoch = max(1, -(-len(sources) // config.batch_size))
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, config.learning_rate, total_steps=steps_per_epoch * config.epochs
        )
        order = list(range(len(sources)))
        for _ in range(config.epochs):
            started, total = time.perf_counter(), 0.0
            rng.shuffle(order)
            net.train()
            for start in range(0, len(order), config.batch_size):
                index = order[start : start + config.batch_size]
                loss = self._loss([sources[i] for i in index], [targets[i] for i in index])
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                total += float(loss.detach())
            self.epoch_seconds.append(time.perf_counter() - started)
            self.epoch_losses.append(total / steps_per_epoch)
        return self

    def _encode(self, sources: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        assert self.tokenizer is not None and self.network is not None
        encoded = self.tokenizer(
            list(sources),
            add_special_tokens=False,
            truncation=True,
            max_length=self.config.source_max_tokens,
            padding=True,
            return_tensors="pt",
        ).to(self.device)
        states = self.network.encoder(**encoded).last_hidden_state
        return states, encoded["attention_mask"]

    def _loss(self, sources: Sequence[str], targets: Sequence[str]) -> torch.Tensor:
        assert self.tokenizer is not None and self.network is not None
        tok = self.tokenizer
        memory, memory_mask = self._encode(sources)
        encoded = tok(
            [f"{tok.bos_token}{t}{tok.eos_token}" for t in targets],
            add_special_tokens=False,
            truncation=True,
            max_length=self.config.target_max_tokens,
            padding=True,
            return_tensors="pt",
        ).to(self.device)
        labels = encoded["input_ids"].masked_fill(encoded["attention_mask"] == 0, -100)
        return self.network.decoder(
            input_ids=encoded["input_ids"],
            attention_mask=encoded["attention_mask"],
            encoder_hidden_states=memory,
            encoder_attention_mask=memory_mask,
            labels=labels,
        ).loss

    @torch.no_grad()
    def draft(self, sources: Sequence[str], batch_size: int = 64) -> list[str]:
        assert self.tokenizer is not None and self.network is not None
        tok = self.tokenizer
        self.network.eval()
        drafts: list[str] = []
        for start in range(0, len(sources), batch_size):
            memory, mask = self._encode(sources[start : start + batch_size])
            tokens, _, keep = greedy_decode(
                self.network,  # type: ignore[arg-type]
                memory,
                mask,
                bos=tok.bos_token_id,
                eos=tok.eos_token_id,
                max_tokens=self.config.target_max_tokens,
            )
            for row, flags in zip(tokens.tolist(), keep.tolist(), strict=True):
                ids = [t for t, k in zip(row, flags, strict=True) if k and t != tok.eos_token_id]
                drafts.append(" ".join(tok.decode(ids, skip_special_tokens=True).split()))
        return drafts
