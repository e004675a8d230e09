"""DP-SGD through Opacus, with one *user* as the unit of privacy.

Every step samples users by Poisson sampling (each user independently with
probability ``q``); a user's whole contribution to the step -- all their training
items -- is one "sample", so its gradient on the private parameters is clipped to
``clip`` as a unit and Gaussian noise of ``noise_multiplier * clip`` is added to the
sum. The RDP accountant of Opacus turns (q, noise multiplier, steps) into the epsilon
spent at the given delta; ``get_noise_multiplier`` picks the noise multiplier that
spends exactly the target epsilon over the planned epochs.

Per-user gradients over all the trained weights come from ``torch.func`` (``vmap`` of
``grad``) rather than from Opacus's per-layer hooks, so :func:`train_per_user` serves
any torch model whose loss splits into one term per user (BPR, the two-tower and
sequence models); Opacus samples, clips, noises and accounts. What a model derives
afterwards for one user from that user's own data and the private weights (a user
vector) scores only that user: joint differential privacy (the "billboard" model of
Kearns et al. 2014, as in Jain et al. 2018 and Chien et al. 2021).

torch and opacus are imported inside functions (``pip install lmrec[privacy]``).

Stability: experimental. .. versionadded:: 0.2.0
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from lmrec._optional import require
from lmrec._progress import progress

__all__ = [
    "epsilon_for",
    "train_per_user",
]


def _report(
    accountant: Any,
    noise_multiplier: float,
    *,
    delta: float,
    clip: float,
    n_users: int,
    mechanism: str,
) -> dict[str, Any]:
    """What the accountant recorded: (noise multiplier, sample rate, steps) and the epsilon."""
    history = accountant.history
    return {
        "mechanism": mechanism,
        "unit": "user",
        "accountant": "RDP (Opacus), Poisson sampling of users",
        "epsilon": float(accountant.get_epsilon(delta)) if history else 0.0,
        "delta": float(delta),
        "clip": float(clip),
        "noise_multiplier": float(noise_multiplier),
        "sample_rate": float(history[-1][1]) if history else 0.0,
        "steps": int(sum(h[2] for h in history)),
        "n_users": int(n_users),
    }


def epsilon_for(noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> float:
    """Epsilon of ``steps`` Poisson-subsampled Gaussian steps under the RDP accountant of
    Opacus (for tests and for planning a budget)."""
    require("opacus", "privacy")
    from opacus.accountants import RDPAccountant

    if steps == 0:
        return 0.0
    acc = RDPAccountant()
    acc.history = [(noise_multiplier, sample_rate, steps)]
    return float(acc.get_epsilon(delta))


def train_per_user(
    torch: Any,
    params: dict[str, Any],
    user_loss: Callable[..., Any],
    draw: Callable[[np.ndarray], tuple[Any, ...]],
    *,
    n_users: int,
    users_per_step: int,
    epochs: int,
    lr: float,
    weight_decay: float,
    epsilon: float,
    delta: float,
    clip: float,
    seed: int,
    mechanism: str,
    desc: str,
    vectorize: bool = True,
) -> tuple[list[dict[str, float]], dict[str, Any]]:
    """User-level DP-SGD of any torch model whose loss splits into one term per user.

    ``params`` are the trainable leaf tensors (all of them are trained privately and
    updated in place); ``user_loss(params, *tensors)`` is one user's loss, a scalar, from
    that user's tensors (each with a leading batch dimension of 1); ``draw(uidx)`` gives
    the tensors of the sampled users (leading dimension ``len(uidx)``), in the same order.

    Per-user gradients are computed with ``torch.func`` (``vmap`` of ``grad``: any model,
    no per-layer rules), then the Opacus machinery does the rest: Poisson sampling of
    users (``UniformWithReplacementSampler``), the noise multiplier that spends exactly
    ``epsilon`` over the planned steps (``get_noise_multiplier``), per-user clipping to
    ``clip`` and Gaussian noise (``DPOptimizer``, mean reduction over the expected batch),
    and the RDP accountant. Returns the per-epoch history and the privacy report.
    ``vectorize=False`` takes the users' gradients one after the other instead of under
    ``vmap`` (for layers without batching rules, such as ``nn.GRU``).
    """
    require("opacus", "privacy")
    from opacus.accountants import RDPAccountant
    from opacus.accountants.utils import get_noise_multiplier
    from opacus.optimizers import DPOptimizer
    from opacus.utils.uniform_sampler import UniformWithReplacementSampler

    # as Opacus's DPDataLoader: q = 1 / (batches per epoch), int(1 / q) steps per epoch
    sample_rate = 1.0 / max(1, -(-n_users // max(1, users_per_step)))
    steps = epochs * int(1.0 / sample_rate)
    with warnings.catch_warnings():  # opacus warns about secure_mode, which we state in docs
        warnings.simplefilter("ignore")
        sigma = get_noise_multiplier(
            target_epsilon=epsilon, target_delta=delta, sample_rate=sample_rate, steps=steps
        )
        opt = DPOptimizer(
            torch.optim.AdamW(list(params.values()), lr=lr, weight_decay=weight_decay),
            noise_multiplier=sigma,
            max_grad_norm=clip,
            expected_batch_size=max(1, round(sample_rate * n_users)),
            loss_reduction="mean",
            generator=torch.Generator().manual_seed(seed),
        )
    accountant = RDPAccountant()
    opt.attach_step_hook(accountant.get_optimizer_hook_fn(sample_rate=sample_rate))
    sampler = UniformWithReplacementSampler(
        num_samples=n_users,
        sample_rate=sample_rate,
        generator=torch.Generator().manual_seed(seed + 1),
    )

    def one(p: dict[str, Any], *tensors: Any) -> tuple[Any, Any]:
        loss = user_loss(p, *(t.unsqueeze(0) for t in tensors))
        return loss, loss.detach()

    per_user = torch.func.grad(one, has_aux=True)

    def gradients(p: dict[str, Any], tensors: tuple[Any, ...]) -> tuple[dict[str, Any], Any]:
        """Per-user gradients (stacked on a first dimension) and losses of a batch."""
        if vectorize:
            in_dims = (None, *([0] * len(tensors)))
            with warnings.catch_warnings():  # ops without batching rules fall back to loops
                warnings.filterwarnings("ignore", message=".*performance drop")
                return torch.func.vmap(per_user, in_dims=in_dims)(p, *tensors)
        each = [per_user(p, *(t[r] for t in tensors)) for r in range(len(tensors[0]))]
        grads = {k: torch.stack([g[k] for g, _ in each]) for k in p}
        return grads, torch.stack([loss for _, loss in each])

    history: list[dict[str, float]] = []
    with progress(total=epochs, desc=f"{desc} (dp)", unit="epoch") as bar:
        for epoch in range(epochs):
            total, n = 0.0, 0
            for batch in sampler:
                uidx = np.asarray(batch, dtype=np.int64)
                opt.zero_grad()
                if len(uidx):
                    tensors = draw(uidx)
                    detached = {k: v.detach() for k, v in params.items()}
                    grads, losses = gradients(detached, tensors)
                    for k, v in params.items():
                        v.grad_sample = grads[k]
                    total += float(losses.sum())
                    n += len(uidx)
                else:  # an empty Poisson batch still takes a (pure-noise) step
                    for v in params.values():
                        v.grad_sample = torch.zeros((0, *v.shape), dtype=v.dtype, device=v.device)
                opt.step()
            history.append({"epoch": float(epoch + 1), "loss": total / max(n, 1)})
            bar.set_postfix(loss=f"{history[-1]['loss']:.4f}")
            bar.update(1)
    opt.zero_grad()
    report = _report(
        accountant, sigma, delta=delta, clip=clip, n_users=n_users, mechanism=mechanism
    )
    return history, report
