"""Federated BPR on Flower (issue 21.3): the simulation learns, only item parameters travel,
and the real gRPC server and clients run the same rounds."""

from __future__ import annotations

import dataclasses
import socket
import threading

import numpy as np
import pytest

from lmrec.errors import ConfigError
from lmrec.testing import checkerboard

pytest.importorskip("flwr")

from lmrec.privacy.federated import (  # noqa: E402
    FederatedConfig,
    partition,
    start_client,
    start_server,
    train_federated,
)


def test_simulation_learns_and_sends_only_items():
    train = checkerboard(n_users=60, n_items=30, density=0.5, seed=0)
    test = checkerboard(n_users=60, n_items=30, density=0.5, seed=1)
    cfg = FederatedConfig(factors=8, rounds=6, lr=0.1, batch_size=16, seed=0)
    result = train_federated(train, test, n_clients=6, config=cfg)
    assert result.history[-1]["ndcg@10"] > result.history[0]["ndcg@10"]
    # what goes up per client and round: V (30 x 8) and b (30) as float32 .npy (a header
    # of at most 200 bytes each), nothing per user
    assert 30 * 9 * 4 <= result.bytes_up_per_client_round <= 30 * 9 * 4 + 400
    assert result.item_factors.shape == (30, 8)
    noisy = train_federated(
        train, test, n_clients=6, config=FederatedConfig(factors=8, rounds=3, dp_noise=1.0, seed=0)
    )
    assert noisy.privacy["unit"] == "client" and noisy.privacy["epsilon"] > 0


def test_server_side_noise_is_seeded_and_leaves_the_global_generator_alone():
    train = checkerboard(n_users=60, n_items=30, density=0.5, seed=0)
    cfg = FederatedConfig(factors=8, rounds=3, dp_noise=1.0, seed=0)
    np.random.seed(123)
    expected_next = np.random.random()
    np.random.seed(123)
    a = train_federated(train, None, n_clients=6, config=cfg)
    assert np.random.random() == expected_next  # the caller's global state, untouched
    b = train_federated(train, None, n_clients=6, config=cfg)
    # bit for bit: the clients' updates are summed in the order of their ids, not in the
    # order Flower's threads happen to finish
    np.testing.assert_array_equal(a.item_factors, b.item_factors)
    c = train_federated(train, None, n_clients=6, config=dataclasses.replace(cfg, seed=1))
    assert np.abs(a.item_factors - c.item_factors).max() > 0.01  # other noise


def test_plain_fedavg_repeats_bit_for_bit():
    train = checkerboard(n_users=60, n_items=30, density=0.5, seed=0)
    cfg = FederatedConfig(factors=8, rounds=4, lr=0.1, batch_size=16, seed=0)
    runs = [train_federated(train, train, n_clients=12, config=cfg) for _ in range(3)]
    for other in runs[1:]:
        np.testing.assert_array_equal(runs[0].item_factors, other.item_factors)
        np.testing.assert_array_equal(runs[0].item_bias, other.item_bias)
        assert runs[0].history == other.history


def test_bad_settings():
    with pytest.raises(ConfigError, match="n_clients"):
        partition(checkerboard(), None, 0, 0)
    with pytest.raises(ConfigError, match="dp_noise"):
        FederatedConfig(dp_noise=0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_real_server_and_clients():
    train = checkerboard(n_users=20, n_items=30, seed=0)
    parts = partition(train, None, 2, seed=0)
    cfg = FederatedConfig(factors=4, rounds=2, seed=0)
    address = f"127.0.0.1:{_free_port()}"
    # Flower's server installs signal handlers, so it runs in the main thread; the
    # clients connect from threads (retrying until the server is up).
    clients = [
        threading.Thread(
            target=start_client, args=(address, x), daemon=True, kwargs={"config": cfg, "seed": i}
        )
        for i, (x, _) in enumerate(parts)
    ]
    for c in clients:
        c.start()
    result = start_server(address, n_items=30, n_clients=2, config=cfg)
    for c in clients:
        c.join(timeout=60)
    assert not any(c.is_alive() for c in clients), "a Flower client did not finish"
    assert result.item_factors.shape == (30, 4) and np.isfinite(result.item_factors).all()
