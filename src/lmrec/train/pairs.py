"""Pairwise training of embedding models (BPR, the factorization machine): negatives,
optimizer and the (optionally data-parallel, checkpointed) epoch loop.

torch is passed in (never imported here), so ``import lmrec.train.pairs`` stays cheap.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np

from lmrec._progress import progress
from lmrec.errors import ConfigError
from lmrec.train.distributed import (
    DistInfo,
    all_reduce_grads_,
    barrier,
    batch_rng,
    epoch_shards,
    shard_bounds,
)
from lmrec.train.torch_utils import autocast

logger = logging.getLogger(__name__)

#: Rounds of re-drawing negatives that hit a positive of the same user (see NegativeSampler).
_RESAMPLE_ROUNDS = 4


class NegativeSampler:
    """Uniform negative items for (user, positive) pairs, vectorized with NumPy.

    Draws ``n_negatives`` items per pair uniformly from the catalog, then re-draws those
    that are a positive of the same user (a sorted array of ``user * n_items + item``
    keys is searched); after a few rounds the remaining collisions are kept, which only
    matters for users who interacted with most of the catalog. ``candidates`` (dense item
    indices) restricts the draws to a subset of the catalog.
    """

    def __init__(
        self,
        users: np.ndarray,
        items: np.ndarray,
        n_items: int,
        rng: np.random.Generator,
        candidates: np.ndarray | None = None,
    ) -> None:
        self.n_items = int(n_items)
        self.rng = rng
        self.keys = np.sort(users.astype(np.int64) * self.n_items + items.astype(np.int64))
        self.candidates = None if candidates is None else np.asarray(candidates, np.int64)

    @property
    def n_candidates(self) -> int:
        """How many items negatives are drawn from."""
        return self.n_items if self.candidates is None else len(self.candidates)

    def _draw(self, size: Any) -> np.ndarray:
        return self._draw_with(self.rng, size)

    def _draw_with(self, rng: np.random.Generator, size: Any) -> np.ndarray:
        idx = rng.integers(0, self.n_candidates, size=size)
        return idx if self.candidates is None else self.candidates[idx]

    def _is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = users[:, None] * self.n_items + items
        pos = np.searchsorted(self.keys, keys).clip(max=len(self.keys) - 1)
        return self.keys[pos] == keys

    def sample(self, users: np.ndarray, n_negatives: int) -> np.ndarray:
        """Negatives, int64 array (len(users), n_negatives)."""
        users = users.astype(np.int64)
        neg = self._draw((len(users), n_negatives))
        for _ in range(_RESAMPLE_ROUNDS):
            bad = self._is_positive(users, neg)
            if not bad.any():
                break
            neg[bad] = self._draw(int(bad.sum()))
        return neg

    def sample_piece(
        self, users: np.ndarray, n_negatives: int, rng: np.random.Generator, n_batch: int, lo: int
    ) -> np.ndarray:
        """Negatives for rows ``lo : lo + len(users)`` of a global batch of ``n_batch`` rows.

        Each round draws ``(n_batch, n_negatives)`` items from ``rng`` (the batch's
        generator, :func:`~lmrec.train.distributed.batch_rng`) and keeps this piece's
        rows: the first round gives the negatives, round ``r`` replaces those still
        hitting a positive of the user. Round ``r`` is always the ``r``-th block of the
        stream, so a row's negatives are the same whichever rank draws them and however the
        batch is split (a piece that stops early only draws fewer blocks).
        """
        users = users.astype(np.int64)
        hi = lo + len(users)
        neg = self._draw_with(rng, (n_batch, n_negatives))[lo:hi]
        for _ in range(_RESAMPLE_ROUNDS):
            bad = self._is_positive(users, neg)
            if not bad.any():
                break
            neg = np.where(bad, self._draw_with(rng, (n_batch, n_negatives))[lo:hi], neg)
        return neg


def to_numpy(t: Any) -> np.ndarray:
    return np.ascontiguousarray(t.detach().float().cpu().numpy(), dtype=np.float32)


class Optimizer:
    """Adam (Kingma & Ba, 2015, Algorithm 1) or plain SGD over a few dense tensors.

    Written out instead of ``torch.optim`` because constructing any ``torch.optim``
    optimizer imports ``torch._dynamo``, which costs seconds per process -- more than
    training a model on MovieLens-100K. The Adam update follows ``torch.optim.Adam``
    with its defaults (betas 0.9/0.999, eps 1e-8, no weight decay: L2 is in the loss).
    """

    def __init__(
        self,
        torch: Any,
        params: list[Any],
        *,
        lr: float,
        kind: Literal["adam", "sgd"],
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.torch, self.params, self.lr, self.kind = torch, params, lr, kind
        self.betas, self.eps, self.t = betas, eps, 0
        self.m = [torch.zeros_like(p) for p in params] if kind == "adam" else []
        self.v = [torch.zeros_like(p) for p in params] if kind == "adam" else []

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        with self.torch.no_grad():
            if self.kind == "sgd":
                for p in self.params:
                    if p.grad is not None:
                        p.add_(p.grad, alpha=-self.lr)
                return
            self.t += 1
            b1, b2 = self.betas
            step_size = self.lr / (1 - b1**self.t)
            bias2_sqrt = (1 - b2**self.t) ** 0.5
            for p, m, v in zip(self.params, self.m, self.v, strict=True):
                if p.grad is None:
                    continue
                m.lerp_(p.grad, 1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                p.addcdiv_(m, (v.sqrt() / bias2_sqrt).add_(self.eps), value=-step_size)


class PairTrainer:
    """Mini-batch training over shuffled (user, positive, negatives) triples.

    ``loss_fn(torch, u, i, j)`` returns ``(ranking_loss, penalty)`` for a batch of user
    indices ``u`` (B,), positives ``i`` (B,) and negatives ``j`` (B, n_negatives), all
    int64 tensors on ``device``; the trainer shuffles, samples, steps the optimizer and
    reports the mean ranking loss per epoch. Shared by BPR and the factorization machine.
    """

    def __init__(
        self,
        torch: Any,
        loss_fn: Any,
        params: list[Any],
        users: np.ndarray,
        items: np.ndarray,
        *,
        sampler: NegativeSampler,
        rng: np.random.Generator,
        device: Any,
        batch_size: int,
        n_negatives: int,
        lr: float,
        optimizer: Literal["adam", "sgd"],
        bf16: bool,
    ) -> None:
        self.torch = torch
        self.loss_fn = loss_fn
        self.users, self.items = users, items
        self.sampler, self.rng = sampler, rng
        self.device = device
        self.batch_size, self.n_negatives = batch_size, n_negatives
        self.bf16 = bf16
        self.opt = Optimizer(torch, params, lr=lr, kind=optimizer)

    def _tensor(self, a: np.ndarray) -> Any:
        return self.torch.from_numpy(a).to(self.device)

    def _train_epoch(self) -> dict[str, float]:
        """One shuffled pass over the positives; returns ``{"loss": mean ranking loss}``."""
        order = self.rng.permutation(len(self.users))
        total = 0.0
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            u = self.users[rows]
            j = self.sampler.sample(u, self.n_negatives)
            with autocast(self.torch, self.device, self.bf16):
                loss, penalty = self.loss_fn(
                    self.torch, self._tensor(u), self._tensor(self.items[rows]), self._tensor(j)
                )
            self.opt.zero_grad()
            (loss + penalty).backward()
            self.opt.step()
            total += float(loss.detach()) * len(rows)
        return {"loss": total / len(order)}

    def fit(self, epochs: int, *, desc: str) -> list[dict[str, float]]:
        """Run ``epochs`` epochs with a progress bar; returns the per-epoch statistics."""
        history = []
        with progress(total=epochs, desc=desc, unit="epoch") as bar:
            for epoch in range(epochs):
                stats = {"epoch": float(epoch + 1), **self._train_epoch()}
                history.append(stats)
                logger.debug("%s epoch %d: loss=%.5f", desc, epoch + 1, stats["loss"])
                bar.set_postfix(loss=f"{stats['loss']:.4f}")
                bar.update(1)
        return history


class ShardedPairTrainer(PairTrainer):
    """:class:`PairTrainer` with batches derived from ``(seed, epoch, batch)``, split over ranks.

    Epoch ``e`` visits the rows in the order :func:`~lmrec.train.distributed.epoch_order`
    draws from the shared seed, in global batches of ``batch_size``; each rank trains on
    its contiguous ``1 / world_size`` piece of every batch (pieces are disjoint and cover
    the batch). Negatives are drawn for the whole global batch from the batch's own
    generator (:func:`~lmrec.train.distributed.batch_rng`) and each rank keeps its rows,
    so they do not depend on the number of ranks. The local loss is weighted by
    ``n_local / n_batch`` and gradients are summed over ranks before the optimizer step:
    a step with any number of ranks is the single-process step on the whole batch, up to
    float summation order. With one rank this is plain mini-batch training.

    With a ``checkpoint_dir`` rank 0 saves a checkpoint after every epoch -- and every
    ``checkpoint_every`` steps inside an epoch when that is set -- and training resumes
    from one found there, mid-epoch included, with any number of ranks (see
    :mod:`lmrec.train.checkpoint`). A resumed run replays exactly the batches and
    negatives of an uninterrupted one.
    """

    def __init__(
        self,
        *args: Any,
        seed: int,
        dist: DistInfo,
        names: list[str],
        checkpoint_dir: Path | None = None,
        checkpoint_every: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if checkpoint_every is not None and checkpoint_every < 1:
            raise ConfigError(f"checkpoint_every must be >= 1 step. Got {checkpoint_every!r}.")
        self.seed, self.dist, self.names = int(seed), dist, names
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.epoch = 0  # finished epochs
        self.batch = 0  # finished batches of the current epoch
        self.loss_sum = 0.0  # summed ranking loss of those batches (all ranks)
        self.history: list[dict[str, float]] = []

    def _batch_sizes(self) -> list[int]:
        n, b = len(self.users), self.batch_size
        return [min(b, n - s) for s in range(0, n, b)]

    def _train_epoch(self) -> dict[str, float]:
        """The rest of the current epoch (this rank's pieces); returns the global mean loss."""
        torch, d = self.torch, self.dist
        shards = epoch_shards(
            len(self.users), self.seed, self.epoch, self.batch_size, d.rank, d.world_size
        )
        sizes = self._batch_sizes()
        while self.batch < len(shards):
            b = self.batch
            rows, n_batch = shards[b], sizes[b]
            self.opt.zero_grad()
            local_loss = torch.zeros((), dtype=torch.float32, device=self.device)
            if len(rows):
                u = self.users[rows]
                lo, _ = shard_bounds(n_batch, d.rank, d.world_size)
                j = self.sampler.sample_piece(
                    u, self.n_negatives, batch_rng(self.seed, self.epoch, b), n_batch, lo
                )
                with autocast(torch, self.device, self.bf16):
                    loss, penalty = self.loss_fn(
                        torch, self._tensor(u), self._tensor(self.items[rows]), self._tensor(j)
                    )
                # d(mean over the global batch) = sum over ranks of d(local sum) / n_batch
                ((loss + penalty) * (len(rows) / n_batch)).backward()
                local_loss = loss.detach().float() * len(rows)
            if d.is_distributed:
                for p in self.opt.params:
                    if p.grad is None:  # an empty piece of the last batch
                        p.grad = torch.zeros_like(p)
                # the loss statistic rides along with the dense gradients
                all_reduce_grads_(torch, [p.grad for p in self.opt.params] + [local_loss])
            self.opt.step()
            self.loss_sum += float(local_loss)
            self.batch += 1
            if (
                self.checkpoint_dir is not None
                and self.checkpoint_every
                and self.batch % self.checkpoint_every == 0
                and self.batch < len(shards)
            ):
                self._save_checkpoint(self.checkpoint_dir)
        stats = {"loss": self.loss_sum / len(self.users)}
        self.batch, self.loss_sum = 0, 0.0
        return stats

    def fit(self, epochs: int, *, desc: str) -> list[dict[str, float]]:
        """Train until ``epochs`` epochs are done (resuming from a checkpoint if one exists)."""
        if self.checkpoint_dir is not None:
            self._resume(self.checkpoint_dir)
        with progress(
            total=epochs, initial=min(self.epoch, epochs), desc=desc, unit="epoch"
        ) as bar:
            while self.epoch < epochs:
                stats = {"epoch": float(self.epoch + 1), **self._train_epoch()}
                self.epoch += 1
                self.history.append(stats)
                logger.debug("%s epoch %d: loss=%.5f", desc, self.epoch, stats["loss"])
                if self.checkpoint_dir is not None:
                    self._save_checkpoint(self.checkpoint_dir)
                bar.set_postfix(loss=f"{stats['loss']:.4f}")
                bar.update(1)
        return self.history

    # ------------------------------------------------------------------ checkpoints
    def _save_checkpoint(self, directory: Path) -> None:
        from lmrec.train.checkpoint import save_checkpoint

        if self.dist.rank == 0:
            arrays = {}
            for i, name in enumerate(self.names):
                arrays[f"param.{name}"] = to_numpy(self.opt.params[i])
                if self.opt.kind == "adam":
                    arrays[f"adam_m.{name}"] = to_numpy(self.opt.m[i])
                    arrays[f"adam_v.{name}"] = to_numpy(self.opt.v[i])
            state = {
                "epoch": self.epoch,
                "batch": self.batch,
                "epoch_loss_sum": self.loss_sum,
                "optimizer": self.opt.kind,
                "optimizer_step": self.opt.t,
                "history": self.history,
                "world_size": self.dist.world_size,
                # Everything random is a pure function of (seed, epoch, batch): see
                # lmrec.train.distributed.
                "rng": {
                    "seed": self.seed,
                    "shuffle": "SeedSequence(seed, spawn_key=(0, epoch))",
                    "negatives": "SeedSequence(seed, spawn_key=(1, epoch, batch))",
                },
            }
            save_checkpoint(directory, arrays, state)
        barrier()  # nobody reads a half-written checkpoint or races ahead of rank 0

    def _resume(self, directory: Path) -> None:
        from lmrec.train.checkpoint import load_checkpoint

        found = load_checkpoint(directory)
        if found is None:
            return
        arrays, state = found
        if state["rng"]["seed"] != self.seed or state["optimizer"] != self.opt.kind:
            raise ConfigError(
                f"The checkpoint in {self.checkpoint_dir} was written with seed "
                f"{state['rng']['seed']} and optimizer {state['optimizer']!r}; this fit uses "
                f"seed {self.seed} and {self.opt.kind!r}. Use the same settings or another "
                "checkpoint directory."
            )
        if "(1, epoch, batch)" not in state["rng"]["negatives"]:
            raise ConfigError(
                f"The checkpoint in {self.checkpoint_dir} was written by an older lmrec that "
                "drew negatives per rank; it cannot be resumed exactly. Start over with an "
                "empty checkpoint directory."
            )
        torch = self.torch
        with torch.no_grad():
            for i, name in enumerate(self.names):
                tensors = [(self.opt.params[i], "param")]
                if self.opt.kind == "adam":
                    tensors += [(self.opt.m[i], "adam_m"), (self.opt.v[i], "adam_v")]
                for t, prefix in tensors:
                    saved = arrays[f"{prefix}.{name}"]
                    if tuple(saved.shape) != tuple(t.shape):
                        raise ConfigError(
                            f"Checkpoint array {prefix}.{name} has shape {saved.shape}, the "
                            f"model {tuple(t.shape)}: it belongs to other data or settings."
                        )
                    t.copy_(torch.from_numpy(saved).to(t.device))
        self.opt.t = int(state["optimizer_step"])
        self.epoch = int(state["epoch"])
        self.batch = int(state.get("batch", 0))
        self.loss_sum = float(state.get("epoch_loss_sum", 0.0))
        self.history = [dict(h) for h in state["history"]]
        logger.info(
            "resumed from %s at epoch %d, batch %d (saved by %d rank(s))",
            self.checkpoint_dir,
            self.epoch,
            self.batch,
            state["world_size"],
        )
