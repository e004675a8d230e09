"""Hot reload, rollback, requests in flight, metrics, and the CLI."""

from __future__ import annotations

import argparse
import shutil
import threading

import pytest
from fastapi.testclient import TestClient


def test_reload_swaps_version_and_rollback_restores_it(client, models_root):
    v1 = client.get("/v1/models").json()["models"][0]["version"]
    r = client.post("/v1/models/reload", json={"path": str(models_root / "ease_v2")})
    assert r.status_code == 200
    v2 = r.json()["version"]
    assert v2 != v1
    assert client.post("/v1/recommend", json={"user": "u0"}).json()["model_version"] == v2
    listed = client.get("/v1/models").json()["models"]
    assert [m["version"] for m in listed] == [v2, v1] and listed[0]["current"]
    assert client.post("/v1/models/rollback").json()["version"] == v1
    assert client.post("/v1/recommend", json={"user": "u0"}).json()["model_version"] == v1


def test_rollback_without_previous_is_409(client):
    assert client.post("/v1/models/rollback").status_code == 409


def test_broken_model_is_refused_and_old_keeps_serving(client, models_root, tmp_path):
    broken = models_root / "broken"
    shutil.copytree(models_root / "ease_v2", broken, dirs_exist_ok=True)
    with open(broken / "arrays.safetensors", "r+b") as fh:
        fh.seek(200)
        fh.write(b"garbage!")
    v1 = client.get("/v1/models").json()["models"][0]["version"]
    r = client.post("/v1/models/reload", json={"path": str(broken)})
    assert r.status_code == 422 and "refused" in r.json()["detail"]
    r = client.post("/v1/models/reload", json={"path": str(models_root / "missing")})
    assert r.status_code == 422
    r = client.post("/v1/models/reload", json={"path": str(tmp_path)})
    assert r.status_code == 422 and "reload_root" in r.json()["detail"]
    r = client.post("/v1/recommend", json={"user": "u0"})
    assert r.status_code == 200 and r.json()["model_version"] == v1


def test_reload_while_requests_are_in_flight(make_app, models_root):
    errors: list[object] = []
    versions: set[str] = set()
    stop = threading.Event()
    with TestClient(make_app("ease_big", auth=False)) as c:

        def hammer(i: int) -> None:
            n = 0
            while not stop.is_set() and n < 400:
                n += 1
                payload = (
                    {"user": f"u{(i * 7 + n) % 3000}", "k": 10} if n % 3 else {"items": ["i0"]}
                )
                r = c.post("/v1/recommend", json=payload)
                if r.status_code != 200:
                    errors.append((r.status_code, r.text))
                else:
                    versions.add(r.json()["model_version"])

        threads = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for path in ("ease", "ease_big", "ease_v2", "ease_big"):
            assert (
                c.post("/v1/models/reload", json={"path": str(models_root / path)}).status_code
                == 200
            )
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not errors
    assert len(versions) >= 2


def test_a_request_keeps_its_model_across_a_swap(models_root):
    from lmrec.serve.model_store import ModelStore

    store = ModelStore.open(models_root / "ease", allowed_root=models_root)
    held = store.current
    store.reload(models_root / "ease_v2")
    assert store.current is not held and store.previous is held
    items, _ = held.model.recommend_indices([0], 3)  # the old version still works
    assert items.shape == (1, 3)


def test_metrics_expose_latency_errors_cache_model_and_store(client):
    client.post("/v1/recommend", json={"items": ["i0"], "k": 3})
    client.post("/v1/recommend", json={"items": ["i0"], "k": 3})
    client.post("/v1/recommend", json={"user": "u0", "k": 1000})
    client.post(
        "/v1/feedback", json={"events": [{"user": "u", "item": "i1", "idempotency_key": "m"}]}
    )
    text = client.get("/metrics").text
    assert 'lmrec_request_latency_seconds_bucket{endpoint="/v1/recommend"' in text
    assert 'lmrec_errors_total{endpoint="/v1/recommend",kind="client"} 1.0' in text
    assert "lmrec_cache_hit_ratio 0.5" in text
    assert 'lmrec_model_info{name="ease",version="ease-' in text
    assert "lmrec_store_write_latency_seconds_count 1.0" in text
    assert "lmrec_startup_seconds" in text
    assert 'lmrec_recommendations_total{fallback="false",strategy="fold-in"}' in text


# ---------------------------------------------------------------------- CLI
def _parser():
    from lmrec.cli import serve_cmds

    p = argparse.ArgumentParser(prog="lmrec")
    serve_cmds.register(p.add_subparsers(dest="command", required=True))
    return p


def test_cli_create_key_prints_key_once(tmp_path, capsys):
    from lmrec.serve.auth import KeyRing

    keys = tmp_path / "k.json"
    args = _parser().parse_args(["serve", "--create-key", "write", "--keys", str(keys)])
    assert args.func(args) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("lmrec_") and key not in keys.read_text()
    assert KeyRing.load(keys).verify(key).role == "write"


def test_cli_serve_refuses_to_start_without_keys(models_root, tmp_path):
    from lmrec.errors import ConfigError

    args = _parser().parse_args(
        ["serve", str(models_root / "ease"), "--keys", str(tmp_path / "none.json")]
    )
    with pytest.raises(ConfigError, match="--create-key"):
        args.func(args)


def test_cli_serve_settings_from_config_file_and_flags(models_root, tmp_path):
    from lmrec.cli.serve_cmds import settings_from_args

    cfg = tmp_path / "serve.toml"
    cfg.write_text(f'[serve]\nmodel_dir = "{models_root / "ease"}"\nport = 9000\nmax_k = 50\n')
    args = _parser().parse_args(["serve", "--config", str(cfg), "--port", "9100", "--no-auth"])
    s = settings_from_args(args)
    assert (s.port, s.max_k, s.auth) == (9100, 50, False)


def test_cli_retrain(models_root, tmp_path):
    from lmrec.serve.events import Event, EventStore

    url = f"sqlite:///{tmp_path / 'ev.db'}"
    EventStore(url).write([Event("a", "zz", "i1", "click", 1.0, 0.0)])
    out = tmp_path / "v2"
    args = _parser().parse_args(
        ["retrain", "--store", url, "--base", str(models_root / "ease"), "--out", str(out)]
    )
    assert args.func(args) == 0 and (out / "manifest.json").exists()


@pytest.mark.parametrize(
    "path",
    ["models/a\x00b", "\x00", "ok/../\x01x", "a\nb", "x" * 5000, ""],
    ids=["nul", "only-nul", "control", "newline", "too-long", "empty"],
)
def test_bad_bytes_in_the_reload_path_are_4xx_not_500(make_app, path):
    with TestClient(make_app(auth=False), raise_server_exceptions=False) as c:
        r = c.post("/v1/models/reload", json={"path": path})
        assert r.status_code == 422, r.text
        assert "path" in r.json()["detail"]
        assert c.post("/v1/recommend", json={"user": "u0"}).status_code == 200


def test_model_store_refuses_a_path_with_a_nul_byte(models_root):
    from lmrec.errors import ConfigError
    from lmrec.serve.model_store import ModelStore

    store = ModelStore.open(models_root / "ease", allowed_root=models_root)
    with pytest.raises(ConfigError, match="reload path"):
        store.resolve(str(models_root / "ease\x00x"))
