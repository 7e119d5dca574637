"""Training on several processes with torch.distributed, launched by torchrun.

gankit does not use DistributedDataParallel. DDP reduces gradients from
hooks on one backward pass per forward, and a GAN step does not fit that: the
D phase runs D on reals and fakes, the penalties differentiate D twice
(gradient penalty, R1), and the G phase runs D frozen. Instead each phase
reduces its own gradients once, after its backward and before its optimizer
step: one ``all_reduce`` of the flattened gradients, divided by the number of
processes. Every process then takes the same step from the same weights, so
the weights, the EMA generator, the optimizers and every counter stay equal
on all processes without being sent again.

Metrics are evaluated by every process: each makes its :func:`part` of the
images (generated or real) and :func:`gather_rows` puts the parts together,
so every process holds the set one process alone would have made, and the
time an evaluation takes falls with the number of processes.

Without torchrun (no ``WORLD_SIZE``, or 1) nothing here does anything.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib
import os
from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def active() -> bool:
    """Whether this process is one of several (launched by torchrun)."""
    return world_size() > 1


def setup(device: torch.device) -> None:
    """Join the process group of torchrun's processes, once: NCCL on CUDA,
    gloo on the CPU. The timeout is long because process 0 alone may train a
    metric's classifier, say, while the others wait for it."""
    if not active() or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    timeout = datetime.timedelta(hours=2)
    store, group_rank, size = next(dist.rendezvous("env://", timeout=timeout))
    # After torchrun restarts its processes the store may still hold the
    # addresses the dead ones published; a prefix per attempt keeps the new
    # processes from dialling those.
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    store = dist.PrefixStore(f"gankit/attempt-{attempt}", store)
    # torch._dynamo, which the first torch.optim optimizer imports, keeps a
    # reference to a process group that exists when it is imported. Then
    # destroy_process_group leaves gloo's worker threads running into the
    # interpreter's exit, where one that frees a tensor waits for the GIL of
    # a finished interpreter and aborts the process ("terminate called
    # without an active exception"), one exit in a few dozen. Imported
    # first, it holds none: shutdown() ends the threads.
    importlib.import_module("torch._dynamo")

    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", store=store, rank=group_rank, world_size=size, timeout=timeout)


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def average_gradients(module: nn.Module) -> None:
    """Replace every gradient of ``module`` with its mean over the processes:
    one all_reduce of all of them, flattened."""
    if not active():
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
        offset += grad.numel()


def mean(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor``'s mean over the processes (itself when there is one)."""
    if not active():
        return tensor
    tensor = tensor.clone()
    dist.all_reduce(tensor)
    return tensor / world_size()


def total(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor``'s sum over the processes (itself when there is one)."""
    if not active():
        return tensor
    moved = tensor.to(_communication_device(), copy=True)
    dist.all_reduce(moved)
    return moved.to(tensor.device)


def part(n: int) -> range:
    """This process's share of ``n`` items: a contiguous range, the shares
    of processes 0, 1, ... in order making up ``range(n)`` (all of it on one
    process)."""
    size, index = world_size(), rank()
    return range(index * n // size, (index + 1) * n // size)


def gather_rows(tensor: torch.Tensor) -> torch.Tensor:
    """Every process's rows of ``tensor`` (its :func:`part` of a set),
    concatenated in rank order, on every process: the whole set, as one
    process alone would have made it. Parts may differ in length."""
    if not active():
        return tensor
    shapes: list[Any] = [None] * world_size()
    dist.all_gather_object(shapes, (tuple(tensor.shape), tensor.dtype))
    # a process given no items may not know the rows' shape: take it from one that does
    (row_shape, dtype) = next(((shape[1:], dtype) for shape, dtype in shapes if shape[0]), (tensor.shape[1:], tensor.dtype))
    longest = max(shape[0] for shape, _ in shapes)
    padded = torch.zeros((longest, *row_shape), dtype=dtype, device=_communication_device())  # all_gather moves equal shapes
    padded[: tensor.shape[0]] = tensor.to(padded.device)
    pieces = [torch.empty_like(padded) for _ in range(world_size())]
    dist.all_gather(pieces, padded)
    return torch.cat([piece[: shape[0]] for piece, (shape, _) in zip(pieces, shapes, strict=True)]).to(tensor.device)


def _communication_device() -> torch.device:
    """NCCL moves CUDA tensors only; gloo moves CPU tensors."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


@contextlib.contextmanager
def rank_zero_first() -> Iterator[None]:
    """Process 0 runs the block first, the others after it (work that fills
    a cache on disk: the others find it filled). Every process must enter."""
    if active() and rank() != 0:
        dist.barrier()
    yield
    if active() and rank() == 0:
        dist.barrier()


def broadcast_module(module: nn.Module) -> None:
    """Rank 0's parameters and buffers on every process: the start of training
    is the same everywhere even if a component drew its weights unseeded."""
    if not active():
        return
    for tensor in [*module.parameters(), *module.buffers()]:
        dist.broadcast(tensor.data, src=0)


def all_agree(flag: bool, device: torch.device) -> bool:
    """True on every process when ``flag`` is true on every process."""
    if not active():
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item() > 0.5)


def any_true(flag: bool, device: torch.device) -> bool:
    """True on every process when ``flag`` is true on any process."""
    return not all_agree(not flag, device)


def barrier() -> None:
    if active():
        dist.barrier()


def from_rank_zero(value: Any) -> Any:
    """Rank 0's ``value`` on every process (a picklable object)."""
    if not active():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
