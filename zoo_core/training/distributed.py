"""Past one device, with PyTorch's own tools: torchrun's process group, DistributedDataParallel,
FSDP2's ``fully_shard`` and ``torch.utils.checkpoint``.

Every rank draws the same global batch from the same seeded generator and keeps its own slice of
it, cut into ``grad_accum`` micro-batches (``micro_batches``), so N processes see exactly what one
process with the global batch would. The Trainer hands ``wrap`` (below, through the Trainer) to
the task, which wraps the model it calls, or each sub-module it calls itself (a GAN's two
players), in DistributedDataParallel (``data_parallel``): gradients are then averaged in buckets
while the backward pass still runs. With ``parallel=fsdp`` each is sharded instead
(``shard``), one FSDP unit per block the model declares. Rank 0 alone logs and writes.
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.checkpoint import checkpoint

from zoo_core.errors import ZooError

try:  # PyTorch 2.6 and later
    from torch.distributed.fsdp import FSDPModule, fully_shard
except ImportError:  # 2.4 and 2.5 have FSDP2 under its first name; 2.3 has none
    try:
        from torch.distributed._composable.fsdp import FSDPModule, fully_shard
    except ImportError:
        FSDPModule = fully_shard = None


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def init(device_type: str) -> None:
    """Join the process group torchrun set up (gloo on CPU, NCCL on CUDA); once per process."""
    if world_size() > 1 and not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)


def local_device(device: torch.device) -> torch.device:
    """On CUDA, each rank takes the GPU of its local rank."""
    if device.type == "cuda" and world_size() > 1:
        if device.index is not None:
            raise ZooError(
                f"--device {device} picks one GPU, but under --nproc each process takes the GPU "
                "of its rank; choose the GPUs with CUDA_VISIBLE_DEVICES and give --device cuda"
            )
        index = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return device


def micro_batches(batch: Any, batch_size: int, accum: int = 1) -> list[Any]:
    """This rank's slice (along the first dimension) of every tensor of a global batch, cut into
    ``accum`` micro-batches: rank r takes the r-th of N equal parts, micro-batch k the k-th of
    its part, so one process with ``accum`` = N sees what N processes do."""
    n = world_size()
    if batch_size % (n * accum):
        among = f"{n} processes" if accum == 1 else f"{n} process(es) x {accum} micro-batches"
        raise ZooError(
            f"batch size {batch_size} does not divide among {among}; use a multiple of {n * accum}"
        )
    per = batch_size // (n * accum)
    start = rank() * per * accum
    return [_rows(batch, start + k * per, per) for k in range(accum)]


def _rows(batch: Any, start: int, count: int) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch[start : start + count]
    if isinstance(batch, dict):
        return {k: _rows(v, start, count) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(_rows(v, start, count) for v in batch)
    return batch


def broadcast_parameters(model: torch.nn.Module) -> None:
    """Start every rank from rank 0's weights and buffers."""
    if dist.is_initialized():
        for tensor in list(model.parameters()) + list(model.buffers()):
            dist.broadcast(tensor.data, src=0)


def data_parallel(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` in DistributedDataParallel: its gradients are averaged across ranks in buckets
    that are all-reduced while the rest of the backward pass runs."""
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids)


def shard(module: nn.Module, blocks: list[nn.Module]) -> nn.Module:
    """Shard ``module``'s parameters, gradients and optimizer state across ranks (FSDP2): each of
    its ``blocks`` is a unit of its own (gathered for its forward and backward, then freed), and
    the rest one unit. The module is changed in place and returned."""
    if fully_shard is None:
        raise ZooError(
            f"parallel=fsdp needs FSDP2 (PyTorch 2.4 or newer), and this is {torch.__version__}; "
            "upgrade PyTorch or use parallel=ddp"
        )
    # FSDP2 warns of every unit that returns a view (a transformer block's keys and values), as an
    # in-place change to one would skip its hook; the Trainer changes none.
    warnings.filterwarnings("ignore", message="FSDP2-wrapped module .* returned a view tensor")
    inside = {id(m) for m in module.modules()}
    for block in blocks:
        if id(block) in inside:
            fully_shard(block)
    fully_shard(module)
    return module


def is_sharded(module: nn.Module) -> bool:
    return FSDPModule is not None and isinstance(module, FSDPModule)


def recompute_in_backward(blocks: list[nn.Module]) -> None:
    """Activation checkpointing: each block keeps only its inputs in the forward pass and runs
    again in backward (``torch.utils.checkpoint``, non-reentrant, its RNG state restored, so
    dropout draws the same). The blocks' forward is replaced on the instance, so that their
    parameters' names, hence the state dict, stay as they are (``checkpoint_wrapper`` would add
    a prefix to every name)."""
    for block in blocks:
        block.forward = functools.partial(_checkpointed, block, block.forward)


def _checkpointed(block: nn.Module, forward: Any, *args: Any, **kwargs: Any) -> Any:
    calls = 0

    def run(*a: Any, **k: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            return forward(*a, **k)
        # The recomputation in backward leaves the block's buffers as the forward pass left
        # them: a batch norm would otherwise count the batch twice in its running statistics
        # (torch.utils.checkpoint does not see to that).
        kept = [(b, b.detach().clone()) for b in block.buffers()]
        try:
            return forward(*a, **k)
        finally:
            with torch.no_grad():
                for b, value in kept:
                    b.copy_(value)

    return checkpoint(run, *args, use_reentrant=False, **kwargs)


@contextlib.contextmanager
def no_sync(modules: list[nn.Module], skip: bool) -> Iterator[None]:
    """While ``skip``, backward passes of the wrapped ``modules`` keep their gradients on this
    rank (DDP's ``no_sync``; FSDP2's ``set_requires_gradient_sync(False)``) to be averaged with
    the last micro-batch's."""
    if not skip:
        yield
        return
    with contextlib.ExitStack() as stack:
        for m in modules:
            if isinstance(m, nn.parallel.DistributedDataParallel):
                stack.enter_context(m.no_sync())
            elif is_sharded(m):
                m.set_requires_gradient_sync(False)
                stack.callback(m.set_requires_gradient_sync, True)
        yield


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank if ``flag`` is true on any (so all ranks stop at the same step)."""
    if not dist.is_initialized():
        return flag
    t = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def broadcast_text(text: str) -> str:
    """Rank 0's ``text`` on every rank (a run folder's path, say)."""
    if not dist.is_initialized():
        return text
    device = (
        torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    )
    data = torch.tensor(list(text.encode("utf-8")), dtype=torch.uint8, device=device)
    size = torch.tensor([data.numel()], device=device)
    dist.broadcast(size, src=0)
    if rank() != 0:
        data = torch.empty(int(size.item()), dtype=torch.uint8, device=device)
    dist.broadcast(data, src=0)
    return bytes(data.cpu().tolist()).decode("utf-8")


def barrier() -> None:
    """Wait until every rank gets here (no-op in one process)."""
    if dist.is_initialized():
        dist.barrier()


def finish() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
