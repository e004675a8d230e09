"""The LM ranker at serving speed: ONNX Runtime, cached token ids, batches across users.

:class:`OnnxScorer` scores (user, candidate) pairs of a fitted
:class:`~lmrec.ranker.model.LMRanker` the way its torch path does, with four changes
that make it cheap enough to serve (issue 18.3):

- **ONNX Runtime.** The merged model (LoRA folded into the weights, mean/CLS pooling
  and the text head) is exported once to ONNX, fused by ONNX Runtime's transformer
  optimizer (attention, GELU, skip-layer-norm) and, with ``int8=True``, its matrix
  products are quantized dynamically to int8 weights (``onnxruntime.quantization``).
  The session runs with :func:`lmrec._threads.num_threads` threads and, unless the
  user chose ``OMP_WAIT_POLICY=ACTIVE``, without spinning idle workers.
- **Token ids cached.** Each user's context and each item's text is tokenized once
  and kept; a pair is assembled from the two id lists exactly as the tokenizer's pair
  encoding with ``truncation="only_first"`` would (``[CLS] context [SEP] item
  [SEP]``, the context cut from its end, i.e. its oldest history items).
- **Batches across users.** All pairs of a call are sorted by length and cut into
  batches of about ``tokens_per_batch`` tokens, so almost no padding is computed and
  one user's 20 candidates share a forward pass with other users' pairs.
- **Shorter prompts where they cost no accuracy.** ``max_length`` may be set below the
  ranker's training length; choose it on held-out pairs (the pipeline benchmark does).

Histories given at request time (new users, anonymous sessions, explanations) score
through the same session: :class:`OnnxScorer` also answers the ranker's prompt-text
interface (``_predict`` of rendered contexts and item texts), tokenizing those contexts
per call.

The wide part of a ranker with side features stays in NumPy (4 weights and a bias)
and is added to the exported text logit. Needs the ``onnx`` extra
(``pip install 'lmrec[onnx]'``) and torch to export; scoring itself runs in ONNX Runtime.

Stability: experimental. .. versionadded:: 0.3.0
"""

from __future__ import annotations

import copy
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from lmrec._optional import require
from lmrec._progress import quiet_loading
from lmrec.errors import ConfigError, NotFittedError
from lmrec.ranker.features import side_features

__all__ = ["OnnxScorer", "TokenCache", "export_onnx"]

#: Input names of the exported graph.
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
#: Input names of the packed graph of a ranker with ``shared_context`` (see :func:`packed_inputs`).
PACKED_INPUTS = ("input_ids", "position_ids", "token_type_ids", "bias", "pool")


class TokenCache:
    """Token ids (no special tokens) of a ranker's item texts and user contexts, made once.

    Parameters
    ----------
    tokenizer : transformers tokenizer
        The ranker's tokenizer (a BERT-style ``[CLS] a [SEP] b [SEP]`` pair encoding).
    prompts : PromptBuilder
        The ranker's prompt data.
    """

    def __init__(self, tokenizer: Any, prompts: Any) -> None:
        self.tokenizer = tokenizer
        self.prompts = prompts
        self.cls = int(tokenizer.cls_token_id)
        self.sep = int(tokenizer.sep_token_id)
        self.pad = int(tokenizer.pad_token_id or 0)
        self._items: dict[int, list[int]] = {}
        self._contexts: dict[tuple[int, int], list[int]] = {}

    def ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids (no special tokens) of texts, not cached (request-time contexts)."""
        if not texts:
            return []
        return self.tokenizer(texts, add_special_tokens=False)["input_ids"]

    def items(self, item_idx: np.ndarray) -> list[list[int]]:
        """Token ids of the items' texts (the candidate side), tokenizing new ones in one call."""
        todo = sorted({int(i) for i in item_idx} - self._items.keys())
        if todo:
            texts = [self.prompts.item_texts[i] for i in todo]
            self._items.update(zip(todo, self.ids(texts), strict=True))
        return [self._items[int(i)] for i in item_idx]

    def contexts(self, user_idx: np.ndarray) -> list[list[int]]:
        """Token ids of the users' contexts over their whole history (the context side)."""
        indptr = self.prompts.indptr
        keys = [(int(u), int(indptr[u + 1] - indptr[u])) for u in user_idx]
        todo = sorted(set(keys) - self._contexts.keys())
        if todo:
            texts = [self.prompts.context(u) for u, _ in todo]
            self._contexts.update(zip(todo, self.ids(texts), strict=True))
        return [self._contexts[k] for k in keys]

    def pair(self, context: list[int], item: list[int], max_length: int) -> list[int]:
        """``[CLS] context [SEP] item [SEP]`` in at most ``max_length`` ids (context cut first)."""
        item = item[: max(1, max_length - 3)]
        room = max(0, max_length - 3 - len(item))
        return [self.cls, *context[:room], self.sep, *item, self.sep]

    def one_way_pair(
        self, context: list[int], item: list[int], max_length: int, max_item_length: int
    ) -> tuple[list[int], int]:
        """``[CLS] context [SEP] item [SEP]`` with separate budgets, and where the item starts.

        The layout of a ranker with ``shared_context``: the context side takes at most
        ``max_length`` ids (its end cut), the item side at most ``max_item_length``, so
        the context is the same for every candidate of a user.
        """
        head = [self.cls, *context[: max_length - 2], self.sep]
        return [*head, *item[: max_item_length - 1], self.sep], len(head)

    def pack(
        self, context: list[int], items: list[list[int]], max_length: int, max_item_length: int
    ) -> tuple[list[int], list[int], list[int]]:
        """One sequence for a user and all their candidates: ids, positions, segments.

        ``[CLS] context [SEP] item_1 [SEP] item_2 [SEP] ...``; each item's positions
        continue after the context, as in its own pair, and its segment is its index
        (the context's is -1). Under :func:`packed_inputs`' mask each item sees the
        context and itself only, so its hidden states equal those of its own
        :meth:`one_way_pair` under the one-way mask.
        """
        head = [self.cls, *context[: max_length - 2], self.sep]
        ids, pos, seg = list(head), list(range(len(head))), [-1] * len(head)
        for k, item in enumerate(items):
            part = [*item[: max_item_length - 1], self.sep]
            ids += part
            pos += range(len(head), len(head) + len(part))
            seg += [k] * len(part)
        return ids, pos, seg

    def batch(self, pairs: list[list[int]], split: list[int]) -> dict[str, np.ndarray]:
        """Padded ``input_ids``, ``attention_mask`` and ``token_type_ids`` (int64) of pairs.

        ``split[i]`` is where pair ``i``'s second segment (the item) starts.
        """
        width = max(len(p) for p in pairs)
        ids = np.full((len(pairs), width), self.pad, np.int64)
        mask = np.zeros((len(pairs), width), np.int64)
        types = np.zeros((len(pairs), width), np.int64)
        for r, (p, s) in enumerate(zip(pairs, split, strict=True)):
            ids[r, : len(p)] = p
            mask[r, : len(p)] = 1
            types[r, s : len(p)] = 1
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def packed_inputs(
    packs: list[tuple[list[int], list[int], list[int]]], pad: int
) -> dict[str, np.ndarray]:
    """Padded arrays of :meth:`TokenCache.pack` sequences for the packed graph.

    ``bias`` (n, 1, t, t) float32 is 0 where a token may attend (the context sees the
    context; item k sees the context and item k) and the float32 minimum elsewhere;
    ``pool`` (n, k, t) averages the context's and item k's tokens, the mean pooling of
    item k's own pair.
    """
    n, t = len(packs), max(len(p[0]) for p in packs)
    k = max(max(p[2]) + 1 for p in packs)
    ids = np.full((n, t), pad, np.int64)
    pos = np.zeros((n, t), np.int64)
    seg = np.full((n, t), -2, np.int64)
    for r, (i, p, g) in enumerate(packs):
        ids[r, : len(i)], pos[r, : len(p)], seg[r, : len(g)] = i, p, g
    key, query = seg[:, None, :], seg[:, :, None]
    allowed = (key == -1) | ((key == query) & (key >= 0))
    bias = np.where(allowed, 0.0, np.finfo(np.float32).min).astype(np.float32)[:, None]
    member = (seg[:, None, :] == -1) | (seg[:, None, :] == np.arange(k)[None, :, None])
    pool = member.astype(np.float32)
    pool /= np.maximum(pool.sum(-1, keepdims=True), 1.0)
    return {
        "input_ids": ids,
        "position_ids": pos,
        "token_type_ids": (seg >= 0).astype(np.int64),
        "bias": bias,
        "pool": pool,
    }


def export_onnx(ranker: Any, path: str | Path, *, int8: bool = True) -> Path:
    """Write the ranker's merged text scorer (encoder, pooling, head) to ONNX file ``path``.

    LoRA is merged into the weights; the graph is fused by ONNX Runtime's BERT
    optimizer and, with ``int8``, dynamically quantized (int8 weights, activations
    quantized per batch at run time). Inputs :data:`INPUTS` (int64, (batch, tokens)),
    output ``logit`` (float32, (batch,)), the text logit without the wide part. A
    ranker with ``shared_context`` gets the packed graph instead: inputs
    :data:`PACKED_INPUTS` (:func:`packed_inputs`), output ``logit`` (batch, items).
    """
    torch = require("torch", "lm")
    require("onnx", "onnx")
    ort_transformers = require("onnxruntime.transformers.optimizer", "onnx")
    quantization = require("onnxruntime.quantization", "onnx")
    ranker._check_module()
    module = copy.deepcopy(ranker._module).to("cpu").float().eval()
    encoder = module["encoder"]
    if ranker.config.mode == "lora":
        encoder = encoder.merge_and_unload()
    if hasattr(encoder, "set_attn_implementation"):  # eager attention fuses in ONNX Runtime
        encoder.set_attn_implementation("eager")
    pooling = ranker.config.pooling

    class TextLogit(torch.nn.Module):  # type: ignore[name-defined]  # base class of a module loaded at run time
        def __init__(self) -> None:
            super().__init__()
            self.encoder, self.head = encoder, module["head"]

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            if pooling == "cls":
                pooled = out[:, 0]
            else:
                m = attention_mask.unsqueeze(-1).to(out.dtype)
                pooled = (out * m).sum(1) / m.sum(1).clamp(min=1.0)
            return self.head(pooled).squeeze(-1)

    class PackedLogit(torch.nn.Module):  # type: ignore[name-defined]  # run-time base; shared_context
        def __init__(self) -> None:
            super().__init__()
            self.encoder, self.head = encoder, module["head"]

        def forward(
            self, input_ids: Any, position_ids: Any, token_type_ids: Any, bias: Any, pool: Any
        ) -> Any:
            out = self.encoder(
                input_ids=input_ids,
                position_ids=position_ids,
                token_type_ids=token_type_ids,
                attention_mask=bias,
            ).last_hidden_state
            return self.head(pool @ out).squeeze(-1)

    path = Path(path)
    names: tuple[str, ...]
    if ranker.config.shared_context:
        feed = packed_inputs(
            [
                ([101, 7, 102, 9, 102], [0, 1, 2, 3, 4], [-1, -1, -1, 0, 0]),
                ([101, 102, 9, 102, 8, 102], [0, 1, 2, 3, 2, 3], [-1, -1, 0, 0, 1, 1]),
            ],
            pad=0,
        )
        graph, names = PackedLogit().eval(), PACKED_INPUTS
        example = tuple(torch.from_numpy(feed[n]) for n in names)
        axes = {
            "input_ids": {0: "batch", 1: "tokens"},
            "position_ids": {0: "batch", 1: "tokens"},
            "token_type_ids": {0: "batch", 1: "tokens"},
            "bias": {0: "batch", 2: "tokens", 3: "tokens_"},
            "pool": {0: "batch", 1: "items", 2: "tokens"},
            "logit": {0: "batch", 1: "items"},
        }
    else:
        graph, names = TextLogit().eval(), INPUTS
        example = tuple(torch.ones((2, 8), dtype=torch.int64) for _ in INPUTS)
        axes = {**{name: {0: "batch", 1: "tokens"} for name in INPUTS}, "logit": {0: "batch"}}
    cfg = encoder.config
    with (
        tempfile.TemporaryDirectory() as tmp,
        quiet_loading(),
        torch.no_grad(),
        warnings.catch_warnings(),
    ):
        # The tracer's notes on shape-dependent branches and index export: the graph is
        # checked against torch's scores in tests/test_ranker_fast.py.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module="torch.onnx")
        raw = Path(tmp) / "raw.onnx"
        torch.onnx.export(
            graph,
            example,
            str(raw),
            input_names=list(names),
            output_names=["logit"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
        options = None
        if ranker.config.shared_context:  # explicit positions and a 4-D mask: fuse the rest
            options = require("onnxruntime.transformers.fusion_options", "onnx").FusionOptions(
                "bert"
            )
            options.enable_embed_layer_norm = False
            options.enable_attention = False
        fused = ort_transformers.optimize_model(
            str(raw),
            model_type="bert",
            num_heads=cfg.num_attention_heads,
            hidden_size=cfg.hidden_size,
            optimization_options=options,
        )
        if not int8:
            fused.save_model_to_file(str(path))
            return path
        staged = Path(tmp) / "fused.onnx"
        fused.save_model_to_file(str(staged))
        onnx = require("onnx", "onnx")
        quantization.quantize_dynamic(
            str(staged),
            str(path),
            weight_type=quantization.QuantType.QInt8,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    return path


class OnnxScorer:
    """Scores a fitted :class:`~lmrec.ranker.model.LMRanker`'s pairs with ONNX Runtime.

    Build it with :meth:`from_ranker`; it answers :meth:`score_candidates` like the
    ranker does (logits, ``-inf`` for -1 candidates).

    Parameters
    ----------
    session : onnxruntime.InferenceSession
        A session of a graph written by :func:`export_onnx`.
    tokens : TokenCache
        Token ids of the ranker's items and contexts.
    ranker : LMRanker
        The ranker (its prompts, side-feature statistics and wide part are used).
    max_length : int
        Tokens per pair (at most the ranker's ``max_length`` is sensible).
    tokens_per_batch : int, default 4096
        About this many tokens per forward pass (at most 256 pairs).

    Examples
    --------
    >>> scorer = OnnxScorer.from_ranker(ranker, int8=True)                 # doctest: +SKIP
    >>> scorer.score_candidates(np.array([0]), np.array([[3, 7, 9]]))     # doctest: +SKIP
    """

    def __init__(
        self,
        session: Any,
        tokens: TokenCache,
        ranker: Any,
        *,
        max_length: int,
        tokens_per_batch: int = 4096,
    ) -> None:
        if max_length < 8:
            raise ConfigError(f"OnnxScorer max_length must be >= 8 tokens. Got {max_length}.")
        self.session = session
        self.tokens = tokens
        self.ranker = ranker
        self.max_length = int(max_length)
        self.tokens_per_batch = int(tokens_per_batch)
        wide = ranker._module["wide"] if "wide" in ranker._module else None
        self._wide = (
            None
            if wide is None
            else (
                wide.weight.detach().cpu().numpy().astype(np.float64).ravel(),
                float(wide.bias.detach().cpu().numpy()[0]),
            )
        )

    @classmethod
    def from_ranker(
        cls,
        ranker: Any,
        *,
        int8: bool = True,
        max_length: int | None = None,
        path: str | Path | None = None,
        tokens_per_batch: int = 4096,
    ) -> OnnxScorer:
        """Export ``ranker`` (to ``path``, default a temporary file) and open a session."""
        if ranker.prompts_ is None:
            raise NotFittedError("OnnxScorer needs a ranker fitted on a data set (LMRanker.fit).")
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(path) if path is not None else Path(tmp) / "ranker.onnx"
            export_onnx(ranker, target, int8=int8)
            session = open_session(target)
        tokens = TokenCache(ranker._tokenizer, ranker.prompts_)
        return cls(
            session,
            tokens,
            ranker,
            max_length=max_length or ranker.config.max_length,
            tokens_per_batch=tokens_per_batch,
        )

    def _text_logits(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self._pair_logits(self.tokens.contexts(users), self.tokens.items(items))

    def _pair_logits(self, contexts: list[list[int]], texts: list[list[int]]) -> np.ndarray:
        """Text logits of aligned (context, item) token ids, one pair per row."""
        pairs = [
            self.tokens.pair(c, t, self.max_length) for c, t in zip(contexts, texts, strict=True)
        ]
        split = [
            len(p) - min(len(t), max(1, self.max_length - 3)) - 1
            for p, t in zip(pairs, texts, strict=True)
        ]
        order = np.argsort([len(p) for p in pairs], kind="stable")
        out = np.empty(len(pairs), np.float32)
        start = 0
        while start < len(order):  # batches of about tokens_per_batch tokens, shortest first
            width = len(pairs[order[start]])
            stop = start + 1
            while (
                stop < len(order)
                and stop - start < 256
                and (stop - start + 1) * len(pairs[order[stop]])
                <= max(self.tokens_per_batch, width)
            ):
                stop += 1
            idx = order[start:stop]
            feed = self.tokens.batch([pairs[i] for i in idx], [split[i] for i in idx])
            out[idx] = self.session.run(None, feed)[0]
            start = stop
        return out

    def _packed_logits(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Text logits of a ``shared_context`` ranker: one packed sequence per user."""
        uniq, groups = _groups(users)
        return self._packed(self.tokens.contexts(uniq), groups, self.tokens.items(items))

    def _packed(
        self, contexts: list[list[int]], groups: list[np.ndarray], texts: list[list[int]]
    ) -> np.ndarray:
        """Text logits of packed sequences: ``contexts[g]`` with the items ``texts[i]`` for
        ``i`` in ``groups[g]``; the result is aligned with ``texts``."""
        max_items = 64  # items per packed sequence: bounds its length and attention cost
        max_item_length = self.ranker.config.max_item_length
        packs, where = [], []
        for ctx, group in zip(contexts, groups, strict=True):
            for s in range(0, len(group), max_items):
                part = group[s : s + max_items]
                packs.append(
                    self.tokens.pack(
                        ctx, [texts[i] for i in part], self.max_length, max_item_length
                    )
                )
                where.append(part)
        out = np.empty(len(texts), np.float32)
        by_len = np.argsort([len(pk[0]) for pk in packs], kind="stable")
        start = 0
        while start < len(by_len):  # about tokens_per_batch tokens per forward pass
            stop = start + 1
            while (
                stop < len(by_len)
                and (stop - start + 1) * len(packs[by_len[stop]][0]) <= self.tokens_per_batch
            ):
                stop += 1
            chosen = by_len[start:stop]
            feed = packed_inputs([packs[i] for i in chosen], self.tokens.pad)
            logits = self.session.run(None, feed)[0]
            for row, i in enumerate(chosen):
                out[where[i]] = logits[row, : len(where[i])]
            start = stop
        return out

    def _with_wide(self, text: np.ndarray, features: np.ndarray | None) -> np.ndarray:
        logit = text.astype(np.float64)
        if self._wide is not None:
            if features is None:
                raise ConfigError(
                    "This ranker was built with side_features=True and needs the side "
                    "features of each pair (lmrec.ranker.features.side_features)."
                )
            logit += np.asarray(features, np.float64) @ self._wide[0] + self._wide[1]
        return logit.astype(np.float32)

    # The prompt-text interface of LMRanker, so that histories given at request time (new
    # users, sessions) and their explanations (lmrec.ranker.histories) score through ONNX
    # Runtime too.
    @property
    def prompts_(self) -> Any:
        """The ranker's prompt data (item texts, known users' histories)."""
        return self.ranker.prompts_

    @property
    def item_stats_(self) -> Any:
        """The ranker's training item statistics for the side features (or None)."""
        return self.ranker.item_stats_

    def _check_fitted(self) -> None:
        self.ranker._check_fitted()

    def _check_module(self) -> None:
        self.ranker._check_module()

    def _predict(
        self, contexts: list[str], candidates: list[str], features: np.ndarray | None = None
    ) -> np.ndarray:
        """Logits (float32) of prompt pairs given as text, like ``LMRanker._predict``.

        Contexts are tokenized per call (they are rendered from request-time histories);
        a ``shared_context`` ranker packs the candidates of each distinct context into
        one sequence.
        """
        if len(contexts) == 0:
            return np.zeros(0, np.float32)
        texts = self.tokens.ids(list(candidates))
        if self.ranker.config.shared_context:
            index: dict[str, int] = {}  # distinct contexts, numbered in order of appearance
            _, groups = _groups(np.array([index.setdefault(c, len(index)) for c in contexts]))
            text = self._packed(self.tokens.ids(list(index)), groups, texts)
        else:
            text = self._pair_logits(self.tokens.ids(list(contexts)), texts)
        return self._with_wide(text, features)

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Logits (float32) of aligned (user, item) pairs over the users' whole histories."""
        users = np.asarray(users, np.int64)
        items = np.asarray(items, np.int64)
        if len(users) == 0:
            return np.zeros(0, np.float32)
        text = self._packed_logits if self.ranker.config.shared_context else self._text_logits
        feats = None
        if self._wide is not None:
            feats = side_features(self.ranker.prompts_, self.ranker.item_stats_, users, items)
        return self._with_wide(text(users, items), feats)

    def score_candidates(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """Logits (n, c) of candidate items per user; -1 candidates score ``-inf``."""
        user_idx = np.asarray(user_idx, np.int64)
        item_idx = np.asarray(item_idx, np.int64)
        if item_idx.ndim != 2 or item_idx.shape[0] != len(user_idx):
            raise ConfigError(
                f"score_candidates needs item_idx of shape (len(user_idx), c) = "
                f"({len(user_idx)}, c); got {item_idx.shape}."
            )
        out = np.full(item_idx.shape, -np.inf, np.float32)
        rows, cols = np.nonzero(item_idx >= 0)
        out[rows, cols] = self.predict(user_idx[rows], item_idx[rows, cols])
        return out


def _groups(keys: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """The distinct ``keys`` (sorted) and, for each, the positions holding it (ascending)."""
    order = np.argsort(keys, kind="stable")
    uniq, starts = np.unique(keys[order], return_index=True)
    return uniq, np.split(order, starts[1:])


def open_session(path: str | Path) -> Any:
    """An ONNX Runtime CPU session with lmrec's thread count and no spinning idle workers.

    Spinning is kept only when the user asked for it with ``OMP_WAIT_POLICY=ACTIVE``
    (issue 18.1: spinning workers fight other processes for the cores).
    """
    from lmrec._threads import configure

    ort = require("onnxruntime", "onnx")
    threads = configure()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    spin = "1" if os.environ.get("OMP_WAIT_POLICY", "").upper() == "ACTIVE" else "0"
    options.add_session_config_entry("session.intra_op.allow_spinning", spin)
    options.add_session_config_entry("session.inter_op.allow_spinning", spin)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
