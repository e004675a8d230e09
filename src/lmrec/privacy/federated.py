"""Federated BPR matrix factorisation on Flower: user vectors never leave their client.

Each Flower client holds some users' interactions (one user per client is the
on-device case) and their user vectors. A round (FedAvg, McMahan et al. 2017; for
recommenders, Ammad-ud-din et al. 2019 "Federated collaborative filtering"):

1. the server sends the item factors ``V`` and biases ``b``;
2. every client runs ``local_epochs`` of BPR SGD on its own users (their vectors and a
   local copy of ``V``, ``b``) and sends back only the new ``V``, ``b``;
3. the server averages them, weighted by the clients' interaction counts.

With ``dp_noise`` the aggregation is Flower's
``DifferentialPrivacyServerSideFixedClipping``: each client's update is clipped to
``dp_clip`` and Gaussian noise of ``dp_noise * dp_clip / n_clients`` is added to the
average, which makes the published item side client-level DP; the epsilon after the
rounds (RDP accountant) is reported.

Evaluation is federated too: each client ranks the items for its own users and sends
back only its NDCG sum.

:func:`train_federated` runs the Flower server loop on one machine with in-process
clients (no Ray needed); :func:`start_server` and :func:`start_client` are the real
gRPC server and clients (``lmrec federated server|client``).

Stability: experimental. .. versionadded:: 0.2.0
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from lmrec._optional import require
from lmrec.data.dataset import Dataset
from lmrec.errors import ConfigError

__all__ = ["FederatedConfig", "FederatedResult", "make_client", "train_federated"]


@dataclass(frozen=True)
class FederatedConfig:
    """Settings of federated BPR (model and rounds)."""

    factors: int = 64
    rounds: int = 30
    local_epochs: int = 1
    lr: float = 0.05
    reg: float = 0.002
    batch_size: int = 64
    init_std: float = 0.1
    dp_noise: float | None = None
    dp_clip: float = 1.0
    dp_delta: float = 1e-5
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("factors", "rounds", "local_epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be >= 1; got {getattr(self, name)}.")
        if self.dp_noise is not None and self.dp_noise <= 0:
            raise ConfigError(f"dp_noise must be > 0 (or None); got {self.dp_noise}.")
        if not 0 < self.dp_delta < 1:
            raise ConfigError(f"dp_delta must be in (0, 1); got {self.dp_delta}.")


@dataclass
class FederatedResult:
    """Item side of the trained model, per-round metrics and traffic."""

    item_factors: np.ndarray
    item_bias: np.ndarray
    rounds: int
    n_clients: int
    ndcg_at_10: float
    history: list[dict[str, float]] = field(default_factory=list)
    bytes_up_per_client_round: float = 0.0
    bytes_down_per_client_round: float = 0.0
    privacy: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Summary numbers (JSON-able)."""
        return {
            "rounds": self.rounds,
            "n_clients": self.n_clients,
            "ndcg@10": self.ndcg_at_10,
            "bytes_up_per_client_round": self.bytes_up_per_client_round,
            "bytes_down_per_client_round": self.bytes_down_per_client_round,
            "bytes_per_client_total": self.rounds
            * (self.bytes_up_per_client_round + self.bytes_down_per_client_round),
            "privacy": self.privacy,
            "history": self.history,
        }


class LocalBPR:
    """One client's users: their training and test rows and their (private) vectors."""

    def __init__(
        self, train: sp.csr_matrix, test: sp.csr_matrix | None, cfg: FederatedConfig, seed: int
    ) -> None:
        self.train, self.test, self.cfg = sp.csr_matrix(train), test, cfg
        self.rng = np.random.default_rng(seed)
        self.users = self.rng.normal(0.0, cfg.init_std, (train.shape[0], cfg.factors))
        self.u_idx = np.repeat(np.arange(train.shape[0]), np.diff(self.train.indptr))
        self.i_idx = self.train.indices.astype(np.int64)

    def fit(self, v: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Local BPR SGD epochs; updates the user vectors in place, returns new ``V``, ``b``."""
        cfg, rng = self.cfg, self.rng
        v, b, users = v.astype(np.float64, copy=True), b.astype(np.float64, copy=True), self.users
        n_items = v.shape[0]
        for _ in range(cfg.local_epochs):
            order = rng.permutation(len(self.u_idx))
            for start in range(0, len(order), cfg.batch_size):
                rows = order[start : start + cfg.batch_size]
                u, i = self.u_idx[rows], self.i_idx[rows]
                j = rng.integers(0, n_items, len(rows))
                pu, qi, qj = users[u], v[i], v[j]
                x = np.einsum("bf,bf->b", pu, qi - qj) + b[i] - b[j]
                g = 1.0 / (1.0 + np.exp(np.clip(x, -30, 30)))  # sigmoid(-x)
                np.add.at(users, u, cfg.lr * (g[:, None] * (qi - qj) - cfg.reg * pu))
                np.add.at(v, i, cfg.lr * (g[:, None] * pu - cfg.reg * qi))
                np.add.at(v, j, cfg.lr * (-g[:, None] * pu - cfg.reg * qj))
                np.add.at(b, i, cfg.lr * (g - cfg.reg * b[i]))
                np.add.at(b, j, cfg.lr * (-g - cfg.reg * b[j]))
        return v.astype(np.float32), b.astype(np.float32)

    def ndcg_sum(self, v: np.ndarray, b: np.ndarray, k: int = 10) -> tuple[float, int]:
        """Sum of NDCG@k over this client's users with test items, and their number."""
        from lmrec.eval.ranking import NDCG
        from lmrec.ops.topk import mask_rows, topk

        if self.test is None:
            return 0.0, 0
        has = np.flatnonzero(np.diff(self.test.indptr) > 0)
        if len(has) == 0:
            return 0.0, 0
        scores = (self.users[has] @ v.T.astype(np.float64) + b).astype(np.float32)
        mask_rows(scores, self.train[has])
        recs, _ = topk(scores, k)
        return float(NDCG(k).per_user(recs, self.test[has]).sum()), len(has)


def make_client(local: LocalBPR) -> Any:
    """A Flower ``NumPyClient`` around a :class:`LocalBPR` (parameters: ``[V, b]``)."""
    flwr = require("flwr", "privacy")

    class FedBPRClient(flwr.client.NumPyClient):  # type: ignore[name-defined]  # base class of a module loaded at run time
        def get_parameters(self, config: dict) -> list[np.ndarray]:
            raise ConfigError("The server initialises the item side; clients only refine it.")

        def fit(self, parameters: list[np.ndarray], config: dict) -> tuple:
            v, b = local.fit(parameters[0], parameters[1])
            return [v, b], int(local.train.nnz), {}

        def evaluate(self, parameters: list[np.ndarray], config: dict) -> tuple:
            total, n = local.ndcg_sum(parameters[0], parameters[1])
            return 0.0, max(n, 1), {"ndcg_sum": total, "n_users": n}

    return FedBPRClient()


def partition(
    train: Dataset, test: Dataset | None, n_clients: int, seed: int
) -> list[tuple[sp.csr_matrix, sp.csr_matrix | None]]:
    """Split the users at random into ``n_clients`` groups; each gets its rows of both sets."""
    if not 1 <= n_clients <= train.n_users:
        raise ConfigError(f"n_clients must be in 1..{train.n_users} (users); got {n_clients}.")
    x = sp.csr_matrix(train.matrix, dtype=np.float32)
    t = None
    if test is not None:
        t = _aligned_test(train, test)
    groups = np.array_split(np.random.default_rng(seed).permutation(train.n_users), n_clients)
    return [(x[np.sort(g)], None if t is None else t[np.sort(g)]) for g in groups]


def _aligned_test(train: Dataset, test: Dataset) -> sp.csr_matrix:
    """Test interactions in the training set's index space (unknown ids dropped)."""
    f = test.to_frame()
    u = train.user_ids.index(f["user"].to_numpy(), on_unknown="ignore", kind="user")
    i = train.item_ids.index(f["item"].to_numpy(), on_unknown="ignore", kind="item")
    ok = (u >= 0) & (i >= 0)
    return sp.csr_matrix(
        (np.ones(int(ok.sum()), np.float32), (u[ok], i[ok])), shape=(train.n_users, train.n_items)
    )


def _strategy(cfg: FederatedConfig, n_items: int, n_clients: int, *, min_clients: int) -> Any:
    """FedAvg over every client each round (optionally wrapped in Flower's server-side DP)."""
    flwr = require("flwr", "privacy")
    from flwr.common import ndarrays_to_parameters
    from flwr.server.strategy import DifferentialPrivacyServerSideFixedClipping, FedAvg, Strategy

    rng = np.random.default_rng(cfg.seed)
    init = [
        rng.normal(0.0, cfg.init_std, (n_items, cfg.factors)).astype(np.float32),
        np.zeros(n_items, np.float32),
    ]

    def metrics(pairs: list[tuple[int, dict]]) -> dict:
        total = sum(m["ndcg_sum"] for _, m in pairs)
        n = sum(m["n_users"] for _, m in pairs)
        return {"ndcg@10": total / max(n, 1), "n_users": n}

    class OrderedFedAvg(FedAvg):
        """FedAvg that sums the clients' results in the order of their ids.

        Flower collects the results of a round in a set of finished futures, so their
        order (and with it the float rounding of the weighted sum) changes from run to
        run; sorting them first makes a seeded run repeat bit for bit.
        """

        def aggregate_fit(self, server_round: int, results: list, failures: list) -> Any:
            return super().aggregate_fit(server_round, _by_client_id(results), failures)

        def aggregate_evaluate(self, server_round: int, results: list, failures: list) -> Any:
            return super().aggregate_evaluate(server_round, _by_client_id(results), failures)

    strategy: Strategy = OrderedFedAvg(
        fraction_fit=1.0,
        fraction_evaluate=1.0,
        min_fit_clients=min_clients,
        min_evaluate_clients=min_clients,
        min_available_clients=min_clients,
        initial_parameters=ndarrays_to_parameters(init),
        evaluate_metrics_aggregation_fn=metrics,
    )
    if cfg.dp_noise is not None:
        strategy = DifferentialPrivacyServerSideFixedClipping(
            strategy,
            noise_multiplier=cfg.dp_noise,
            clipping_norm=cfg.dp_clip,
            num_sampled_clients=n_clients,
        )
    del flwr
    return strategy


def _by_client_id(results: list) -> list:
    """A round's ``(client proxy, result)`` pairs sorted by client id."""
    return sorted(results, key=lambda pair: pair[0].cid)


def _privacy(cfg: FederatedConfig, n_clients: int) -> dict[str, Any] | None:
    if cfg.dp_noise is None:
        return None
    from lmrec.train.dpsgd import epsilon_for

    return {
        "mechanism": "Flower DifferentialPrivacyServerSideFixedClipping (Gaussian on the "
        "average of clipped client updates)",
        "unit": "client",
        "accountant": "RDP (Opacus), every client every round",
        "epsilon": epsilon_for(cfg.dp_noise, 1.0, cfg.rounds, cfg.dp_delta),
        "delta": cfg.dp_delta,
        "clip": cfg.dp_clip,
        "noise_multiplier": cfg.dp_noise,
        "n_clients": n_clients,
    }


def train_federated(
    train: Dataset,
    test: Dataset | None = None,
    *,
    n_clients: int = 100,
    config: FederatedConfig | None = None,
) -> FederatedResult:
    """Federated BPR as a Flower simulation on one machine (in-process clients, Flower's
    server loop and strategy); see the module docstring."""
    require("flwr", "privacy")
    from flwr.server import Server, SimpleClientManager

    cfg = config or FederatedConfig()
    parts = partition(train, test, n_clients, cfg.seed)
    seeds = np.random.SeedSequence(cfg.seed).spawn(n_clients)
    manager = SimpleClientManager()
    proxies = []
    for c, (x, t) in enumerate(parts):
        local = LocalBPR(x, t, cfg, int(seeds[c].generate_state(1)[0]))
        proxy = _InProcessProxy(str(c), make_client(local))
        proxies.append(proxy)
        manager.register(proxy)
    server = Server(
        client_manager=manager,
        strategy=_strategy(cfg, train.n_items, n_clients, min_clients=n_clients),
    )
    with _seeded_global_numpy(cfg.seed):
        history, _ = _quiet_fit(server, cfg.rounds)
    from flwr.common import parameters_to_ndarrays

    v, b = parameters_to_ndarrays(server.parameters)
    per_round = [
        {"round": float(r), "ndcg@10": float(m)}
        for r, m in history.metrics_distributed.get("ndcg@10", [])
    ]
    up = sum(p.bytes_up for p in proxies) / max(1, cfg.rounds * n_clients)
    down = sum(p.bytes_down for p in proxies) / max(1, cfg.rounds * n_clients)
    return FederatedResult(
        item_factors=v,
        item_bias=b,
        rounds=cfg.rounds,
        n_clients=n_clients,
        ndcg_at_10=per_round[-1]["ndcg@10"] if per_round else float("nan"),
        history=per_round,
        bytes_up_per_client_round=up,
        bytes_down_per_client_round=down,
        privacy=_privacy(cfg, n_clients),
    )


@contextlib.contextmanager
def _seeded_global_numpy(seed: int) -> Iterator[None]:
    """NumPy's global generator seeded for the duration, and restored afterwards.

    Flower's server-side DP draws its Gaussian noise from ``np.random.normal`` (the global
    generator), so without this a run with ``dp_noise`` would give different numbers on
    every call; the caller's global state is put back untouched.
    """
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _quiet_fit(server: Any, rounds: int) -> Any:
    """Flower's server loop, with its per-round INFO logging turned down."""
    import logging

    from flwr.common.logger import FLOWER_LOGGER as flwr_logger

    level = flwr_logger.level
    flwr_logger.setLevel(logging.WARNING)
    try:
        return server.fit(num_rounds=rounds, timeout=None)
    finally:
        flwr_logger.setLevel(level)


def _proxy_base() -> type:
    require("flwr", "privacy")
    from flwr.server.client_proxy import ClientProxy

    return ClientProxy


class _InProcessProxy:
    """Delivers Flower's messages to a client object in this process, counting the bytes
    of the parameters each way (what a gRPC client would send and receive)."""

    def __new__(cls, cid: str, client: Any) -> Any:
        from flwr.common import DisconnectRes

        base = _proxy_base()

        class Proxy(base):  # type: ignore[misc,valid-type]  # base class loaded at run time
            def __init__(self) -> None:
                super().__init__(cid)
                self.client = client.to_client()
                self.bytes_up = 0
                self.bytes_down = 0

            def get_properties(self, ins: Any, timeout: Any, group_id: Any) -> Any:
                return self.client.get_properties(ins)

            def get_parameters(self, ins: Any, timeout: Any, group_id: Any) -> Any:
                return self.client.get_parameters(ins)

            def fit(self, ins: Any, timeout: Any, group_id: Any) -> Any:
                self.bytes_down += sum(len(t) for t in ins.parameters.tensors)
                res = self.client.fit(ins)
                self.bytes_up += sum(len(t) for t in res.parameters.tensors)
                return res

            def evaluate(self, ins: Any, timeout: Any, group_id: Any) -> Any:
                return self.client.evaluate(ins)

            def reconnect(self, ins: Any, timeout: Any, group_id: Any) -> Any:
                return DisconnectRes(reason="")

        return Proxy()


def start_server(
    address: str, *, n_items: int, n_clients: int, config: FederatedConfig | None = None
) -> FederatedResult:
    """Run the real Flower gRPC server at ``address`` until ``config.rounds`` rounds with
    ``n_clients`` connected clients are done; returns the item side."""
    flwr = require("flwr", "privacy")
    from flwr.common import parameters_to_ndarrays
    from flwr.compat.server.app import start_server as flwr_start_server
    from flwr.server import Server, ServerConfig, SimpleClientManager

    cfg = config or FederatedConfig()
    server = Server(
        client_manager=SimpleClientManager(),
        strategy=_strategy(cfg, n_items, n_clients, min_clients=n_clients),
    )
    with _seeded_global_numpy(cfg.seed):
        history = flwr_start_server(
            server_address=address, server=server, config=ServerConfig(num_rounds=cfg.rounds)
        )
    v, b = parameters_to_ndarrays(server.parameters)
    scores = history.metrics_distributed.get("ndcg@10", [])
    del flwr
    return FederatedResult(
        v,
        b,
        cfg.rounds,
        n_clients,
        float(scores[-1][1]) if scores else float("nan"),
        [{"round": float(r), "ndcg@10": float(m)} for r, m in scores],
        privacy=_privacy(cfg, n_clients),
    )


def start_client(
    address: str,
    train: sp.csr_matrix,
    test: sp.csr_matrix | None = None,
    *,
    config: FederatedConfig | None = None,
    seed: int = 0,
) -> None:
    """Run one real Flower client holding ``train`` (its users' rows over the catalog)
    against the server at ``address``; returns when the server ends the run."""
    require("flwr", "privacy")
    from flwr.compat.client.app import start_client as flwr_start_client

    cfg = config or FederatedConfig()
    client = make_client(LocalBPR(train, test, cfg, seed))
    flwr_start_client(server_address=address, client=client.to_client(), insecure=True)
