"""Transformers: a GPT-style decoder for language modelling and a bidirectional encoder for
sequence classification, sharing one block (pre-LayerNorm attention and GELU MLP, residuals).

The positional encoding is a config choice:

- ``learned``: a table of ``context_length`` position vectors added to the token embeddings
  (GPT-2). It cannot read past its table.
- ``sinusoidal``: the fixed sines and cosines of "Attention Is All You Need", added likewise.
- ``rope``: queries and keys rotated by their position (RoFormer); attention sees offsets only.
- ``alibi``: no position vectors; a per-head linear penalty on distance is added to the
  attention scores (Press et al., "Train Short, Test Long"). In the encoder the penalty is
  symmetric, so attention sees how far a token is but not on which side.
- ``none``: nothing. A causal decoder still infers positions from what it may attend to.

Every encoding but ``learned`` reads sequences longer than those it was trained on.

``attention`` chooses which positions attention may read: ``dense`` (all of them), ``banded``
(only the ``band`` nearest: in the decoder a token and the ``band - 1`` before it) in every
layer, or ``alternating-banded``, dense and banded layers in turn (the first dense), as GPT-3
alternates dense and locally banded sparse attention (Brown et al. 2020, after Child et al.'s
Sparse Transformer).

``mixer`` chooses what mixes information across positions inside each block: ``attention``
(the Transformer), or ``lstm``, a one-layer LSTM in the same place, with the same LayerNorms,
residuals and MLP around it (Domhan, "How Much Attention Do You Need?", 2018). With the LSTM
mixer the decoder is causal by construction; rope and alibi then do nothing (they act inside
attention), and ``forward_step`` carries each layer's (h, c) instead of keys and values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from zoo_core import ZooError

PosEncoding = Literal["learned", "sinusoidal", "rope", "alibi", "none"]
# One (keys, values) pair per layer, each (B, n_head, T_cached, head_dim).
KVCache = list[tuple[torch.Tensor, torch.Tensor]]


@dataclass
class BlockConfig:
    """What the decoder and the encoder share: the stack of blocks and the positions."""

    vocab_size: int = 256  # set from the tokenizer by the task
    context_length: int = 256  # block size: the training window (the lm task's default seq_len)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128  # model width; must divide by n_head
    dropout: float = 0.0  # on attention weights, residual branches and embeddings
    bias: bool = True  # biases in Linear and LayerNorm layers (GPT-2 has them)
    pos_encoding: PosEncoding = "learned"
    rope_base: float = 10000.0  # RoPE's frequency base
    mixer: Literal["attention", "lstm"] = "attention"  # what mixes positions inside a block
    activation: Literal["gelu", "gelu_tanh"] = "gelu"  # the MLP's; GPT-2 uses tanh-approximated
    layer_norm_eps: float = 1e-5  # every LayerNorm's epsilon
    attention: Literal["dense", "banded", "alternating-banded"] = "dense"  # which keys it reads
    band: int = 256  # keys a banded layer reads: the token and band - 1 before it
    # gpt2: N(0, 0.02), residual projections scaled by depth (GPT-2's, made for 768 channels).
    # pytorch: each layer's own default (N(0, 1) embeddings, Linear's uniform 1/sqrt(fan_in)),
    # under which a narrow model forms induction heads far sooner (docs/studies.md, MQAR).
    init: Literal["gpt2", "pytorch"] = "gpt2"

    def __post_init__(self):
        if min(self.n_layer, self.n_head, self.n_embd, self.context_length, self.vocab_size) < 1:
            raise ValueError(
                "n_layer, n_head, n_embd, context_length and vocab_size must be positive"
            )
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} is not divisible by n_head {self.n_head}")
        if self.pos_encoding == "rope" and (self.n_embd // self.n_head) % 2:
            raise ValueError("rope needs an even head size (n_embd / n_head)")
        if self.pos_encoding not in ("learned", "sinusoidal", "rope", "alibi", "none"):
            raise ValueError(f"unknown pos_encoding {self.pos_encoding!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError("dropout must be in [0, 1)")
        if self.mixer not in ("attention", "lstm"):
            raise ValueError(f"unknown mixer {self.mixer!r}; use attention or lstm")
        if self.activation not in ("gelu", "gelu_tanh"):
            raise ValueError(f"unknown activation {self.activation!r}; use gelu or gelu_tanh")
        if not 0 < self.layer_norm_eps < 1:
            raise ValueError(f"layer_norm_eps must be in (0, 1), not {self.layer_norm_eps}")
        if self.attention not in ("dense", "banded", "alternating-banded"):
            raise ValueError(
                f"unknown attention {self.attention!r}; use dense, banded or alternating-banded"
            )
        if self.band < 1:
            raise ValueError(f"band must be at least 1 token, not {self.band}")
        if self.init not in ("gpt2", "pytorch"):
            raise ValueError(f"unknown init {self.init!r}; use gpt2 or pytorch")
        if self.attention != "dense" and self.mixer != "attention":
            raise ValueError(f"attention={self.attention} bands attention; mixer lstm has none")

    @property
    def max_context(self) -> int | None:
        """The longest input the model can read: learned positions stop at context_length;
        the other encodings (and none) read any length."""
        return self.context_length if self.pos_encoding == "learned" else None


@dataclass
class TransformerConfig(BlockConfig):
    tie_weights: bool = True  # the output head shares the token embedding matrix


@dataclass
class EncoderConfig(BlockConfig):
    num_classes: int = 2  # set from the data by the task

    def __post_init__(self):
        super().__post_init__()
        if self.num_classes < 1:
            raise ValueError("num_classes must be positive")


# -- positions ---------------------------------------------------------------------------------
def sinusoidal_table(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Sines on even channels and cosines on odd ones, (T,) -> (T, dim)."""
    half = torch.arange(0, dim, 2, device=positions.device, dtype=torch.float32)
    angles = positions.float()[:, None] * torch.exp(-math.log(10000.0) * half / dim)  # (T, dim/2)
    table = torch.zeros(len(positions), dim, device=positions.device)
    table[:, 0::2] = torch.sin(angles)
    table[:, 1::2] = torch.cos(angles[:, : dim // 2])
    return table


def rope_angles(
    positions: torch.Tensor, head_dim: int, base: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of each position times each frequency, (T,) -> two (T, head_dim/2)."""
    freqs = base ** (-torch.arange(0, head_dim, 2, device=positions.device).float() / head_dim)
    angles = positions.float()[:, None] * freqs  # (T, head_dim/2)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs of channels (i, i + head_dim/2) of ``x`` (B, H, T, hd) by their angle."""
    x1, x2 = x.float().chunk(2, dim=-1)  # (B, H, T, hd/2) each
    rotated = torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    return rotated.type_as(x)


def alibi_slopes(n_head: int) -> torch.Tensor:
    """The head slopes of ALiBi: a geometric sequence 2^(-8/n), 2^(-16/n)... (n_head,).

    For a head count that is not a power of two, the paper interleaves the slopes of the next
    power of two.
    """
    closest = 2 ** math.floor(math.log2(n_head))
    slopes = [2 ** (-8 * (i + 1) / closest) for i in range(closest)]
    if closest < n_head:
        extra = [2 ** (-8 * (i + 1) / (2 * closest)) for i in range(2 * closest)]
        slopes += extra[0::2][: n_head - closest]
    return torch.tensor(slopes)


# -- the block ---------------------------------------------------------------------------------
class SelfAttention(nn.Module):
    """Multi-head self-attention through ``scaled_dot_product_attention`` (flash on GPU)."""

    def __init__(self, config: BlockConfig):
        super().__init__()
        self.n_head = config.n_head
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = config.dropout
        self.resid_drop = nn.Dropout(config.dropout)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        is_causal: bool,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        cache: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)  # (B, T, C) each
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        if rope is not None:  # (B, H, T, hd), rotated by their absolute positions
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if cache is not None:  # keys and values of the earlier tokens, already rotated
            k = torch.cat([cache[0], k], dim=2)  # (B, H, T_cached + T, hd)
            v = torch.cat([cache[1], v], dim=2)
        if mask is not None and mask.is_floating_point():
            mask = mask.to(q.dtype)
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            is_causal=is_causal,
            dropout_p=self.dropout if self.training else 0.0,
        )  # (B, H, T, hd)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.resid_drop(self.proj(y)), (k, v)


class LSTMMixer(nn.Module):
    """An LSTM where attention would be: reads left to right, carries (h, c) between calls."""

    def __init__(self, config: BlockConfig):
        super().__init__()
        self.lstm = nn.LSTM(config.n_embd, config.n_embd, batch_first=True)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_drop = nn.Dropout(config.dropout)

    def forward(self, x, mask=None, is_causal=True, rope=None, cache=None):
        y, state = self.lstm(x, cache)  # (B, T, C); state: (h, c), each (1, B, C)
        return self.resid_drop(self.proj(y)), state


class MLP(nn.Module):
    def __init__(self, config: BlockConfig):
        super().__init__()
        self.fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.drop = nn.Dropout(config.dropout)
        self.approximate = "tanh" if config.activation == "gelu_tanh" else "none"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(F.gelu(self.fc(x), approximate=self.approximate)))  # (B, T, C)


class Block(nn.Module):
    """Pre-LayerNorm: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, config: BlockConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps, bias=config.bias)
        self.attn = SelfAttention(config) if config.mixer == "attention" else LSTMMixer(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x, mask, is_causal, rope=None, cache=None):
        a, kv = self.attn(self.ln_1(x), mask, is_causal, rope, cache)
        x = x + a
        x = x + self.mlp(self.ln_2(x))
        return x, kv


class _Body(nn.Module):
    """Token and position handling plus the stack of blocks, for either direction."""

    causal: bool = True

    def __init__(self, config: BlockConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        if config.pos_encoding == "learned":
            self.wpe = nn.Embedding(config.context_length, config.n_embd)
        if config.pos_encoding == "alibi":
            self.register_buffer("slopes", alibi_slopes(config.n_head), persistent=False)
        self.drop = nn.Dropout(config.dropout)
        # The declared blocks (zoo_core.protocols.blocks): FSDP units, recomputed in backward.
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps, bias=config.bias)
        # Only learned positions bound what the model can read.
        self.max_context = config.max_context

    def _init_weights(self) -> None:
        """GPT-2's initialisation: N(0, 0.02), residual projections scaled by depth; or, with
        ``init=pytorch``, the one each layer was built with."""
        if self.config.init == "pytorch":
            return
        for name, p in self.named_parameters():
            if ".lstm." in name:  # an LSTM mixer keeps PyTorch's own LSTM initialisation
                continue
            if p.dim() >= 2:
                std = (
                    0.02 / math.sqrt(2 * self.config.n_layer)
                    if name.endswith("proj.weight")
                    else 0.02
                )
                nn.init.normal_(p, mean=0.0, std=std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def _attention_mask(
        self, T: int, offset: int, pad: torch.Tensor | None, device: torch.device
    ) -> tuple[torch.Tensor | None, bool]:
        """The mask (or additive bias) for T queries at positions offset.. over offset+T keys."""
        q_pos = torch.arange(offset, offset + T, device=device)
        k_pos = torch.arange(offset + T, device=device)
        distance = q_pos[:, None] - k_pos[None, :]  # (T, T_k): how far back each key is
        if self.config.pos_encoding == "alibi":
            if self.causal:
                bias = -self.slopes[:, None, None] * distance.clamp(min=0)  # (H, T, T_k)
                bias = bias.masked_fill(distance < 0, float("-inf"))
            else:
                bias = -self.slopes[:, None, None] * distance.abs()
            bias = bias[None]  # (1, H, T, T_k)
            if pad is not None:
                bias = bias.masked_fill(~pad[:, None, None, :], float("-inf"))  # (B, H, T, T_k)
            return bias, False
        if self.causal:
            if T == 1:  # one new token attends to everything cached
                return None, False
            if offset == 0:
                return None, True
            return distance >= 0, False  # (T, T_k), the causal mask shifted by the cache
        return (None if pad is None else pad[:, None, None, :]), False  # (B, 1, 1, T_k)

    def _banded(self, i: int) -> bool:
        """Whether layer ``i`` reads only the ``band`` nearest keys."""
        kind = self.config.attention
        return kind == "banded" or (kind == "alternating-banded" and i % 2 == 1)

    def _band_mask(
        self, T: int, offset: int, pad: torch.Tensor | None, device: torch.device
    ) -> torch.Tensor:
        """The banded layers' mask (True: may attend) for T queries at offset.., or their
        additive bias with ALiBi: the dense mask with the keys outside the band taken away."""
        q_pos = torch.arange(offset, offset + T, device=device)
        k_pos = torch.arange(offset + T, device=device)
        distance = q_pos[:, None] - k_pos[None, :]  # (T, T_k)
        near = distance.abs() < self.config.band
        if self.causal:
            near = near & (distance >= 0)
        dense, is_causal = self._attention_mask(T, offset, pad, device)
        if dense is not None and dense.is_floating_point():  # ALiBi's bias: -inf outside
            return dense.masked_fill(~near, float("-inf"))
        if pad is not None and not self.causal:
            return near & pad[:, None, None, :]  # (B, 1, T, T_k)
        return near  # (T, T_k)

    def _run(
        self,
        idx: torch.Tensor,
        pad: torch.Tensor | None = None,
        cache: KVCache | None = None,
        offset: int | None = None,
    ) -> tuple[torch.Tensor, KVCache]:
        """Hidden states (B, T, C) after the final LayerNorm, and the keys/values of every layer
        (each LSTM mixer's (h, c) instead); ``offset``: tokens before ``idx`` (default: cached)."""
        B, T = idx.shape
        if offset is None:
            offset = 0 if cache is None else cache[0][0].size(2)
        if self.max_context is not None and offset + T > self.max_context:
            raise ZooError(
                f"this model has learned positions for {self.max_context} tokens and was given "
                f"{offset + T}; use at most {self.max_context} tokens, or train with "
                "pos_encoding rope, alibi, sinusoidal or none to read longer sequences"
            )
        positions = torch.arange(offset, offset + T, device=idx.device)  # (T,)
        x = self.wte(idx)  # (B, T, C)
        rope = None
        encoding = self.config.pos_encoding
        if encoding == "learned":
            x = x + self.wpe(positions)
        elif encoding == "sinusoidal":
            x = x + sinusoidal_table(positions, self.config.n_embd).to(x.dtype)
        elif encoding == "rope":
            rope = rope_angles(
                positions, self.config.n_embd // self.config.n_head, self.config.rope_base
            )
        x = self.drop(x)
        mask, is_causal = self._attention_mask(T, offset, pad, idx.device)
        if self.config.attention != "dense":
            band = self._band_mask(T, offset, pad, idx.device)
        new_cache: KVCache = []
        for i, block in enumerate(self.blocks):
            layer_mask, layer_causal = (band, False) if self._banded(i) else (mask, is_causal)
            x, kv = block(x, layer_mask, layer_causal, rope, None if cache is None else cache[i])
            new_cache.append(kv)
        return self.ln_f(x), new_cache


class TransformerLM(_Body):
    """A GPT-style decoder-only language model: ids (B, T) -> next-token logits (B, T, V)."""

    config_class = TransformerConfig
    # Small sizes for the contract tests (zoo_core.testing), applied over any variant.
    test_overrides = {"n_layer": 2, "n_head": 2, "n_embd": 16, "context_length": 32}

    def __init__(self, config: TransformerConfig):
        super().__init__(config)
        self.head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_weights:
            self.head.weight = self.wte.weight
        self._init_weights()

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, T, vocab_size)`` for ids ``(B, T)``."""
        return self.head(self._run(idx)[0])

    def forward_step(
        self, idx: torch.Tensor, state: KVCache | None = None
    ) -> tuple[torch.Tensor, KVCache]:
        """Continue after the tokens cached in ``state``: logits of ``idx`` and the grown cache."""
        if self.config.mixer == "lstm":  # the state: (tokens seen, each layer's (h, c))
            seen, layers = state if state is not None else (0, None)
            h, layers = self._run(idx, cache=layers, offset=seen)
            return self.head(h), (seen + idx.size(1), layers)
        h, cache = self._run(idx, cache=state)
        return self.head(h), cache  # (B, T, V)


class TransformerEncoder(_Body):
    """A bidirectional encoder with a mean-pooled classification head: (B, T) -> (B, classes)."""

    config_class = EncoderConfig
    causal = False
    test_overrides = {"n_layer": 2, "n_head": 2, "n_embd": 16, "context_length": 32}

    def __init__(self, config: EncoderConfig):
        super().__init__(config)
        self.head = nn.Linear(config.n_embd, config.num_classes)
        self._init_weights()

    def forward(self, idx: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Class logits for ids ``(B, T)``; ``mask`` (B, T) is True on real tokens, False on padding."""
        h, _ = self._run(idx, pad=mask)  # (B, T, C)
        if mask is None:
            pooled = h.mean(dim=1)
        else:
            weights = mask.to(h.dtype).unsqueeze(-1)  # (B, T, 1)
            pooled = (h * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)  # (B, C)
        return self.head(pooled)  # (B, num_classes)
