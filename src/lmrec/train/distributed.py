"""Data-parallel training with ``torch.distributed``: setup, rank queries and data sharding.

Launch any lmrec training under ``torchrun`` and call :func:`setup_distributed` once:

.. code-block:: console

    torchrun --nproc-per-node 2 -m lmrec train --data train.csv --model bpr --out m --distributed

Outside ``torchrun`` (no ``RANK``/``WORLD_SIZE`` in the environment) every function here
is a no-op describing a world of one process, so the same code runs unchanged on a laptop.

Sharding follows nanoGPT's ``seed_offset`` idea with NumPy's ``SeedSequence`` (STYLE
rule 13): the order of an epoch is drawn from ``SeedSequence(seed, spawn_key=(0, epoch))``
-- the same on every rank and independent of the number of ranks -- and each global
batch of that order is cut into ``world_size`` contiguous, disjoint pieces. Per-example
randomness (negative sampling, dropout masks) comes from :func:`batch_rng`,
``spawn_key=(1, epoch, batch)``: every rank draws it for the whole *global* batch and
keeps the rows of its own piece, so the draws do not depend on the number of ranks and a
2-rank step computes the 1-rank gradient (up to float summation order). Because
everything is derived from ``(seed, epoch, batch)``, a run resumed from a checkpoint --
also one written mid-epoch, with a different number of ranks -- replays exactly the same
batches.

torch is imported inside functions only.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from lmrec._optional import require
from lmrec.errors import ConfigError

logger = logging.getLogger(__name__)

Backend = Literal["auto", "gloo", "nccl"]


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job: ``rank`` of ``world_size``, GPU ``local_rank``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_distributed(self) -> bool:
        """Whether more than one process takes part (gradients must be all-reduced)."""
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    """Whether ``RANK`` and ``WORLD_SIZE`` are set (``torchrun`` or an equivalent launcher)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def setup_distributed(backend: Backend = "auto") -> DistInfo:
    """Join the process group described by torchrun's environment; a no-op outside torchrun.

    Reads ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (and ``MASTER_ADDR``/``MASTER_PORT``
    through ``init_method="env://"``). ``backend="auto"`` picks ``nccl`` when CUDA is
    available, else ``gloo``; with ``nccl`` the process also binds ``cuda:LOCAL_RANK``.
    Calling it again once the group exists returns the same answer.

    Returns
    -------
    DistInfo
        ``DistInfo()`` (rank 0 of 1) when not launched by torchrun.

    Raises
    ------
    ConfigError
        If the environment variables are not integers, or ``nccl`` is asked for without CUDA.
    """
    if not launched_by_torchrun():
        return DistInfo()
    torch = require("torch", "torch")
    dist = torch.distributed
    try:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError as e:
        raise ConfigError(f"RANK/WORLD_SIZE/LOCAL_RANK must be integers: {e}") from e
    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        if not torch.cuda.is_available():
            raise ConfigError("backend='nccl' needs CUDA; use backend='gloo' on CPU.")
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        restart = os.environ.get("TORCHELASTIC_RESTART_COUNT")
        if restart is None:
            dist.init_process_group(
                backend=backend, init_method="env://", rank=rank, world_size=world
            )
        else:
            # Under torchrun the workers share the agent's store across restarts; without a
            # per-attempt prefix a restarted group can read the dead group's addresses
            # (gloo then fails with "connectFullMesh ... Connection refused").
            store, _, _ = next(dist.rendezvous("env://", rank=rank, world_size=world))
            store = dist.PrefixStore(f"lmrec/attempt-{int(restart)}", store)
            dist.init_process_group(backend=backend, store=store, rank=rank, world_size=world)
        logger.info("joined process group: rank %d of %d (%s)", rank, world, backend)
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank, backend=dist.get_backend())


def dist_info() -> DistInfo:
    """This process's place in the initialised process group (rank 0 of 1 when there is none)."""
    torch = _torch_if_loaded()
    if (
        torch is None
        or not torch.distributed.is_available()
        or not torch.distributed.is_initialized()
    ):
        return DistInfo()
    dist = torch.distributed
    return DistInfo(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        backend=dist.get_backend(),
    )


def is_main_process() -> bool:
    """True on rank 0, and in every process that is not part of a process group.

    Gate side effects (saving models and checkpoints, printing results) on it.
    """
    return dist_info().rank == 0


def barrier() -> None:
    """Wait for all ranks (no-op without a process group)."""
    if dist_info().is_distributed:
        _torch_if_loaded().distributed.barrier()


def cleanup_distributed() -> None:
    """Leave the process group, if this process joined one."""
    torch = _torch_if_loaded()
    if (
        torch is not None
        and torch.distributed.is_available()
        and torch.distributed.is_initialized()
    ):
        torch.distributed.destroy_process_group()


def _torch_if_loaded() -> Any:
    """torch when something already imported it (a process group implies it), else None."""
    import sys

    return sys.modules.get("torch")


# ---------------------------------------------------------------------- sharding
def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled order of ``n`` training rows in ``epoch`` (0-based), the same on all ranks."""
    ss = np.random.SeedSequence(int(seed), spawn_key=(0, int(epoch)))
    return np.random.default_rng(ss).permutation(n)


def batch_rng(seed: int, epoch: int, batch: int) -> np.random.Generator:
    """The generator of global batch ``batch`` of ``epoch``, the same on every rank.

    Draw per-example randomness for the whole global batch from it and keep this rank's
    rows (see :func:`shard_bounds`): the result is independent of the number of ranks.
    """
    ss = np.random.SeedSequence(int(seed), spawn_key=(1, int(epoch), int(batch)))
    return np.random.default_rng(ss)


def shard_bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """``(lo, hi)``: this rank's contiguous piece ``[lo, hi)`` of a global batch of ``n`` rows.

    >>> [shard_bounds(5, r, 2) for r in range(2)]
    [(0, 2), (2, 5)]
    """
    return (n * rank) // world_size, (n * (rank + 1)) // world_size


def shard_batch(rows: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """This rank's contiguous piece of one global batch; pieces are disjoint and cover ``rows``."""
    lo, hi = shard_bounds(len(rows), rank, world_size)
    return rows[lo:hi]


def epoch_shards(
    n: int, seed: int, epoch: int, batch_size: int, rank: int, world_size: int
) -> list[np.ndarray]:
    """Row indices this rank trains on in ``epoch``, one array per global batch of ``batch_size``.

    Every rank gets the same number of (possibly empty) pieces, so collective calls match.

    Examples
    --------
    >>> a = epoch_shards(10, seed=0, epoch=0, batch_size=4, rank=0, world_size=2)
    >>> b = epoch_shards(10, seed=0, epoch=0, batch_size=4, rank=1, world_size=2)
    >>> sorted(np.concatenate(a + b).tolist()) == list(range(10)), len(a) == len(b) == 3
    (True, True)
    """
    order = epoch_order(n, seed, epoch)
    return [
        shard_batch(order[s : s + batch_size], rank, world_size) for s in range(0, n, batch_size)
    ]


def all_reduce_sum_(torch: Any, tensors: list[Any]) -> None:
    """Sum ``tensors`` over all ranks in place, as one flat buffer (one collective per step)."""
    if not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    torch.distributed.all_reduce(flat, op=torch.distributed.ReduceOp.SUM)
    offset = 0
    for t in tensors:
        t.copy_(flat[offset : offset + t.numel()].view_as(t))
        offset += t.numel()


def all_reduce_grads_(torch: Any, tensors: list[Any], *, min_numel: int = 1 << 16) -> None:
    """Sum gradients over all ranks in place, sending embedding-table gradients as rows.

    A mini-batch touches few rows of a large embedding table, so its gradient is mostly
    zero rows; summing it densely moves the whole table through the network every step.
    Tensors of at least ``min_numel`` elements are exchanged as (row index, row values)
    for their non-zero rows (``all_gather``) and summed back in rank order, unless the
    ranks' non-zero rows together exceed a quarter of the table; everything else goes
    through :func:`all_reduce_sum_`. Every rank ends with the same sums, equal to the
    dense all-reduce up to float summation order.
    """
    if not tensors:
        return
    dist = torch.distributed
    world = dist.get_world_size()
    big = [t for t in tensors if t.dim() in (1, 2) and t.numel() >= min_numel]
    dense = [t for t in tensors if not any(t is b for b in big)]
    if big:
        tables = [t.view(t.shape[0], -1) for t in big]
        rows = [torch.nonzero(m.ne(0).any(1)).squeeze(1) for m in tables]
        counts = torch.tensor([len(r) for r in rows], dtype=torch.int64, device=big[0].device)
        every = [torch.empty_like(counts) for _ in range(world)]
        dist.all_gather(every, counts)
        widest = torch.stack(every).max(0).values.tolist()
        for t, table, r, width in zip(big, tables, rows, widest, strict=True):
            if width * world * 4 > table.shape[0]:
                dense.append(t)  # dense enough: one all-reduce is cheaper
                continue
            idx = torch.full((width,), -1, dtype=torch.int64, device=t.device)
            idx[: len(r)] = r
            val = torch.zeros((width, table.shape[1]), dtype=t.dtype, device=t.device)
            val[: len(r)] = table[r]
            all_idx = [torch.empty_like(idx) for _ in range(world)]
            all_val = [torch.empty_like(val) for _ in range(world)]
            dist.all_gather(all_idx, idx)
            dist.all_gather(all_val, val)
            table.zero_()
            for i, v in zip(all_idx, all_val, strict=True):
                keep = i >= 0
                table.index_add_(0, i[keep], v[keep])
    all_reduce_sum_(torch, dense)


def broadcast_(torch: Any, tensors: list[Any], src: int = 0) -> None:
    """Overwrite ``tensors`` on every rank with rank ``src``'s values."""
    for t in tensors:
        torch.distributed.broadcast(t.data, src=src)


# ---------------------------------------------------------------------- local launcher
def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for a local rendezvous)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_local(fn: Any, world_size: int, *args: Any) -> None:
    """Run ``fn(*args)`` in ``world_size`` fresh processes forming one local gloo/nccl group.

    What ``torchrun --nproc-per-node world_size`` does, for tests and benchmarks: each
    child gets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR``/``MASTER_PORT`` so
    that :func:`setup_distributed` joins the group. ``fn`` must be importable (a
    module-level function) and report through files: return values are dropped. A child
    that raises makes this raise ``torch.multiprocessing.ProcessRaisedException``.
    """
    if world_size < 1:
        raise ConfigError(f"world_size must be >= 1. Got {world_size!r} instead.")
    torch = require("torch", "torch")
    port = free_port()
    torch.multiprocessing.spawn(
        _local_entry, args=(world_size, port, fn, args), nprocs=world_size, join=True
    )


def _local_entry(rank: int, world_size: int, port: int, fn: Any, args: tuple[Any, ...]) -> None:
    # A child process of run_local: its environment is its own to set.
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    try:
        fn(*args)
    finally:
        cleanup_distributed()
