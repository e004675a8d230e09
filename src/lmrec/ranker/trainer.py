"""A small, readable training loop for the cross-encoder ranker (nanoGPT-style).

One optimisation step = ``grad_accum`` micro-batches of ``batch_size`` examples,
binary cross-entropy on the logit, AdamW, gradient clipping at 1.0, and the learning
rate of :func:`get_lr` (linear warm-up, then linear decay to ``min_lr_ratio * lr``).

Determinism and resuming: the examples of step ``s`` are drawn by a generator seeded
with ``(seed, s)``, dropout is off, and a checkpoint holds the trainable parameters,
the AdamW moments (safetensors) and the step counters (JSON), so a run resumed from a
checkpoint ends with bitwise the same parameters on CPU as an uninterrupted one.
Checkpoints are directories ``step-000123`` written atomically; the newest is resumed.

Stability: experimental. .. versionadded:: 0.2.0
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lmrec._atomic import atomic_dir
from lmrec._optional import require
from lmrec._progress import progress
from lmrec.errors import ConfigError, ModelFileError
from lmrec.train.distributed import DistInfo, all_reduce_sum_, barrier, shard_bounds

logger = logging.getLogger(__name__)
_CKPT = re.compile(r"^step-(\d{6,})$")


def get_lr(
    step: int, *, lr: float, warmup_steps: int, max_steps: int, min_lr_ratio: float = 0.1
) -> float:
    """Learning rate of (0-based) ``step``: linear warm-up, then linear decay.

    Examples
    --------
    >>> [round(get_lr(s, lr=1.0, warmup_steps=2, max_steps=6), 3) for s in range(6)]
    [0.5, 1.0, 1.0, 0.775, 0.55, 0.325]
    """
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    span = max(1, max_steps - warmup_steps)
    frac = min(1.0, (step - warmup_steps) / span)
    return lr * (1.0 - (1.0 - min_lr_ratio) * frac)


@dataclass
class Examples:
    """Labelled (context, candidate) text pairs; ``labels`` are 0/1 floats.

    ``features`` (n, f), when given, are the numeric side features of each pair for
    the ranker's wide part (see :mod:`lmrec.ranker.features`).
    """

    contexts: list[str]
    candidates: list[str]
    labels: np.ndarray
    features: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, idx: np.ndarray) -> Examples:
        """The examples at positions ``idx``."""
        feats = None if self.features is None else self.features[idx]
        return Examples(
            [self.contexts[i] for i in idx],
            [self.candidates[i] for i in idx],
            self.labels[idx],
            feats,
        )


class Trainer:
    """Fine-tunes a ``{"encoder", "head"}`` module on :class:`Examples`.

    Parameters
    ----------
    module : torch.nn.ModuleDict
        The cross-encoder; only parameters with ``requires_grad`` are trained.
    logits : callable
        ``logits(contexts, candidates, features) -> tensor (n,)`` running ``module``
        (``features`` is None or an (n, f) array of side features).
    config : LMRankerConfig
        Optimisation fields (``lr``, ``batch_size``, ``grad_accum``, ``max_steps``, ...).
    checkpoint_dir : path, optional
        Where checkpoints go (every ``config.checkpoint_every`` steps) and the newest
        one is resumed from.
    """

    def __init__(
        self,
        module: Any,
        logits: Callable[..., Any],
        config: Any,
        *,
        checkpoint_dir: str | Path | None = None,
        dist: DistInfo | None = None,
    ) -> None:
        torch = require("torch", "lm")

        # Data parallel (torchrun): each rank runs its piece of every step's examples and
        # the trainable gradients are summed before clipping and AdamW; rank 0 checkpoints.
        self.dist = DistInfo() if dist is None else dist
        self.module = module
        self.logits = logits
        self.config = config
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.params = {n: p for n, p in module.named_parameters() if p.requires_grad}
        self.device = next(module.parameters()).device
        self.optimizer = torch.optim.AdamW(
            list(self.params.values()), lr=config.lr, weight_decay=config.weight_decay
        )
        self.step = 0
        self.best_auc = -math.inf
        self.best_step = 0
        self.best_params: dict[str, Any] | None = None
        self.bad_evals = 0
        self.log: list[dict[str, float]] = []

    # ------------------------------------------------------------------ one step
    def batch_indices(self, step: int, n: int) -> np.ndarray:
        """Examples of ``step``: a function of ``(seed, step)`` only, so resuming replays it."""
        size = self.config.batch_size * self.config.grad_accum
        rng = np.random.default_rng([self.config.seed, step])
        return rng.choice(n, size=size, replace=n < size)

    def train_step(self, examples: Examples) -> dict[str, float]:
        """One optimiser step (``grad_accum`` micro-batches); returns the loss and lr."""
        torch = require("torch", "lm")

        cfg = self.config
        lr = get_lr(self.step, lr=cfg.lr, warmup_steps=cfg.warmup_steps, max_steps=cfg.max_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        idx = self.batch_indices(self.step, len(examples))
        self.module.train()
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        lo, hi = shard_bounds(len(idx), self.dist.rank, self.dist.world_size)
        for part in np.array_split(idx[lo:hi], cfg.grad_accum):
            if not len(part):
                continue
            batch = examples.take(part)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                out = self.logits(batch.contexts, batch.candidates, batch.features)
            target = torch.as_tensor(batch.labels, dtype=torch.float32, device=out.device)
            # summed over the piece / global step size: the ranks add up to the step's mean
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                out.float(), target, reduction="sum"
            ) / len(idx)
            loss.backward()
            total += float(loss.detach())
        if self.dist.is_distributed:
            grads = []
            for p in self.params.values():
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                grads.append(p.grad)
            summed = torch.tensor(total, dtype=torch.float32, device=self.device)
            all_reduce_sum_(torch, [*grads, summed])
            total = float(summed)
        torch.nn.utils.clip_grad_norm_(list(self.params.values()), 1.0)
        self.optimizer.step()
        self.step += 1
        return {"step": float(self.step), "loss": total, "lr": lr}

    # ------------------------------------------------------------------ loop
    def train(
        self,
        examples: Examples,
        valid: Examples | None = None,
        evaluate: Callable[[Examples], float] | None = None,
    ) -> list[dict[str, float]]:
        """Train to ``config.max_steps`` (resuming a checkpoint), early-stopping on valid AUC.

        Returns the per-step log (``step``, ``loss``, ``lr``, and ``valid_auc`` on
        evaluation steps). With validation, the best parameters are restored at the end.
        """
        cfg = self.config
        if self.checkpoint_dir is not None:
            self.resume()
        bar = progress(total=cfg.max_steps, initial=self.step, desc="fine-tune ranker", unit="step")
        with bar:
            while self.step < cfg.max_steps:
                row = self.train_step(examples)
                if (
                    valid is not None
                    and evaluate is not None
                    and cfg.eval_every
                    and (self.step % cfg.eval_every == 0 or self.step == cfg.max_steps)
                ):
                    row["valid_auc"] = evaluate(valid)
                    self._track(row["valid_auc"])
                self.log.append(row)
                logger.debug("ranker step %d loss %.4f lr %.2e", self.step, row["loss"], row["lr"])
                bar.update(1)
                bar.set_postfix(loss=f"{row['loss']:.4f}")
                if (
                    self.checkpoint_dir is not None
                    and cfg.checkpoint_every
                    and (self.step % cfg.checkpoint_every == 0 or self.step == cfg.max_steps)
                ):
                    if self.dist.rank == 0:
                        self.save_checkpoint()
                    barrier()  # nobody resumes from a half-written checkpoint
                if cfg.patience and self.bad_evals >= cfg.patience:
                    logger.info("early stop at step %d (best %d)", self.step, self.best_step)
                    break
        if self.best_params is not None:
            with _no_grad():
                for name, p in self.params.items():
                    p.copy_(self.best_params[name])
        return self.log

    def _track(self, value: float) -> None:
        if value > self.best_auc:
            self.best_auc, self.best_step, self.bad_evals = value, self.step, 0
            self.best_params = {n: p.detach().clone() for n, p in self.params.items()}
        else:
            self.bad_evals += 1

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self) -> Path:
        """Write ``step-NNNNNN`` (params, AdamW state, best params; counters) atomically."""
        from safetensors.torch import save_file

        if self.checkpoint_dir is None:
            raise ConfigError("save_checkpoint needs a checkpoint_dir.")
        tensors: dict[str, Any] = {}
        names = list(self.params)
        for i, name in enumerate(names):
            tensors[f"param.{name}"] = self.params[name].detach().cpu().contiguous()
            for key, value in self.optimizer.state.get(self.params[name], {}).items():
                tensors[f"optim.{i}.{key}"] = value.detach().reshape(value.shape).cpu().contiguous()
            if self.best_params is not None:
                tensors[f"best.{name}"] = self.best_params[name].cpu().contiguous()
        groups = [
            {k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items() if k != "params"}
            for g in self.optimizer.param_groups
        ]
        state = {
            "step": self.step,
            "best_auc": None if math.isinf(self.best_auc) else self.best_auc,
            "best_step": self.best_step,
            "bad_evals": self.bad_evals,
            "names": names,
            "param_groups": groups,
            "log": self.log,
        }
        path = self.checkpoint_dir / f"step-{self.step:06d}"
        with atomic_dir(path, overwrite=True) as tmp:
            save_file(tensors, str(tmp / "state.safetensors"))
            (tmp / "state.json").write_text(json.dumps(state, indent=1))
        return path

    def latest_checkpoint(self) -> Path | None:
        """The newest complete checkpoint directory, if any."""
        if self.checkpoint_dir is None or not self.checkpoint_dir.is_dir():
            return None
        found = [
            (int(m.group(1)), p)
            for p in self.checkpoint_dir.iterdir()
            if (m := _CKPT.match(p.name)) and (p / "state.json").is_file()
        ]
        return max(found)[1] if found else None

    def resume(self) -> bool:
        """Load the newest checkpoint of ``checkpoint_dir``; False when there is none."""
        torch = require("torch", "lm")
        from safetensors.torch import load_file

        path = self.latest_checkpoint()
        if path is None:
            return False
        try:
            state = json.loads((path / "state.json").read_text())
            tensors = load_file(str(path / "state.safetensors"))
        except (OSError, ValueError) as e:
            raise ModelFileError(f"Could not read ranker checkpoint {path}: {e}") from e
        names = list(self.params)
        if state["names"] != names:
            raise ModelFileError(
                f"Checkpoint {path} trains different parameters than this ranker "
                "(another mode, LoRA rank or base model); use a new checkpoint_dir."
            )
        with torch.no_grad():
            for name in names:
                self.params[name].copy_(tensors[f"param.{name}"])
        opt_state: dict[int, dict[str, Any]] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, i, field = key.split(".", 2)
                opt_state.setdefault(int(i), {})[field] = value
        groups = [dict(g, params=list(range(len(names)))) for g in state["param_groups"]]
        self.optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
        if f"best.{names[0]}" in tensors:
            self.best_params = {n: tensors[f"best.{n}"] for n in names}
        self.step = int(state["step"])
        self.best_auc = -math.inf if state["best_auc"] is None else float(state["best_auc"])
        self.best_step, self.bad_evals = int(state["best_step"]), int(state["bad_evals"])
        self.log = list(state.get("log", []))
        logger.info("resumed ranker training from %s", path)
        return True


def _no_grad() -> Any:
    torch = require("torch", "lm")

    return torch.no_grad()
