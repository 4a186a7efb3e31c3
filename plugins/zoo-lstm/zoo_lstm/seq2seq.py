"""An encoder-decoder LSTM with attention, for the ``seq2seq`` task.

The encoder reads the source with a stacked LSTM (optionally bidirectional, both directions then
projected back to ``hidden_size``). The decoder is Luong et al.'s (2015) global attention: a
stacked LSTM reads the target, and after each step its top state ``h`` scores every source
position, the softmax of the scores weighs the encoder's states into a context ``c``, and
``tanh(W [c; h])`` predicts the next token. The score is Luong's ``dot`` (h . m) or ``general``
(h . W m), or Bahdanau et al.'s (2015) ``additive`` (v . tanh(W h + U m)). The decoder starts
from ``tanh(W mean(memory))``; padding is never attended to.

``decode_step`` carries the decoder's ``(h, c)`` (batch first), so decoding never reads the
target prefix again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

Score = Literal["dot", "general", "additive"]


@dataclass
class LSTMSeq2SeqConfig:
    source_vocab_size: int = 256  # set from the source tokenizer by the task
    target_vocab_size: int = 256  # set from the target tokenizer by the task
    embed_dim: int = 128
    hidden_size: int = 128
    num_layers: int = 1  # of the encoder and of the decoder
    bidirectional: bool = False  # the encoder reads both ways
    attention: Score = "general"  # dot, general (Luong) or additive (Bahdanau)
    dropout: float = 0.1  # on embeddings, between layers and before the output layer
    tie_output: bool = True  # the output layer shares the target embedding (embed == hidden)

    def __post_init__(self):
        sizes = (self.embed_dim, self.hidden_size, self.num_layers)
        if min(*sizes, self.source_vocab_size, self.target_vocab_size) < 1:
            raise ValueError("embed_dim, hidden_size, num_layers and vocabularies must be positive")
        if self.attention not in ("dot", "general", "additive"):
            raise ValueError(f"unknown attention {self.attention!r}; use dot, general or additive")
        if self.tie_output and self.embed_dim != self.hidden_size:
            raise ValueError(
                f"tie_output needs embed_dim == hidden_size, not {self.embed_dim} and "
                f"{self.hidden_size}; set them equal, or set tie_output=false"
            )
        if not 0 <= self.dropout < 1:
            raise ValueError("dropout must be in [0, 1)")


class Attention(nn.Module):
    """Scores of decoder states (B, T, H) over memory (B, S, H), masked, into contexts."""

    def __init__(self, config: LSTMSeq2SeqConfig):
        super().__init__()
        self.kind = config.attention
        H = config.hidden_size
        if self.kind == "general":
            self.w = nn.Linear(H, H, bias=False)
        elif self.kind == "additive":
            self.w_query = nn.Linear(H, H, bias=False)
            self.w_memory = nn.Linear(H, H)
            self.v = nn.Linear(H, 1, bias=False)

    def forward(self, h: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.kind == "dot":
            scores = h @ memory.transpose(1, 2)  # (B, T, S)
        elif self.kind == "general":
            scores = h @ self.w(memory).transpose(1, 2)  # (B, T, S)
        else:  # (B, T, 1, H) + (B, 1, S, H) -> (B, T, S)
            joint = self.w_query(h)[:, :, None] + self.w_memory(memory)[:, None]
            scores = self.v(torch.tanh(joint)).squeeze(-1)
        scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
        return torch.softmax(scores, dim=-1) @ memory  # (B, T, H)


class LSTMSeq2Seq(nn.Module):
    """Source ids (B, S) and target ids (B, T) -> logits of the next target token (B, T, V)."""

    config_class = LSTMSeq2SeqConfig
    # Small sizes for the contract tests (zoo_core.testing), applied over any variant.
    test_overrides = {"embed_dim": 16, "hidden_size": 16, "num_layers": 2}

    def __init__(self, config: LSTMSeq2SeqConfig):
        super().__init__()
        self.config = config
        E, H, L = config.embed_dim, config.hidden_size, config.num_layers
        between = config.dropout if L > 1 else 0.0
        self.source_embed = nn.Embedding(config.source_vocab_size, E, padding_idx=0)
        self.target_embed = nn.Embedding(config.target_vocab_size, E, padding_idx=0)
        self.encoder = nn.LSTM(
            E, H, L, batch_first=True, dropout=between, bidirectional=config.bidirectional
        )
        # Both directions, concatenated, back to the decoder's width.
        self.memory_proj = nn.Linear(2 * H, H) if config.bidirectional else nn.Identity()
        self.bridge = nn.Linear(H, H)  # the decoder's first state, from the mean of the memory
        self.decoder = nn.LSTM(E, H, L, batch_first=True, dropout=between)
        self.attention = Attention(config)
        self.combine = nn.Linear(2 * H, H, bias=False)  # [context; state] -> attentional state
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(H, config.target_vocab_size)
        if config.tie_output:
            self.head.weight = self.target_embed.weight

    def encode(self, source: torch.Tensor, source_mask: torch.Tensor) -> torch.Tensor:
        """The encoder's states (B, S, H) for source ids (B, S); padding comes last."""
        x = self.drop(self.source_embed(source))  # (B, S, E)
        lengths = source_mask.sum(dim=1).cpu()
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.encoder(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=source.size(1))
        return self.memory_proj(out)  # (B, S, H)

    def _start(self, memory: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        weights = mask.to(memory.dtype).unsqueeze(-1)  # (B, S, 1)
        mean = (memory * weights).sum(1) / weights.sum(1).clamp(min=1)  # (B, H)
        h = torch.tanh(self.bridge(mean))[:, None].repeat(1, self.config.num_layers, 1)
        return h, torch.zeros_like(h)  # (B, L, H) each: batch first

    def decode_step(
        self,
        target: torch.Tensor,
        memory: torch.Tensor,
        source_mask: torch.Tensor,
        state: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Logits (B, T, V) of target ids (B, T) after the decoder state ``state`` (None to
        start), and the new state ``(h, c)``, each (B, num_layers, H)."""
        if state is None:
            state = self._start(memory, source_mask)
        h0, c0 = (s.transpose(0, 1).contiguous() for s in state)  # (L, B, H): the LSTM's layout
        out, (h, c) = self.decoder(self.drop(self.target_embed(target)), (h0, c0))  # (B, T, H)
        context = self.attention(out, memory, source_mask)  # (B, T, H)
        attentional = torch.tanh(self.combine(torch.cat([context, out], dim=-1)))  # (B, T, H)
        logits = self.head(self.drop(attentional))  # (B, T, V)
        return logits, (h.transpose(0, 1), c.transpose(0, 1))

    def forward(
        self, source: torch.Tensor, source_mask: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        """Teacher forcing: logits (B, T, V) of the next target token at every position."""
        return self.decode_step(target, self.encode(source, source_mask), source_mask)[0]
