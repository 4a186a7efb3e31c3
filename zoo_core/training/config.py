"""The Trainer's settings; every field can be set with ``--set key=value`` or a CLI option."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class TrainConfig:
    steps: int = 1000  # optimisation steps (with --time alone: an upper bound)
    time: float | None = None  # seconds of training; the schedule then follows the clock
    batch_size: int = 32
    lr: float = 1e-3  # peak learning rate
    min_lr_ratio: float = 0.1  # cosine decay ends at lr * min_lr_ratio
    warmup: int = 100  # steps of linear warmup
    weight_decay: float = 0.1  # on matrices and embeddings, never on biases and norms
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0  # max gradient norm; 0 turns clipping off
    eval_interval: int = 0  # steps between evaluations; 0: about five per run
    eval_batches: int = 20  # batches per interval evaluation (the final one reads everything)
    # Stop once this many interval evaluations in a row found no lower val_loss, and keep the
    # weights of the best one (0: train every step). The best is kept in memory, not checkpointed.
    early_stopping: int = 0
    log_interval: int = 20  # steps between progress updates and metrics.jsonl lines
    checkpoint_interval: int = 0  # steps between checkpoints; 0: at each evaluation
    keep_checkpoints: int = 2
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 autocast on CUDA
    compile: bool = False  # torch.compile the model (CUDA)
    # Under torchrun: ddp replicates the model (DistributedDataParallel); fsdp shards parameters,
    # gradients and optimizer state (FSDP2's fully_shard, one unit per declared block).
    parallel: Literal["ddp", "fsdp"] = "ddp"
    grad_accum: int = 1  # micro-batches per optimiser step; --batch-size stays the whole step's
    activation_checkpointing: bool = False  # recompute each declared block in backward
    freeze: Literal["none", "backbone"] = "none"  # backbone: train the model's `head` alone
