"""Model directories: crafted, broken, non-finite and linked files are refused with a typed error;
saves are atomic, durable and clean up after crashed writers (issue 16, plan checks 2-5)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from safetensors.numpy import load_file, save_file

from lmrec.errors import ModelFileError, NonFiniteModelError, StorageError
from lmrec.models import create_model, load_model
from lmrec.models.files import MANIFEST, sha256_file
from lmrec.testing import checkerboard


@pytest.fixture()
def ease_dir(tmp_path: Path) -> Path:
    return create_model("ease", {"l2": 10.0}).fit(checkerboard()).save(tmp_path / "ease")


def rewrite(model_dir: Path, name: str, change) -> None:
    """Apply ``change`` to one file of a model directory and re-sign the manifest, as an
    attacker who can write the directory would."""
    target = model_dir / name
    if name == "arrays.safetensors":
        arrays = load_file(str(target))
        change(arrays)
        save_file(arrays, str(target))
    elif name.endswith(".json"):
        target.write_text(json.dumps(change(json.loads(target.read_text()))))
    else:
        change(target)
    if name != MANIFEST:
        manifest = json.loads((model_dir / MANIFEST).read_text())
        for f in manifest["files"]:
            manifest["files"][f] = sha256_file(model_dir / f)
        (model_dir / MANIFEST).write_text(json.dumps(manifest))


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lmrec", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("bad", [10**8, -7])
def test_seen_index_out_of_range_is_refused_not_a_segfault(ease_dir, tmp_path, bad):
    def poke(a):
        a["__seen__.indices"][0] = bad

    rewrite(ease_dir, "arrays.safetensors", poke)
    with pytest.raises(ModelFileError, match="item indices outside"):
        load_model(ease_dir)
    out = run_cli(
        "recommend",
        "--model",
        str(ease_dir),
        "--all",
        "-k",
        "3",
        "--output",
        str(tmp_path / "r.csv"),
    )
    assert out.returncode == 2, out
    assert "Traceback" not in out.stderr and "item indices outside" in out.stderr


BROKEN = {
    "wrong-shape B": ("arrays.safetensors", lambda a: a.update(B=a["B"][:-1])),
    "missing B": ("arrays.safetensors", lambda a: a.pop("B")),
    "unexpected array": ("arrays.safetensors", lambda a: a.update(extra=np.zeros(3, np.float32))),
    "NaN in B": ("arrays.safetensors", lambda a: a["B"].__setitem__((0, 1), np.nan)),
    "int8 B": ("arrays.safetensors", lambda a: a.update(B=a["B"].astype(np.int8))),
    "pointers not monotone": (
        "arrays.safetensors",
        lambda a: a["__seen__.indptr"].__setitem__(1, 10**6),
    ),
    "manifest is a list": (MANIFEST, lambda m: [m]),
    "manifest without files": (MANIFEST, lambda m: {k: v for k, v in m.items() if k != "files"}),
    "config is a list": ("config.json", lambda c: [c]),
    "config with bad param": ("config.json", lambda c: {**c, "config": {**c["config"], "l2": -1}}),
    "config n_items lies": ("config.json", lambda c: {**c, "n_items": c["n_items"] + 1}),
    "two id columns": (
        "item_ids.parquet",
        lambda p: pd.DataFrame({"item": pd.read_parquet(p)["item"], "x": 1}).to_parquet(p),
    ),
    "duplicate ids": (
        "user_ids.parquet",
        lambda p: pd.DataFrame({"user": ["u0"] * len(pd.read_parquet(p))}).to_parquet(p),
    ),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_broken_directories_give_one_typed_error(ease_dir, kind):
    name, change = BROKEN[kind]
    rewrite(ease_dir, name, change)
    start = time.perf_counter()
    with pytest.raises(ModelFileError):
        load_model(ease_dir)
    assert time.perf_counter() - start < 5  # the plan's bound is 1 s; CI machines are slow


def test_cli_reports_broken_model_without_traceback(ease_dir, tmp_path):
    rewrite(ease_dir, MANIFEST, lambda m: [m])
    out = run_cli("recommend", "--model", str(ease_dir), "--all", "--output", str(tmp_path / "r"))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "must hold a JSON object" in out.stderr


def test_non_finite_factors_are_refused(tmp_path):
    model = create_model("als", {"factors": 4, "iterations": 2}).fit(checkerboard())
    d = model.save(tmp_path / "als")
    rewrite(d, "arrays.safetensors", lambda a: a["item_factors"].__setitem__((0, 0), np.inf))
    with pytest.raises(ModelFileError, match="NaN or infinite"):
        load_model(d)


def test_links_in_a_model_directory_are_refused(ease_dir, tmp_path):
    outside = tmp_path / "outside.parquet"
    os.replace(ease_dir / "item_ids.parquet", outside)
    os.symlink(outside, ease_dir / "item_ids.parquet")
    with pytest.raises(ModelFileError, match="symbolic link"):
        load_model(ease_dir)


def test_fit_refuses_a_non_finite_result():
    data = checkerboard()
    frame = data.to_frame()
    frame["weight"] = np.float32(3e38)  # finite in float32, but X^T X overflows
    from lmrec.data.dataset import Dataset

    huge = Dataset.from_frame(frame, items=data.items)
    with pytest.raises(NonFiniteModelError, match="largest \\|weight\\|"):
        create_model("ease", {"l2": 1.0, "implicit": False}).fit(huge)


def test_disk_full_leaves_the_previous_model(ease_dir, monkeypatch):
    import safetensors.numpy as stn
    from safetensors import SafetensorError

    before = load_model(ease_dir).recommend(["u0"], k=3)

    def full(arrays, filename, *a, **k):  # what safetensors raises on a full disk
        Path(filename).write_bytes(b"partial")
        raise SafetensorError("Error while serializing: I/O error: No space left (os error 28)")

    monkeypatch.setattr(stn, "save_file", full)
    with pytest.raises(StorageError, match="disk is full"):
        create_model("ease", {"l2": 99.0}).fit(checkerboard()).save(ease_dir)
    pd.testing.assert_frame_equal(load_model(ease_dir).recommend(["u0"], k=3), before)
    assert [p.name for p in ease_dir.parent.iterdir() if p.name.startswith(".")] == []


def test_interrupted_swap_is_recovered_and_stale_temporaries_removed(ease_dir, monkeypatch):
    import lmrec._atomic as atomic

    # A writer on a file system without atomic exchange died between its two renames:
    aside = ease_dir.with_name(f".{ease_dir.name}.old-999999999")
    os.replace(ease_dir, aside)
    stale = ease_dir.with_name(f".{ease_dir.name}.999999999.abc.tmp")
    stale.mkdir()
    assert load_model(ease_dir).n_items == 30  # recovered from the aside copy
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    create_model("ease", {"l2": 5.0}).fit(checkerboard()).save(ease_dir)
    assert not stale.exists() and not aside.exists()
    assert load_model(ease_dir).config.l2 == 5.0


KILLER = textwrap.dedent("""
    import sys
    from lmrec.models import create_model
    from lmrec.testing import checkerboard
    path, i = sys.argv[1], 0
    while True:
        i += 1
        create_model("ease", {"l2": float(i)}).fit(checkerboard()).save(path)
""")


def test_kill_minus_nine_during_saves_leaves_a_loadable_model(ease_dir):
    """Plan check 2 in small: SIGKILL a process that saves in a loop at random instants."""
    rng = np.random.default_rng(0)
    for _ in range(8):
        proc = subprocess.Popen([sys.executable, "-c", KILLER, str(ease_dir)])
        time.sleep(float(rng.uniform(0.8, 2.5)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        model = load_model(ease_dir)  # the old or a new version, never a partial one
        assert model.n_items == 30
    create_model("ease", {}).fit(checkerboard()).save(ease_dir)
    assert [p for p in ease_dir.parent.iterdir() if p.name.startswith(".")] == []


FILE_LIMIT = textwrap.dedent("""
    import resource, signal, sys
    from lmrec.errors import StorageError
    from lmrec.models import create_model
    from lmrec.testing import checkerboard
    path = sys.argv[1]
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
    big = checkerboard(n_users=200, n_items=400)  # EASE's B alone is 640 kB
    try:
        create_model("ease", {"l2": 10.0}).fit(big).save(path)
    except StorageError as e:
        print("StorageError:", e)
        sys.exit(0)
    sys.exit(1)
""")


def test_a_real_write_failure_is_a_storage_error_and_the_old_model_stays(ease_dir):
    """Plan check 3 with the operating system refusing the write (a file-size limit)."""
    before = load_model(ease_dir).recommend(["u0"], k=3)
    out = subprocess.run(
        [sys.executable, "-c", FILE_LIMIT, str(ease_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "Nothing was replaced" in out.stdout and "larger than this process may" in out.stdout
    pd.testing.assert_frame_equal(load_model(ease_dir).recommend(["u0"], k=3), before)
    assert [p.name for p in ease_dir.parent.iterdir() if p.name.startswith(".")] == []
