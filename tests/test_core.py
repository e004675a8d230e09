"""The package's contracts: light imports, id maps, the Dataset, model files, the registry."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from lmrec.data import Dataset, IdMap
from lmrec.errors import ConfigError, DataError, ModelFileError, UnknownIdError
from lmrec.models import create_model, list_models, load_model, register_model
from lmrec.models.popularity import Popularity


def test_import_is_light():
    code = (
        "import sys, lmrec, lmrec.data, lmrec.models, lmrec.eval, lmrec.cli;"
        "import lmrec.data.split, lmrec.eval.protocol;"
        "heavy = [m for m in ('torch', 'implicit', 'optuna', 'sentence_transformers', 'faiss',"
        " 'numba')"
        " if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_idmap_is_sorted_stable_and_typed():
    a = IdMap.from_values(["b", 10, "a", "b", 2])
    assert list(a.ids) == ["10", "2", "a", "b"]
    assert a.index([2, "a"]).tolist() == [1, 2]
    with pytest.raises(UnknownIdError) as err:
        a.index(["zzz"], kind="user")
    assert "zzz" in str(err.value)
    assert a.index(["zzz", "a"], on_unknown="ignore").tolist() == [-1, 2]
    assert IdMap.from_values(["a", "b"]) == IdMap.from_values(["b", "a"])
    ext = a.extend(["c", "a"])
    assert list(ext.ids) == ["10", "2", "a", "b", "c"] and a.index(["a"]) == ext.index(["a"])
    with pytest.raises(DataError):
        IdMap(["x", "x"])


def test_dataset_matrix_round_trip_and_immutability(tmp_path):
    frame = pd.DataFrame(
        {
            "user": ["u2", "u1", "u1"],
            "item": ["b", "a", "c"],
            "rating": [4.0, 5.0, 1.0],
            "timestamp": [3.0, 1.0, 2.0],
        }
    )
    items = pd.DataFrame({"title": ["A", "B", "C", "D"]}, index=["a", "b", "c", "d"])
    ds = Dataset.from_frame(frame, items=items)
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (2, 4, 3)  # 'd' is catalog-only
    np.testing.assert_array_equal(ds.matrix.toarray(), [[1, 0, 1, 0], [0, 1, 0, 0]])
    assert ds.matrix.dtype == np.float32
    with pytest.raises(ValueError):
        ds.column("user_idx")[0] = 5  # read-only
    frame.loc[0, "user"] = "changed"
    assert "changed" not in set(ds.to_frame()["user"])  # caller's frame not shared
    ds.save(tmp_path / "ds")
    back = Dataset.load(tmp_path / "ds")
    pd.testing.assert_frame_equal(back.to_frame(), ds.to_frame())
    assert back.items.loc["d", "title"] == "D"
    with pytest.raises(DataError, match="duplicate"):
        Dataset.from_frame(pd.DataFrame({"user": ["a", "a"], "item": ["x", "x"]}))


def test_subset_and_concat_share_id_maps():
    ds = Dataset.from_frame(pd.DataFrame({"user": list("aabbc"), "item": list("xyxzz")}))
    left, right = ds.subset(np.array([0, 2])), ds.subset(np.array([1, 3, 4]))
    assert left.user_ids is ds.user_ids and right.item_ids is ds.item_ids
    both = left.concat(right)
    assert both.n_interactions == 5 and (both.matrix != ds.matrix).nnz == 0
    with pytest.raises(DataError):
        left.concat(left)


@pytest.fixture()
def saved_model(tmp_path):
    ds = Dataset.from_frame(pd.DataFrame({"user": list("aabbc"), "item": list("xyxzz")}))
    model = Popularity().fit(ds)
    path = model.save(tmp_path / "model")
    return model, path


def test_model_directory_is_data_not_code(saved_model):
    model, path = saved_model
    names = sorted(p.name for p in path.iterdir())
    assert names == [
        "arrays.safetensors",
        "config.json",
        "item_ids.parquet",
        "manifest.json",
        "user_ids.parquet",
    ]
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["model"] == "popularity" and set(manifest["files"]) == set(names) - {
        "manifest.json"
    }
    again = load_model(path)
    pd.testing.assert_frame_equal(
        again.recommend(["a", "b"], k=2), model.recommend(["a", "b"], k=2)
    )


@pytest.mark.parametrize("victim", ["arrays.safetensors", "config.json", "item_ids.parquet"])
def test_tampered_model_file_is_refused(saved_model, victim):
    _, path = saved_model
    data = bytearray((path / victim).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (path / victim).write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="checksum"):
        load_model(path)


def test_missing_or_foreign_model_files_are_refused(saved_model, tmp_path):
    _, path = saved_model
    (path / "item_ids.parquet").unlink()
    with pytest.raises(ModelFileError, match="missing"):
        load_model(path)
    with pytest.raises(ModelFileError, match="manifest"):
        load_model(tmp_path)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["format_version"] = "9.0"
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError, match="format"):
        load_model(path)


def test_failed_save_leaves_previous_model_intact(saved_model, monkeypatch):
    model, path = saved_model
    before = (path / "manifest.json").read_text()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("safetensors.numpy.save_file", boom)
    with pytest.raises(OSError):
        model.save(path)
    assert (path / "manifest.json").read_text() == before
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []


def test_registry_checks_inputs():
    assert {"popularity", "ease", "als", "itemknn"} <= set(list_models())
    with pytest.raises(ConfigError, match="already registered"):
        register_model("popularity", Popularity)
    with pytest.raises(ConfigError, match="lowercase"):
        register_model("Bad Name", Popularity)
    with pytest.raises(ConfigError, match="Recommender subclass"):
        register_model("thing", dict)
    with pytest.raises(ConfigError, match="Available models"):
        create_model("no_such_model")


def test_config_or_kwargs_not_both():
    with pytest.raises(ConfigError, match="not both"):
        Popularity(Popularity.config_class(), by="count")
    assert Popularity(by="weight").config.by == "weight"
    with pytest.raises(ValueError):
        Popularity().config.by = "weight"  # frozen


def test_recommend_validates_k():
    ds = Dataset.from_frame(pd.DataFrame({"user": ["a"], "item": ["x"]}))
    model = Popularity().fit(ds)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match="'k' parameter"):
            model.recommend(["a"], k=bad)
