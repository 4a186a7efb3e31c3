"""The Transformer encoder-decoder of "Attention Is All You Need" (Vaswani et al. 2017), for the
``seq2seq`` task, with the encoder's and the decoder's self-attention each swappable for an LSTM.

Each encoder block mixes the source (self-attention, or a bidirectional LSTM) and passes it
through a ReLU feed-forward layer; each decoder block mixes the target so far (causal
self-attention, or a left-to-right LSTM), attends to the encoder's output, and passes it through
its feed-forward layer. Residuals and LayerNorm around every sub-layer: after it (``post``, the
paper's) or before it (``pre``, with a final LayerNorm per stack, which trains without warmup).
``encoder=lstm`` or ``decoder=lstm`` replaces only the self-attention sub-layer and keeps the
rest of the block, as Domhan ("How Much Attention Do You Need?", 2018) swaps self-attention for
recurrence in the encoder and in the decoder separately; the decoder always keeps its attention
over the source.

Embeddings are scaled by sqrt(n_embd) and added to the paper's sinusoidal positions (or learned
ones); ``pos_encoding`` rope or alibi puts relative positions inside self-attention instead, and
none leaves them out, for SCAN's length split (Csordás et al. 2021). The output
layer shares the target embedding (``tie_output``), and with ``share_embeddings`` the source
embedding too (one vocabulary for both, as the paper's 37k shared BPE vocabulary).

Decoding: ``encode`` reads the source once; ``decode_step`` continues from a state holding, per
decoder layer, the keys and values of the target so far (or the LSTM's ``(h, c)``) and the
keys and values of the source, computed at the first step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from zoo_transformer.model import alibi_slopes, apply_rope, rope_angles, sinusoidal_table

Mixer = Literal["attention", "lstm"]
PosEncoding = Literal["sinusoidal", "learned", "rope", "alibi", "none"]
Rope = tuple[torch.Tensor, torch.Tensor] | None  # cos and sin of the positions, (T, hd/2) each
POS_ENCODINGS = ("sinusoidal", "learned", "rope", "alibi", "none")


@dataclass
class Seq2SeqConfig:
    source_vocab_size: int = 256  # set from the source tokenizer by the task
    target_vocab_size: int = 256  # set from the target tokenizer by the task
    encoder_layers: int = 2
    decoder_layers: int = 2
    n_embd: int = 128  # model width (d_model); must divide by n_head
    n_head: int = 4
    ffn: int = 512  # inner width of the feed-forward layers (d_ff)
    dropout: float = 0.1  # on sub-layer outputs, attention weights and embeddings
    norm: Literal["post", "pre"] = "pre"  # LayerNorm after each residual (the paper's) or before
    encoder: Mixer = "attention"  # what mixes the source: self-attention or a bidirectional LSTM
    decoder: Mixer = "attention"  # what mixes the target: causal self-attention or an LSTM
    share_embeddings: bool = False  # source, target and output share one matrix (one vocabulary)
    tie_output: bool = True  # the output layer shares the target embedding
    # Positions: added to the embeddings (sinusoidal, the paper's; learned, up to max_positions)
    # or relative, inside self-attention (rope rotates queries and keys; alibi adds a per-head
    # penalty on distance); none: no positions but what an LSTM mixer or causality gives.
    # Attention over the source never adds positions of its own.
    pos_encoding: PosEncoding = "sinusoidal"
    max_positions: int = 512  # the longest source or target with learned positions
    rope_base: float = 10000.0

    def __post_init__(self):
        sizes = (self.encoder_layers, self.decoder_layers, self.n_embd, self.n_head, self.ffn)
        if min(*sizes, self.source_vocab_size, self.target_vocab_size) < 1:
            raise ValueError(
                "the layers, n_embd, n_head, ffn and the vocabulary sizes must be positive"
            )
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} is not divisible by n_head {self.n_head}")
        if self.encoder == "lstm" and self.n_embd % 2:
            raise ValueError(
                "encoder=lstm reads both ways with n_embd / 2 each: use an even n_embd"
            )
        for key in ("encoder", "decoder"):
            if getattr(self, key) not in ("attention", "lstm"):
                raise ValueError(f"unknown {key} {getattr(self, key)!r}; use attention or lstm")
        if self.pos_encoding not in POS_ENCODINGS:
            raise ValueError(
                f"unknown pos_encoding {self.pos_encoding!r}; use one of {', '.join(POS_ENCODINGS)}"
            )
        if self.pos_encoding == "rope" and (self.n_embd // self.n_head) % 2:
            raise ValueError("pos_encoding rope needs an even head size (n_embd / n_head)")
        if self.max_positions < 1:
            raise ValueError("max_positions must be positive")
        if self.norm not in ("post", "pre"):
            raise ValueError(f"unknown norm {self.norm!r}; use post or pre")
        if not 0 <= self.dropout < 1:
            raise ValueError("dropout must be in [0, 1)")
        if self.share_embeddings and self.source_vocab_size != self.target_vocab_size:
            raise ValueError(
                f"share_embeddings needs one vocabulary, not {self.source_vocab_size} source and "
                f"{self.target_vocab_size} target tokens; train with share_vocab=true"
            )


class Attention(nn.Module):
    """Multi-head attention of queries over keys and values through
    ``scaled_dot_product_attention``; keys and values may be given already projected."""

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        self.n_head = config.n_head
        self.q = nn.Linear(config.n_embd, config.n_embd)
        self.kv = nn.Linear(config.n_embd, 2 * config.n_embd)
        self.proj = nn.Linear(config.n_embd, config.n_embd)
        self.dropout = config.dropout

    def heads(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        return x.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, H, T, hd)

    def keys_values(self, x: torch.Tensor, rope: Rope = None) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = self.kv(x).chunk(2, dim=-1)  # (B, T, C) each
        k = self.heads(k)  # (B, H, T, hd)
        return (k if rope is None else apply_rope(k, *rope)), self.heads(v)

    def forward(
        self,
        x: torch.Tensor,
        kv: tuple[torch.Tensor, torch.Tensor],
        mask: torch.Tensor | None = None,
        is_causal: bool = False,
        rope: Rope = None,
    ) -> torch.Tensor:
        B, T, C = x.shape
        q = self.heads(self.q(x))  # (B, H, T, hd)
        if mask is not None and mask.is_floating_point():
            mask = mask.to(q.dtype)
        y = F.scaled_dot_product_attention(
            q if rope is None else apply_rope(q, *rope),
            *kv,
            attn_mask=mask,
            is_causal=is_causal,
            dropout_p=self.dropout if self.training else 0.0,
        )  # (B, H, T, hd)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))  # (B, T, C)


class FeedForward(nn.Module):
    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        self.fc = nn.Linear(config.n_embd, config.ffn)
        self.proj = nn.Linear(config.ffn, config.n_embd)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.drop(F.relu(self.fc(x))))  # (B, T, C)


class _Residual(nn.Module):
    """One sub-layer with its residual and LayerNorm, after it (post) or before it (pre)."""

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        self.ln = nn.LayerNorm(config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.pre = config.norm == "pre"

    def forward(self, x: torch.Tensor, sublayer) -> tuple[torch.Tensor, Any]:
        y, extra = sublayer(self.ln(x) if self.pre else x)
        x = x + self.drop(y)
        return (x if self.pre else self.ln(x)), extra


class EncoderBlock(nn.Module):
    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        self.lstm = config.encoder == "lstm"
        if self.lstm:  # both directions, n_embd / 2 each, concatenated
            self.mix = nn.LSTM(
                config.n_embd, config.n_embd // 2, batch_first=True, bidirectional=True
            )
        else:
            self.mix = Attention(config)
        self.ffn = FeedForward(config)
        self.res_mix = _Residual(config)
        self.res_ffn = _Residual(config)

    def _mix(
        self, x: torch.Tensor, mask: torch.Tensor, keys: torch.Tensor, rope: Rope
    ) -> tuple[torch.Tensor, None]:
        if self.lstm:  # packed, so that the backward direction starts at the last real token
            lengths = mask.sum(dim=1).cpu()
            packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            y, _ = self.mix(packed)
            y, _ = pad_packed_sequence(y, batch_first=True, total_length=x.size(1))
            return y, None  # (B, S, C)
        return self.mix(x, self.mix.keys_values(x, rope), keys, rope=rope), None

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, keys: torch.Tensor, rope: Rope = None
    ) -> torch.Tensor:
        """``keys``: what each source token may attend to, (B, 1, 1, S) booleans, or an additive
        bias (B, H, S, S) with ALiBi."""
        x, _ = self.res_mix(x, lambda h: self._mix(h, mask, keys, rope))
        x, _ = self.res_ffn(x, lambda h: (self.ffn(h), None))
        return x  # (B, S, C)


class DecoderBlock(nn.Module):
    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        self.lstm = config.decoder == "lstm"
        self.mix = (
            nn.LSTM(config.n_embd, config.n_embd, batch_first=True)
            if self.lstm
            else (Attention(config))
        )
        self.cross = Attention(config)
        self.ffn = FeedForward(config)
        self.res_mix = _Residual(config)
        self.res_cross = _Residual(config)
        self.res_ffn = _Residual(config)

    def _mix(
        self, x: torch.Tensor, cache: Any, offset: int, bias: torch.Tensor | None, rope: Rope
    ) -> tuple[torch.Tensor, Any]:
        if self.lstm:  # the state batch first: (h, c) each (B, 1, C)
            state = None if cache is None else tuple(s.transpose(0, 1).contiguous() for s in cache)
            y, (h, c) = self.mix(x, state)
            return y, (h.transpose(0, 1), c.transpose(0, 1))
        k, v = self.mix.keys_values(x, rope)  # (B, H, T, hd); keys rotated by their positions
        if cache is not None:
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        T = x.size(1)
        if bias is not None:  # ALiBi: the causal mask is in the bias
            return self.mix(x, (k, v), bias, rope=rope), (k, v)
        if offset == 0:
            return self.mix(x, (k, v), is_causal=T > 1, rope=rope), (k, v)
        # T new tokens after `offset` cached ones: each sees the cache and itself and before.
        q_pos = torch.arange(offset, offset + T, device=x.device)
        mask = None if T == 1 else q_pos[:, None] >= torch.arange(offset + T, device=x.device)
        return self.mix(x, (k, v), mask, rope=rope), (k, v)

    def forward(
        self,
        x: torch.Tensor,
        memory_kv: tuple[torch.Tensor, torch.Tensor],
        source_mask: torch.Tensor,
        cache: Any = None,
        offset: int = 0,
        bias: torch.Tensor | None = None,
        rope: Rope = None,
    ) -> tuple[torch.Tensor, Any]:
        """``bias``: ALiBi's (1, H, T, offset + T), causal mask included; ``rope``: the new
        tokens' angles."""
        x, cache = self.res_mix(x, lambda h: self._mix(h, cache, offset, bias, rope))
        keys = source_mask[:, None, None, :]  # (B, 1, 1, S)
        x, _ = self.res_cross(x, lambda h: (self.cross(h, memory_kv, keys), None))
        x, _ = self.res_ffn(x, lambda h: (self.ffn(h), None))
        return x, cache  # (B, T, C)


class TransformerSeq2Seq(nn.Module):
    """Source ids (B, S) and target ids (B, T) -> logits of the next target token (B, T, V)."""

    config_class = Seq2SeqConfig
    # Small sizes for the contract tests (zoo_core.testing), applied over any variant.
    test_overrides = {
        "encoder_layers": 2,
        "decoder_layers": 2,
        "n_embd": 16,
        "n_head": 2,
        "ffn": 32,
    }

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        self.config = config
        C = config.n_embd
        self.target_embed = nn.Embedding(config.target_vocab_size, C, padding_idx=0)
        if config.share_embeddings:
            self.source_embed = self.target_embed
        else:
            self.source_embed = nn.Embedding(config.source_vocab_size, C, padding_idx=0)
        self.drop = nn.Dropout(config.dropout)
        if config.pos_encoding == "learned":  # one table for the source and the target
            self.positions = nn.Embedding(config.max_positions, C)
            nn.init.normal_(self.positions.weight, mean=0.0, std=0.02)
        if config.pos_encoding == "alibi":
            self.register_buffer("slopes", alibi_slopes(config.n_head), persistent=False)
        self.encoder = nn.ModuleList(EncoderBlock(config) for _ in range(config.encoder_layers))
        self.decoder = nn.ModuleList(DecoderBlock(config) for _ in range(config.decoder_layers))
        pre = config.norm == "pre"  # a pre-LayerNorm stack ends with a LayerNorm of its own
        self.encoder_ln = nn.LayerNorm(C) if pre else nn.Identity()
        self.decoder_ln = nn.LayerNorm(C) if pre else nn.Identity()
        self.head = nn.Linear(C, config.target_vocab_size, bias=False)
        if config.tie_output or config.share_embeddings:
            self.head.weight = self.target_embed.weight
        for embed in {id(e): e for e in (self.source_embed, self.target_embed)}.values():
            nn.init.normal_(embed.weight, mean=0.0, std=C**-0.5)
            with torch.no_grad():
                embed.weight[0].zero_()

    def _embed(self, embed: nn.Embedding, ids: torch.Tensor, offset: int = 0) -> torch.Tensor:
        x = embed(ids) * math.sqrt(self.config.n_embd)  # (B, T, C)
        encoding = self.config.pos_encoding
        if encoding in ("sinusoidal", "learned"):
            positions = torch.arange(offset, offset + ids.size(1), device=ids.device)
            if encoding == "sinusoidal":
                x = x + sinusoidal_table(positions, self.config.n_embd).to(x.dtype)
            else:
                if offset + ids.size(1) > self.config.max_positions:
                    raise ValueError(
                        f"a sequence of {offset + ids.size(1)} tokens is longer than the "
                        f"{self.config.max_positions} learned positions; use pos_encoding "
                        "sinusoidal, rope, alibi or none to read longer ones"
                    )
                x = x + self.positions(positions)
        return self.drop(x)

    def _rope(self, start: int, length: int, device: torch.device) -> Rope:
        if self.config.pos_encoding != "rope":
            return None
        positions = torch.arange(start, start + length, device=device)
        return rope_angles(
            positions, self.config.n_embd // self.config.n_head, self.config.rope_base
        )

    def encode(self, source: torch.Tensor, source_mask: torch.Tensor) -> torch.Tensor:
        """The encoder's output (B, S, C) for source ids (B, S), padding masked out."""
        x = self._embed(self.source_embed, source)
        S = source.size(1)
        keys = source_mask[:, None, None, :]  # (B, 1, 1, S): padding is never attended to
        if self.config.pos_encoding == "alibi":  # both ways: a penalty on |distance|
            positions = torch.arange(S, device=source.device)
            distance = (positions[:, None] - positions[None, :]).abs()  # (S, S)
            bias = -self.slopes[:, None, None] * distance  # (H, S, S)
            keys = bias[None].masked_fill(~keys, float("-inf"))  # (B, H, S, S)
        rope = self._rope(0, S, source.device)
        for block in self.encoder:
            x = block(x, source_mask, keys, rope)
        return self.encoder_ln(x)  # (B, S, C)

    def _alibi(self, offset: int, T: int, device: torch.device) -> torch.Tensor | None:
        """ALiBi's causal bias of T new target tokens after ``offset``: (1, H, T, offset + T)."""
        if self.config.pos_encoding != "alibi":
            return None
        q_pos = torch.arange(offset, offset + T, device=device)
        distance = q_pos[:, None] - torch.arange(offset + T, device=device)[None, :]  # (T, T_k)
        bias = -self.slopes[:, None, None] * distance.clamp(min=0)  # (H, T, T_k)
        return bias.masked_fill(distance < 0, float("-inf"))[None]

    def decode_step(
        self,
        target: torch.Tensor,
        memory: torch.Tensor,
        source_mask: torch.Tensor,
        state: dict[str, Any] | None = None,
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """Logits (B, T, V) of target ids (B, T) after the tokens ``state`` holds (None to
        start), and the state grown by them."""
        if state is None:  # the source's keys and values, once per layer
            cross = [block.cross.keys_values(memory) for block in self.decoder]
            state = {"seen": 0, "cross": cross, "self": [None] * len(self.decoder)}
        seen, T = state["seen"], target.size(1)
        x = self._embed(self.target_embed, target, seen)
        bias, rope = self._alibi(seen, T, x.device), self._rope(seen, T, x.device)
        caches = []
        for block, kv, cache in zip(self.decoder, state["cross"], state["self"], strict=True):
            x, cache = block(x, kv, source_mask, cache, seen, bias, rope)
            caches.append(cache)
        logits = self.head(self.decoder_ln(x))  # (B, T, V)
        return logits, {
            "seen": state["seen"] + target.size(1),
            "cross": state["cross"],
            "self": caches,
        }

    def forward(
        self, source: torch.Tensor, source_mask: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        """Teacher forcing: logits (B, T, V) of the next target token at every position."""
        memory = self.encode(source, source_mask)
        return self.decode_step(target, memory, source_mask)[0]
