"""Data parallelism when launched by torchrun: one process per device, gradients all-reduced.

Every rank draws the same global batch from the same seeded generator and keeps its own slice
of it (``shard``), so N processes see exactly what one process with the global batch would. After
each backward pass the gradients are averaged across ranks in one flat all-reduce per optimizer
(``average_gradients``): that works for any task, including those that call sub-modules directly
(a GAN's generator and discriminator), where wrapping the model in DistributedDataParallel would
not see the calls. Rank 0 alone logs, evaluates and writes.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist

from zoo_core.errors import ZooError


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


def shard(batch: Any, batch_size: int) -> Any:
    """This rank's slice (along the first dimension) of every tensor of a global batch."""
    n = world_size()
    if n == 1:
        return batch
    if batch_size % n:
        raise ZooError(
            f"batch size {batch_size} does not divide among {n} processes; use a multiple of {n}"
        )
    per, start = batch_size // n, rank() * (batch_size // n)
    if isinstance(batch, torch.Tensor):
        return batch[start : start + per]
    if isinstance(batch, dict):
        return {k: shard(v, batch_size) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(shard(v, batch_size) for v in batch)
    return batch


def broadcast_parameters(model: torch.nn.Module) -> None:
    """Start every rank from rank 0's weights and buffers."""
    if dist.is_initialized():
        for tensor in list(model.parameters()) + list(model.buffers()):
            dist.broadcast(tensor.data, src=0)


def average_gradients(params: list[torch.nn.Parameter]) -> None:
    """Average the gradients of ``params`` across ranks in one flat all-reduce."""
    if not dist.is_initialized():
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset : offset + n].view_as(g))
        offset += n


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
