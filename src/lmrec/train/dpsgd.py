"""DP-SGD through Opacus, with one *user* as the unit of privacy.

Every step samples users by Poisson sampling (each user independently with
probability ``q``); a user's whole contribution to the step -- all their training
pairs -- is one Opacus "sample", so its gradient on the shared (item-side) parameters
is clipped to ``clip`` as a unit and Gaussian noise of ``noise_multiplier * clip`` is
added to the sum. The RDP accountant of Opacus turns (q, noise multiplier, steps) into
the epsilon spent at the given delta; ``make_private_with_epsilon`` picks the noise
multiplier that spends exactly the target epsilon over the planned epochs.

Parameters that belong to one user (a BPR user vector) are *not* part of the private
module: each is updated only from its own user's data and the private item side, and
is never published (it scores only that user). This is joint differential privacy
(the "billboard" model of Kearns et al. 2014, as in Jain et al. 2018 and Chien et al.
2021): what any other user, or the item side, reveals about a user is (epsilon,
delta)-DP.

:func:`train_per_user` is the same user-level DP-SGD for any torch model whose loss
splits into one term per user (the two-tower and sequence models): per-user gradients
over all its weights come from ``torch.func`` (``vmap`` of ``grad``) rather than from
Opacus's per-layer hooks, and Opacus samples, clips, noises and accounts.

torch and opacus are imported inside functions (``pip install lmrec[privacy]``).

Stability: experimental. .. versionadded:: 0.2.0
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from lmrec._optional import require
from lmrec._progress import progress

__all__ = [
    "DPSGDResult",
    "epsilon_for",
    "fit_bpr_private",
    "make_private_users",
    "train_per_user",
]


@dataclass
class DPSGDResult:
    """Trained arrays and the privacy report of a DP-SGD fit."""

    arrays: dict[str, np.ndarray]
    report: dict[str, Any]
    history: list[dict[str, float]]


def make_private_users(
    torch: Any,
    module: Any,
    optimizer: Any,
    *,
    n_users: int,
    users_per_step: int,
    epochs: int,
    epsilon: float,
    delta: float,
    clip: float,
    seed: int,
) -> tuple[Any, Any, Any, Any]:
    """Wrap ``module``/``optimizer`` with Opacus for user-level DP-SGD.

    Returns ``(module, optimizer, loader, engine)``; ``loader`` yields Poisson-sampled
    batches of user indices (expected size ``users_per_step``).
    """
    require("opacus", "privacy")
    from opacus import PrivacyEngine

    users = torch.utils.data.TensorDataset(torch.arange(n_users))
    loader = torch.utils.data.DataLoader(users, batch_size=min(users_per_step, n_users))
    engine = PrivacyEngine(accountant="rdp")
    gen = torch.Generator().manual_seed(seed)
    with warnings.catch_warnings():  # opacus warns about secure_mode, which we state in docs
        warnings.simplefilter("ignore")
        module, optimizer, loader = engine.make_private_with_epsilon(
            module=module,
            optimizer=optimizer,
            data_loader=loader,
            target_epsilon=epsilon,
            target_delta=delta,
            epochs=epochs,
            max_grad_norm=clip,
            poisson_sampling=True,
            noise_generator=gen,
        )
    # the loader's sampler draws with its own generator too: seed it
    sampler = getattr(loader, "batch_sampler", None)
    if sampler is not None and hasattr(sampler, "generator"):
        sampler.generator = torch.Generator().manual_seed(seed + 1)
    return module, optimizer, loader, engine


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


def fit_bpr_private(
    x: sp.csr_matrix,
    *,
    factors: int,
    epochs: int,
    users_per_step: int,
    pairs_per_user: int,
    lr: float,
    reg: float,
    init_std: float,
    epsilon: float,
    delta: float,
    clip: float,
    seed: int,
    device: Any = "cpu",
) -> DPSGDResult:
    """BPR matrix factorisation with user-level DP-SGD on the item side.

    Each step, every sampled user contributes ``pairs_per_user`` (positive, uniform
    negative) pairs drawn from their history; the per-user loss is their mean BPR loss
    plus the L2 penalty. Item factors and biases train through Opacus; user vectors with
    plain Adam from their own pairs. After the private epochs the item side is frozen and
    every user vector gets ``epochs`` more full passes (the per-user phase).
    """
    torch = require("torch", "torch")
    require("opacus", "privacy")
    n_users, n_items = x.shape
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    item_side = _bpr_item_module(torch)(n_items, factors, init_std, gen).to(device)
    users = (torch.randn(n_users, factors, generator=gen) * init_std).to(device)
    users.requires_grad_(True)
    item_opt = torch.optim.Adam(item_side.parameters(), lr=lr)
    user_opt = torch.optim.Adam([users], lr=lr)
    module, item_opt, loader, engine = make_private_users(
        torch,
        item_side,
        item_opt,
        n_users=n_users,
        users_per_step=users_per_step,
        epochs=epochs,
        epsilon=epsilon,
        delta=delta,
        clip=clip,
        seed=seed,
    )
    indptr, indices = x.indptr, x.indices

    def batch(uidx: np.ndarray) -> tuple[Any, Any, Any]:
        counts = np.diff(indptr)[uidx]
        offs = (rng.random((len(uidx), pairs_per_user)) * counts[:, None]).astype(np.int64)
        pos = indices[indptr[uidx][:, None] + offs]
        neg = rng.integers(0, n_items, size=pos.shape)
        t = lambda a: torch.from_numpy(np.ascontiguousarray(a, np.int64)).to(device)  # noqa: E731
        return t(uidx), t(pos), t(neg)

    history: list[dict[str, float]] = []
    with progress(total=2 * epochs, desc="bpr (dp)", unit="epoch") as bar:
        for epoch in range(epochs):
            total, n = 0.0, 0
            for (uidx_t,) in loader:
                uidx = uidx_t.numpy().astype(np.int64)
                item_opt.zero_grad()
                user_opt.zero_grad()
                if len(uidx):
                    u, pos, neg = batch(uidx)
                    loss = module(users[u], pos, neg, reg).mean()
                    loss.backward()
                    total += float(loss.detach()) * len(uidx)
                    n += len(uidx)
                else:  # an empty Poisson batch still takes a (pure-noise) step
                    module(
                        users[:0], *(torch.zeros((0, pairs_per_user), dtype=torch.int64),) * 2, reg
                    ).sum().backward()
                item_opt.step()
                user_opt.step()
            history.append({"epoch": float(epoch + 1), "loss": total / max(n, 1)})
            bar.update(1)
        # per-user phase: item side frozen, each user vector fitted on its own data
        frozen = item_side._module if hasattr(item_side, "_module") else item_side
        for p in frozen.parameters():
            p.requires_grad_(False)
        for _ in range(epochs):
            for start in range(0, n_users, 512):
                uidx = np.arange(start, min(start + 512, n_users))
                u, pos, neg = batch(uidx)
                user_opt.zero_grad()
                frozen(users[u], pos, neg, reg).mean().backward()
                user_opt.step()
            bar.update(1)
    report = _report(
        engine.accountant,
        item_opt.noise_multiplier,
        delta=delta,
        clip=clip,
        n_users=n_users,
        mechanism="DP-SGD (Opacus) on item factors and biases; user vectors per user (joint DP)",
    )
    to_np = lambda t: np.ascontiguousarray(t.detach().float().cpu().numpy(), np.float32)  # noqa: E731
    arrays = {
        "user_factors": to_np(users),
        "item_factors": to_np(frozen.item.weight),
        "item_bias": to_np(frozen.bias.weight[:, 0]),
    }
    return DPSGDResult(arrays, report, history)


def _bpr_item_module(torch: Any) -> Any:
    """The item side of BPR as an ``nn.Module`` Opacus can compute per-user gradients of."""
    nn = torch.nn

    class BPRItems(nn.Module):  # type: ignore[name-defined]  # base class of a module loaded at run time
        def __init__(self, n_items: int, factors: int, init_std: float, gen: Any) -> None:
            super().__init__()
            self.item = nn.Embedding(n_items, factors)
            self.bias = nn.Embedding(n_items, 1)
            with torch.no_grad():
                self.item.weight.copy_(torch.randn(n_items, factors, generator=gen) * init_std)
                self.bias.weight.zero_()

        def forward(self, u: Any, pos: Any, neg: Any, reg: float) -> Any:
            """Per-user loss (B,): mean BPR loss of the user's pairs plus the L2 penalty."""
            qi, qj = self.item(pos), self.item(neg)  # (B, P, F)
            bi, bj = self.bias(pos)[..., 0], self.bias(neg)[..., 0]
            x = (u[:, None, :] * (qi - qj)).sum(-1) + bi - bj
            l2 = u.square().sum(-1) + (qi.square().sum(-1) + qj.square().sum(-1)).mean(-1)
            return -torch.nn.functional.logsigmoid(x).mean(-1) + reg * l2

    return BPRItems


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
