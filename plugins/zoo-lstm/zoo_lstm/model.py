"""An LSTM language model: embedding, stacked LSTM, dropout, output head (optionally tied)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class LSTMConfig:
    vocab_size: int = 256  # set from the tokenizer by the task
    embed_dim: int = 256
    hidden_size: int = 256
    num_layers: int = 2
    dropout: float = 0.1  # between layers and before the head
    tie_weights: bool = True  # share the embedding with the head (needs embed_dim == hidden_size)

    def __post_init__(self):
        if self.num_layers < 1 or self.hidden_size < 1 or self.embed_dim < 1:
            raise ValueError("num_layers, hidden_size and embed_dim must be positive")
        if self.tie_weights and self.embed_dim != self.hidden_size:
            raise ValueError(
                f"tie_weights needs embed_dim == hidden_size, not {self.embed_dim} and "
                f"{self.hidden_size}; set them equal, or set tie_weights=false"
            )
        if not 0 <= self.dropout < 1:
            raise ValueError("dropout must be in [0, 1)")


class LSTMLanguageModel(nn.Module):
    config_class = LSTMConfig
    max_context = None  # reads any length
    # Small sizes for the contract tests (zoo_core.testing), applied over any variant.
    test_overrides = {"embed_dim": 16, "hidden_size": 16, "num_layers": 2}

    def __init__(self, config: LSTMConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embed_dim)
        # One fused nn.LSTM for all layers: cuDNN's kernel on GPU.
        self.lstm = nn.LSTM(
            config.embed_dim,
            config.hidden_size,
            num_layers=config.num_layers,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden_size, config.vocab_size)
        if config.tie_weights:
            self.head.weight = self.embed.weight

    def forward_step(
        self, idx: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Continue from ``state`` (the LSTM's (h, c)); return logits and the new state."""
        x = self.drop(self.embed(idx))  # (B, T, E)
        out, state = self.lstm(x, state)  # (B, T, H)
        return self.head(self.drop(out)), state  # (B, T, V)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, T, vocab_size)`` for ids ``(B, T)``, from a zero state."""
        return self.forward_step(idx)[0]
