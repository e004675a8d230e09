"""Training loop of the sequence models: windows, losses, precision, early stopping, checkpoints.

Examples
    Each user's time-ordered history ``s_1 .. s_n`` gives ``n - 1`` next-item targets
    (``s_1 .. s_t`` predicts ``s_{t+1}``). They are cut, from the most recent end, into
    windows of ``max_len`` targets (:func:`make_windows`), left-padded; an epoch visits
    every window once, so every transition is trained on, also in histories longer than
    ``max_len``. The encoder is causal, so one window trains all its positions at once.
Losses (per target position, summed and divided by the global batch's target count)
    ``ce`` -- softmax over the whole catalog; ``sampled`` -- softmax over the target and
    ``n_negatives`` negatives shared by the batch, drawn with ``q(i) ~ count_i ** power``,
    every logit corrected by ``- log q(i)`` (Yi et al., RecSys 2019), accidental hits of
    the target masked; ``bce`` -- one uniform negative per target, binary cross-entropy
    (the original SASRec objective; Klenitskiy & Vasilev, RecSys 2023, and Petrov &
    Macdonald, RecSys 2023, show it is far weaker than the softmax losses).
Randomness
    Everything is a function of ``(seed, epoch, batch)`` (:mod:`lmrec.train.distributed`):
    the window order, the negatives, the id-dropout mask and the generator of the dropout
    masks, all drawn for the whole global batch. A data-parallel run and a run resumed
    from a checkpoint replay the same steps.
Precision
    ``mixed`` runs the forward pass under autocast: bfloat16 on CPU; float16 on CUDA with
    dynamic loss scaling (:class:`LossScaler`: scale the loss, unscale the gradients,
    skip the step and halve the scale on overflow, double it after 1000 clean steps).
Early stopping
    With validation data the model is evaluated every ``eval_every`` epochs
    (NDCG@10 under the strict protocol, :func:`lmrec.models.validation.validation_metric`);
    training stops after ``patience`` evaluations without improvement and the best
    weights are restored.
Checkpoints
    With ``FitOptions.checkpoint_dir`` rank 0 saves parameters, Adam state, the best
    weights and the early-stopping state after every epoch (atomically,
    :mod:`lmrec.train.checkpoint`); a fit resumes from it exactly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lmrec._progress import progress
from lmrec.data.sequences import Sequences
from lmrec.errors import ConfigError
from lmrec.train.distributed import (
    DistInfo,
    all_reduce_sum_,
    barrier,
    batch_rng,
    epoch_order,
    shard_bounds,
)
from lmrec.train.pairs import Optimizer

logger = logging.getLogger(__name__)


def make_windows(seqs: Sequences, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Training windows ``(inputs, targets)``, int32 (n_windows, max_len), 1-based, 0 = padding.

    Row ``w`` holds up to ``max_len`` consecutive transitions of one user, right-aligned:
    ``targets[w, c]`` follows ``inputs[w, c]`` in the user's history. Windows are cut
    from the most recent end of each history.

    >>> from lmrec.data.sequences import Sequences
    >>> x, y = make_windows(Sequences(np.array([0, 4]), np.array([7, 8, 9, 10])), 2)
    >>> x.tolist(), y.tolist()
    ([[9, 10], [0, 8]], [[10, 11], [0, 9]])
    """
    lengths = seqs.lengths()
    trans = np.maximum(lengths - 1, 0)  # transitions per user
    n_win = -(-trans // max_len)
    win_start = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(n_win, out=win_start[1:])
    users = np.repeat(np.arange(len(lengths)), trans)
    first = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(trans, out=first[1:])
    t = np.arange(len(users)) - first[users]  # transition index inside the user's history
    r = trans[users] - 1 - t  # from the most recent end
    row = win_start[users] + r // max_len
    col = max_len - 1 - r % max_len
    src = seqs.indptr[users] + t  # position of the input item; its target is the next one
    inputs = np.zeros((int(win_start[-1]), max_len), np.int32)
    targets = np.zeros_like(inputs)
    inputs[row, col] = seqs.items[src] + 1
    targets[row, col] = seqs.items[src + 1] + 1
    return inputs, targets


def left_pad(sequences: list[np.ndarray], max_len: int) -> np.ndarray:
    """int64 (n, max_len) 1-based windows of the last ``max_len`` items, left-padded with 0."""
    out = np.zeros((len(sequences), max_len), np.int64)
    for r, s in enumerate(sequences):
        s = np.asarray(s, dtype=np.int64)[-max_len:]
        if len(s):
            out[r, max_len - len(s) :] = s + 1
    return out


class LossScaler:
    """Dynamic loss scaling for float16 training (what ``torch.amp.GradScaler`` does).

    Written out because the loop uses the hand-written Adam of :mod:`lmrec.models.bpr`.
    """

    def __init__(self, enabled: bool, scale: float = 2.0**16, growth_interval: int = 1000):
        self.enabled, self.scale, self.growth_interval = enabled, scale, growth_interval
        self.good_steps = 0

    def unscale_and_check(self, torch: Any, grads: list[Any]) -> bool:
        """Divide ``grads`` by the scale; whether they are all finite (else skip the step)."""
        if not self.enabled:
            return True
        finite = True
        for g in grads:
            g.div_(self.scale)
            finite = finite and bool(torch.isfinite(g).all())
        if finite:
            self.good_steps += 1
            if self.good_steps % self.growth_interval == 0:
                self.scale *= 2.0
        else:
            self.scale = max(self.scale / 2.0, 1.0)
            self.good_steps = 0
        return finite


class SequenceTrainer:
    """Trains a :class:`~lmrec.models.seq.nets.SequenceNet` on windows (see the module docstring).

    ``evaluate()`` (called after an epoch, with the net in eval mode) returns the
    validation NDCG@10, or ``None`` without validation data.
    """

    def __init__(
        self,
        torch: Any,
        net: Any,
        inputs: np.ndarray,
        targets: np.ndarray,
        item_counts: np.ndarray,
        cfg: Any,
        *,
        device: Any,
        dist: DistInfo,
        seed: int,
        evaluate: Callable[[], float | None],
        checkpoint_dir: Path | None,
        desc: str,
        show_progress: bool | None,
    ) -> None:
        from lmrec.models.seq.nets import lookup  # imports torch: not at module import

        self.torch, self.net, self.cfg, self.device, self.dist = torch, net, cfg, device, dist
        self.lookup = lookup
        self.inputs, self.targets = inputs, targets
        self.seed, self.evaluate = int(seed), evaluate
        self.checkpoint_dir, self.desc, self.show_progress = checkpoint_dir, desc, show_progress
        self.params = [p for p in net.parameters() if p.requires_grad]
        self.names = [n for n, p in net.named_parameters() if p.requires_grad]
        self.opt = Optimizer(torch, self.params, lr=cfg.lr, kind="adam")
        mixed = cfg.precision == "mixed" or (cfg.precision == "auto" and device.type == "cuda")
        self.amp_dtype = None
        if mixed:
            self.amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
        self.scaler = LossScaler(self.amp_dtype == torch.float16)
        n_items = len(item_counts)
        q = np.power(item_counts.astype(np.float64), cfg.sample_power)
        if q.sum() == 0:
            q[:] = 1.0
        q /= q.sum()
        self.cdf = np.cumsum(q)
        logq = np.where(q > 0, np.log(np.maximum(q, 1e-300)), 0.0)
        self.logq = torch.from_numpy(np.concatenate([[0.0], logq]).astype(np.float32)).to(device)
        self.n_items = n_items
        self.epoch = 0
        self.history: list[dict[str, float]] = []
        self.best: float | None = None
        self.best_epoch, self.bad = 0, 0
        self.best_state: list[Any] | None = None

    # ------------------------------------------------------------------ one step
    def _draws(self, rng: np.random.Generator, n_targets: int) -> dict[str, Any]:
        """Per-batch randomness, drawn in a fixed order for the whole global batch."""
        torch, cfg = self.torch, self.cfg
        gen = torch.Generator(device=self.device)
        gen.manual_seed(int(rng.integers(0, 2**62)))
        out: dict[str, Any] = {"gen": gen, "neg": None, "keep": None}
        if cfg.loss == "sampled":
            k = min(cfg.n_negatives, self.n_items)
            neg = np.searchsorted(self.cdf, rng.random(k) * self.cdf[-1], side="right")
            out["neg"] = np.minimum(neg, self.n_items - 1) + 1
        elif cfg.loss == "bce":
            out["neg"] = rng.integers(1, self.n_items + 1, size=n_targets)
        if cfg.item_repr == "id+text" and cfg.id_dropout > 0:
            out["keep"] = (rng.random(self.n_items) >= cfg.id_dropout).astype(np.float32)
        return out

    def _loss(self, x: Any, y: Any, draws: dict[str, Any], first: int) -> Any:
        """Summed loss over this piece's target positions (``first``: offset of its first
        target in the global batch, for the per-target BCE negatives)."""
        torch, cfg, lookup = self.torch, self.cfg, self.lookup
        f = torch.nn.functional
        keep = None if draws["keep"] is None else torch.from_numpy(draws["keep"]).to(self.device)
        mask = y > 0
        tgt = y[mask]
        if cfg.loss == "sampled":  # only the rows the batch touches go through the tower
            neg = torch.from_numpy(draws["neg"]).to(self.device)
            ids = torch.cat(
                [
                    torch.zeros(1, dtype=x.dtype, device=x.device),
                    x.reshape(-1),
                    tgt,
                    neg.to(x.dtype),
                ]
            )
            rows, inv = torch.unique(ids, return_inverse=True)
            table = self.net.tower(rows, keep)
            n_x = x.numel()
            h = self.net(inv[1 : 1 + n_x].view_as(x), table)[mask]
            e_t = lookup(table, inv[1 + n_x : 1 + n_x + len(tgt)])
            e_n = lookup(table, inv[1 + n_x + len(tgt) :])
            pos = (h * e_t).sum(-1).float()
            negl = (h @ e_n.T).float()
            if cfg.logq:
                pos, negl = pos - self.logq[tgt], negl - self.logq[neg]
            negl = negl.masked_fill(neg[None, :] == tgt[:, None], float("-inf"))
            return (torch.logsumexp(torch.cat([pos[:, None], negl], 1), 1) - pos).sum()
        table = self.net.tower(None, keep)
        h = self.net(x, table)[mask]
        if cfg.loss == "ce":
            logits = (h @ table[1:].T).float()
            return f.cross_entropy(logits, tgt - 1, reduction="sum")
        neg = torch.from_numpy(draws["neg"]).to(self.device)  # bce draws negatives too
        piece_neg = neg[first : first + len(tgt)]
        pos = (h * lookup(table, tgt)).sum(-1).float()
        negl = (h * lookup(table, piece_neg)).sum(-1).float()
        return (f.softplus(-pos) + f.softplus(negl)).sum()

    def _train_epoch(self) -> dict[str, float]:
        """One pass over the windows; returns the mean loss per target and the throughput."""
        torch, cfg, d = self.torch, self.cfg, self.dist
        order = epoch_order(len(self.inputs), self.seed, self.epoch)
        self.net.train()
        total, n_targets, start_time = 0.0, 0, time.perf_counter()
        for b, start in enumerate(range(0, len(order), cfg.batch_size)):
            rows = order[start : start + cfg.batch_size]
            y_all = self.targets[rows]
            counts = (y_all > 0).sum(axis=1)
            n_global = int(counts.sum())
            rng = batch_rng(self.seed, self.epoch, b)
            draws = self._draws(rng, n_global)
            lo, hi = shard_bounds(len(rows), d.rank, d.world_size)
            self.opt.zero_grad()
            local = torch.zeros((), dtype=torch.float32, device=self.device)
            if hi > lo:
                self.net.noise.set(draws["gen"], lo, hi, len(rows))
                x = torch.from_numpy(self.inputs[rows[lo:hi]].astype(np.int64)).to(self.device)
                y = torch.from_numpy(y_all[lo:hi].astype(np.int64)).to(self.device)
                with self._autocast():
                    loss = self._loss(x, y, draws, int(counts[:lo].sum()))
                (loss * (self.scaler.scale if self.scaler.enabled else 1.0) / n_global).backward()
                local = loss.detach().float()
                self.net.noise.clear()
            for p in self.params:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
            if d.is_distributed:
                all_reduce_sum_(torch, [p.grad for p in self.params] + [local])
            if self.scaler.unscale_and_check(torch, [p.grad for p in self.params]):
                if cfg.weight_decay > 0:
                    with torch.no_grad():
                        for p in self.params:
                            p.mul_(1.0 - cfg.lr * cfg.weight_decay)
                self.opt.step()
            total += float(local)
            n_targets += n_global
        seconds = time.perf_counter() - start_time
        return {
            "loss": total / max(n_targets, 1),
            "seconds": seconds,
            "examples_per_s": n_targets / max(seconds, 1e-9),
        }

    def _autocast(self) -> Any:
        import contextlib

        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return self.torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    # ------------------------------------------------------------------ the loop
    def fit(self) -> list[dict[str, float]]:
        """Train until ``epochs`` or early stopping; leaves the best weights in the net."""
        cfg = self.cfg
        if self.checkpoint_dir is not None:
            self._resume(self.checkpoint_dir)
        bar = progress(
            total=cfg.epochs,
            initial=min(self.epoch, cfg.epochs),
            desc=self.desc,
            unit="epoch",
            disable=None if self.show_progress is None else not self.show_progress,
        )
        start = time.perf_counter() - (self.history[-1]["elapsed_s"] if self.history else 0.0)
        with bar:
            while self.epoch < cfg.epochs and not self._stopped():
                stats = {"epoch": float(self.epoch + 1), **self._train_epoch()}
                self.epoch += 1
                if self.epoch % cfg.eval_every == 0 or self.epoch == cfg.epochs:
                    self._validate(stats)
                stats["elapsed_s"] = time.perf_counter() - start  # training + validation
                self.history.append(stats)
                logger.debug("%s epoch %d: %s", self.desc, self.epoch, stats)
                if self.checkpoint_dir is not None:
                    self._save_checkpoint(self.checkpoint_dir)
                post = {"loss": f"{stats['loss']:.4f}", "ex/s": f"{stats['examples_per_s']:.0f}"}
                if "valid_ndcg@10" in stats:
                    post["ndcg@10"] = f"{stats['valid_ndcg@10']:.4f}"
                bar.set_postfix(post)
                bar.update(1)
        if self.best_state is not None:
            self._load_params(self.best_state)
        return self.history

    def _stopped(self) -> bool:
        return self.best is not None and self.bad >= self.cfg.patience

    def _validate(self, stats: dict[str, float]) -> None:
        torch = self.torch
        self.net.eval()
        with torch.no_grad():
            value = self.evaluate()
        if value is None:
            return
        stats["valid_ndcg@10"] = value
        if self.best is None or value > self.best:
            self.best, self.best_epoch, self.bad = value, self.epoch, 0
            self.best_state = [p.detach().clone() for p in self.params]
        else:
            self.bad += 1

    def _load_params(self, values: list[Any]) -> None:
        with self.torch.no_grad():
            for p, v in zip(self.params, values, strict=True):
                p.copy_(v)

    # ------------------------------------------------------------------ checkpoints
    def _save_checkpoint(self, directory: Path) -> None:
        from lmrec.train.checkpoint import save_checkpoint

        if self.dist.rank == 0:
            arrays = {}
            for i, name in enumerate(self.names):
                arrays[f"param.{name}"] = _np(self.params[i])
                arrays[f"adam_m.{name}"] = _np(self.opt.m[i])
                arrays[f"adam_v.{name}"] = _np(self.opt.v[i])
                if self.best_state is not None:
                    arrays[f"best.{name}"] = _np(self.best_state[i])
            state = {
                "epoch": self.epoch,
                "optimizer_step": self.opt.t,
                "history": self.history,
                "best": self.best,
                "best_epoch": self.best_epoch,
                "bad": self.bad,
                "loss_scale": self.scaler.scale,
                "world_size": self.dist.world_size,
                "rng": {
                    "seed": self.seed,
                    "windows": "SeedSequence(seed, spawn_key=(0, epoch))",
                    "batch": "SeedSequence(seed, spawn_key=(1, epoch, batch))",
                },
            }
            save_checkpoint(directory, arrays, state)
        barrier()

    def _resume(self, directory: Path) -> None:
        from lmrec.train.checkpoint import load_checkpoint

        found = load_checkpoint(directory)
        if found is None:
            return
        arrays, state = found
        if state["rng"]["seed"] != self.seed:
            raise ConfigError(
                f"The checkpoint in {self.checkpoint_dir} was written with seed "
                f"{state['rng']['seed']}; this fit uses seed {self.seed}. Use the same seed or "
                "another checkpoint directory."
            )
        torch = self.torch
        with torch.no_grad():
            for i, name in enumerate(self.names):
                for t, prefix in (
                    (self.params[i], "param"),
                    (self.opt.m[i], "adam_m"),
                    (self.opt.v[i], "adam_v"),
                ):
                    saved = arrays.get(f"{prefix}.{name}")
                    if saved is None or tuple(saved.shape) != tuple(t.shape):
                        raise ConfigError(
                            f"The checkpoint in {self.checkpoint_dir} does not match this "
                            f"model ({prefix}.{name}): it belongs to other data or settings. "
                            "Use another checkpoint directory."
                        )
                    t.copy_(torch.from_numpy(saved).to(t.device))
        if f"best.{self.names[0]}" in arrays:
            self.best_state = [
                torch.from_numpy(arrays[f"best.{n}"]).to(self.device) for n in self.names
            ]
        self.opt.t = int(state["optimizer_step"])
        self.epoch = int(state["epoch"])
        self.history = [dict(h) for h in state["history"]]
        self.best, self.best_epoch = state["best"], int(state["best_epoch"])
        self.bad, self.scaler.scale = int(state["bad"]), float(state["loss_scale"])
        logger.info("resumed %s from %s at epoch %d", self.desc, self.checkpoint_dir, self.epoch)


def _np(t: Any) -> np.ndarray:
    return np.ascontiguousarray(t.detach().float().cpu().numpy(), dtype=np.float32)
