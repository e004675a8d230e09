"""A fine-tuned cross-encoder ranker (MiniLM + linear head) over history prompts.

:class:`LMRanker` reads a prompt pair -- the user's recent history (see
:mod:`lmrec.ranker.prompts`) and one candidate item's text -- with a small
transformer encoder (``transformers.AutoModel``, default the bundled
all-MiniLM-L6-v2, loaded from local files only), pools the last hidden states (mean
over tokens, or the CLS token) and maps them to a logit with a linear head.

Fine-tuning modes (``mode``):

- ``"lora"``: LoRA adapters (``peft``) on ``target_modules`` plus the head; about 1%
  of the parameters train;
- ``"head"``: the encoder is frozen, only the head trains;
- ``"full"``: everything trains.

Training data: every training interaction is a positive (its prompt shows only the
history *before* it); each positive gets ``n_negatives`` items sampled by popularity,
and, when a retriever's top-N is given (``hard_negatives``), a ``hard_fraction`` of
them come from there instead. ``max_examples`` sub-samples, ``few_shot`` trains on
exactly n examples. See :mod:`lmrec.ranker.trainer` for the loop.

A cross-encoder scores one (user, item) pair per forward pass, so ranking the whole
catalog is prohibitive: use :meth:`LMRanker.score_candidates`, or the ``pipeline``
model (:class:`~lmrec.ranker.pipeline.RetrieveRerank`), which reranks a retriever's
top-N. ``_score`` (and so ``recommend``) works only for catalogs of at most
``full_rank_limit`` items.

Saving stores only the trainable weights (LoRA adapter + head, or head, or all for
``"full"``) in safetensors plus the prompt data; the base model is referenced by
name/path in the config, never copied.

Stability: experimental. .. versionadded:: 0.2.0
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from lmrec._optional import require
from lmrec._progress import quiet_loading
from lmrec.data.dataset import Dataset
from lmrec.errors import ConfigError, ModelFileError, NotFittedError
from lmrec.models.base import Recommender
from lmrec.models.capabilities import (
    CheckpointedModel,
    DistributedModel,
    FitOptions,
    HardNegativeModel,
    SequenceModel,
)
from lmrec.models.config import ModelConfig
from lmrec.models.explain import Attribution
from lmrec.models.files import StateArrays
from lmrec.models.fitted import Fitted
from lmrec.ranker.features import FEATURE_NAMES, ItemStats, fit_logistic, side_features
from lmrec.ranker.prompts import DEFAULT_TEMPLATE, PromptBuilder, check_template
from lmrec.ranker.trainer import Examples

if TYPE_CHECKING:
    from lmrec.train.torch_utils import Device

Mode = Literal["full", "lora", "head"]


class LMRankerConfig(ModelConfig):
    """Hyperparameters of :class:`LMRanker` (model, prompt, data, optimisation)."""

    model: str = "all-MiniLM-L6-v2"
    """Base encoder: the bundled default, or a local transformers model directory."""
    mode: Mode = "lora"
    """What trains: LoRA adapters + head, the head only, or the full model."""
    lora_r: int = Field(default=8, ge=1)
    """LoRA rank."""
    lora_alpha: int = Field(default=16, ge=1)
    """LoRA scaling numerator (the update is scaled by ``lora_alpha / lora_r``)."""
    lora_dropout: float = Field(default=0.0, ge=0, lt=1)
    """Dropout on the LoRA input (0 keeps training deterministic and resumable)."""
    target_modules: tuple[str, ...] = ("query", "value")
    """Module names that get LoRA adapters."""
    pooling: Literal["mean", "cls"] = "mean"
    """How the last hidden states become one vector for the head."""
    n_layers: int | None = Field(default=None, ge=1)
    """Keep only the first n transformer layers (faster; None keeps all)."""
    max_length: int = Field(default=128, ge=16)
    """Tokens per prompt pair; the history side is truncated first (oldest items go).
    With ``shared_context``: tokens of the context alone (``[CLS] context [SEP]``)."""
    shared_context: bool = False
    """One-way attention: the context's tokens do not attend to the candidate's (the
    candidate's tokens still read the whole context), so a user's context is encoded
    once for all of their candidates when scoring with
    :class:`~lmrec.ranker.fast.OnnxScorer` (several times fewer tokens for 20
    candidates). The candidate's text gets its own budget, ``max_item_length``.
    Needs ``pooling="mean"``."""
    max_item_length: int = Field(default=32, ge=4)
    """With ``shared_context``: tokens of the candidate side (``item [SEP]``; its end is cut)."""
    template: str = DEFAULT_TEMPLATE
    """Context template with fields ``{user}`` and ``{history}``."""
    n_history: int = Field(default=10, ge=0)
    """Most recent interactions shown in the prompt."""
    like_threshold: float = 3.0
    """Ratings above this are marked liked, the others disliked."""
    n_negatives: int = Field(default=1, ge=1)
    """Sampled negatives per positive."""
    hard_fraction: float = Field(default=0.5, ge=0, le=1)
    """Share of negatives taken from the retriever's top-N when it is given."""
    max_examples: int | None = Field(default=4000, ge=2)
    """Sub-sample the training examples to at most this many (None: all)."""
    few_shot: int | None = Field(default=None, ge=2)
    """Train on exactly this many examples (half positive); overrides max_examples."""
    lr: float = Field(default=1e-3, gt=0)
    """Peak learning rate (after warm-up)."""
    weight_decay: float = Field(default=0.01, ge=0)
    """AdamW weight decay."""
    batch_size: int = Field(default=16, ge=1)
    """Examples per micro-batch."""
    grad_accum: int = Field(default=1, ge=1)
    """Micro-batches per optimiser step."""
    max_steps: int = Field(default=200, ge=1)
    """Optimiser steps."""
    warmup_steps: int = Field(default=10, ge=0)
    """Linear warm-up steps."""
    bf16: bool = False
    """bfloat16 autocast on CPU during training."""
    eval_every: int = Field(default=0, ge=0)
    """Validation AUC every n steps (0: no validation, no early stopping)."""
    patience: int = Field(default=3, ge=0)
    """Stop after this many evaluations without a better validation AUC (0: never)."""
    validation_fraction: float = Field(default=0.1, gt=0, lt=1)
    """Share of the examples held out for validation when ``eval_every`` > 0."""
    checkpoint_every: int = Field(default=0, ge=0)
    """Write a checkpoint every n steps (needs ``fit(..., checkpoint_dir=...)``)."""
    distributed: bool = False
    """Data-parallel fine-tuning under ``torchrun``: each rank runs its share of every
    step's examples and the trainable (LoRA/head) gradients are summed across ranks, so
    the result equals a single-process fit up to float summation order."""
    score_batch_size: int = Field(default=128, ge=1)
    """Pairs per forward pass when scoring."""
    full_rank_limit: int = Field(default=200, ge=0)
    """Largest catalog ``_score``/``recommend`` will rank completely."""
    n_threads: int | None = Field(default=None, ge=1)
    """torch threads during fit (restored afterwards); None leaves torch's setting."""
    side_features: bool = False
    """Wide and deep: add a linear term on numeric side features (item like rate and
    popularity, the user's like shares; see :mod:`lmrec.ranker.features`) to the logit.
    It starts at a logistic regression fitted on the training examples, and the text
    head starts at zero, so fine-tuning begins from the classic baseline."""
    train_wide: bool = False
    """With ``side_features``: train the wide part too. Off by default: the wide part
    stays the logistic-regression fit and the language model learns what it leaves
    unexplained, which keeps few-shot fine-tuning from drifting below the baseline."""
    cache_frozen: bool = True
    """Head mode: keep the frozen encoder's pooled output of each prompt pair during
    fit, so later epochs and validation passes skip the transformer."""
    device: Literal["auto", "cpu", "cuda"] = "cpu"
    """Where fine-tuning runs: ``"auto"`` is CUDA when available (under ``torchrun`` with
    NCCL, each rank's own GPU). Prompts are built and tokenized on the CPU. A loaded
    ranker scores on a GPU when one is available, else on the CPU."""
    seed: int = Field(default=0, ge=0)
    """Seed of example sampling, head/LoRA initialisation and batch order."""


def _base_path(model: str) -> str:
    from lmrec.text.encoder import resolve_model

    return resolve_model(model)[1]


class LMRanker(Recommender, SequenceModel, CheckpointedModel, DistributedModel, HardNegativeModel):
    """Cross-encoder ranker fine-tuned on history prompts (full, LoRA or head-only).

    Parameters
    ----------
    config : LMRankerConfig, optional
        Or its fields as keywords, e.g. ``LMRanker(mode="head", max_steps=50)``.

    Examples
    --------
    >>> ranker = LMRanker(mode="lora", max_steps=20).fit(train)          # doctest: +SKIP
    >>> ranker.trainable_parameters()                                    # doctest: +SKIP
    (74113, 22787713)
    >>> ranker.score_candidates(np.array([0]), np.array([[3, 7, 9]]))    # doctest: +SKIP
    """

    name = "ranker"
    smoke_check_on_load = False  # every score is a language-model forward pass
    config_class = LMRankerConfig
    config: LMRankerConfig

    #: Prompt data (item texts, user texts, histories).
    prompts_: Fitted[PromptBuilder] = Fitted()
    #: Per-step training log of the last fit.
    train_log_: list[dict[str, float]] | None = None
    #: Whether the module was merged and int8-quantized (scoring only).
    quantized_: bool = False
    #: Training item statistics for the side features (``side_features=True``, after fit).
    item_stats_: ItemStats | None = None

    def __init__(self, config: ModelConfig | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        self._module: Any = None
        self._tokenizer: Any = None
        self._pool_cache: dict[tuple[str, str], Any] | None = None
        self._device: Any = None

    # ------------------------------------------------------------------ module
    def _build(self, device: Device | None = None) -> None:
        """Load the base encoder and tokenizer, add the head (and LoRA), set trainability.

        ``device`` is ``config.device`` when fitting; loading passes ``"auto"``.
        """
        from lmrec.train.torch_utils import resolve_device

        torch = require("torch", "lm")
        transformers = require("transformers", "lm")
        cfg = self.config
        if cfg.shared_context and cfg.pooling != "mean":
            raise ConfigError(
                "shared_context=True needs pooling='mean': the CLS token belongs to the "
                "context, which does not see the candidate."
            )
        path = _base_path(cfg.model)
        extra: dict[str, Any] = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
        if cfg.n_layers is not None:
            extra["num_hidden_layers"] = cfg.n_layers
        with quiet_loading():  # no 'Loading weights' bars or deprecation noise (15.9)
            try:
                self._tokenizer = transformers.AutoTokenizer.from_pretrained(
                    path, local_files_only=True
                )
                encoder = transformers.AutoModel.from_pretrained(
                    path, local_files_only=True, **extra
                )
            except OSError as e:
                raise ConfigError(
                    f"Could not load ranker base model {cfg.model!r} from {path}: {e}"
                ) from e
            # Initialisation draws from torch's global RNG; fork it so the caller's state is untouched.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(cfg.seed)
                head = torch.nn.Linear(encoder.config.hidden_size, 1)
                wide = torch.nn.Linear(len(FEATURE_NAMES), 1) if cfg.side_features else None
                if wide is not None:  # the baseline first: text head and wide part start at 0
                    torch.nn.init.zeros_(head.weight)
                    torch.nn.init.zeros_(head.bias)
                    torch.nn.init.zeros_(wide.weight)
                    torch.nn.init.zeros_(wide.bias)
                if cfg.mode == "lora":
                    peft = require("peft", "lm")
                    lora = peft.LoraConfig(
                        r=cfg.lora_r,
                        lora_alpha=cfg.lora_alpha,
                        lora_dropout=cfg.lora_dropout,
                        target_modules=list(cfg.target_modules),
                    )
                    try:
                        encoder = peft.get_peft_model(encoder, lora)
                    except ValueError as e:
                        raise ConfigError(f"LoRA target_modules {cfg.target_modules}: {e}") from e
        for p in encoder.parameters():
            p.requires_grad_(cfg.mode == "full")
        if cfg.mode == "lora":
            for name, p in encoder.named_parameters():
                p.requires_grad_("lora_" in name)
        parts = {"encoder": encoder, "head": head}
        if wide is not None:
            wide.requires_grad_(cfg.train_wide)
            parts["wide"] = wide
        self._device = resolve_device(torch, device or self.config.device)
        self._module = torch.nn.ModuleDict(parts).to(self._device)
        self.quantized_ = False

    def _pooled(self, contexts: list[str], candidates: list[str]) -> Any:
        """Pooled last hidden states (tensor (n, hidden)) of prompt pairs."""
        if self.config.shared_context:
            return self._pooled_one_way(contexts, candidates)
        batch = self._tokenizer(
            contexts,
            candidates,
            padding=True,
            truncation="only_first",
            max_length=self.config.max_length,
            return_tensors="pt",
        )
        batch = {k: v.to(self._device) for k, v in batch.items()}
        out = self._module["encoder"](**batch).last_hidden_state
        if self.config.pooling == "cls":
            return out[:, 0]
        mask = batch["attention_mask"].unsqueeze(-1).to(out.dtype)
        return (out * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    def _pooled_one_way(self, contexts: list[str], candidates: list[str]) -> Any:
        """:meth:`_pooled` with ``shared_context``: context and item cut to their own
        budgets, and an attention mask under which the context does not see the item."""
        from lmrec.ranker.fast import TokenCache

        torch = require("torch", "lm")
        cache = TokenCache(self._tokenizer, self.prompts_)
        ctx = self._tokenizer(contexts, add_special_tokens=False)["input_ids"]
        items = self._tokenizer(candidates, add_special_tokens=False)["input_ids"]
        pairs, split = zip(
            *(
                cache.one_way_pair(c, t, self.config.max_length, self.config.max_item_length)
                for c, t in zip(ctx, items, strict=True)
            ),
            strict=True,
        )
        batch = {
            k: torch.from_numpy(v).to(self._device)
            for k, v in cache.batch(list(pairs), list(split)).items()
        }
        mask = batch["attention_mask"]
        bias = one_way_bias(torch, mask, batch["token_type_ids"], self._module["head"].weight.dtype)
        out = self._module["encoder"](
            input_ids=batch["input_ids"],
            attention_mask=bias,
            token_type_ids=batch["token_type_ids"],
        ).last_hidden_state
        m = mask.unsqueeze(-1).to(out.dtype)
        return (out * m).sum(1) / m.sum(1).clamp(min=1.0)

    def _pooled_cached(self, contexts: list[str], candidates: list[str]) -> Any:
        """:meth:`_pooled` through the frozen-encoder cache (head mode during fit)."""
        torch = require("torch", "lm")

        cache = self._pool_cache
        if cache is None or self.config.mode != "head":
            return self._pooled(contexts, candidates)
        keys = list(zip(contexts, candidates, strict=True))
        todo = [i for i, k in enumerate(keys) if k not in cache]
        if todo:
            with torch.no_grad():
                fresh = self._pooled([contexts[i] for i in todo], [candidates[i] for i in todo])
            for i, row in zip(todo, fresh.float(), strict=True):
                cache[keys[i]] = row
        return torch.stack([cache[k] for k in keys])

    def _logits(
        self, contexts: list[str], candidates: list[str], features: np.ndarray | None = None
    ) -> Any:
        """Logits (tensor (n,)) of prompt pairs (plus the wide part on ``features``)."""
        torch = require("torch", "lm")

        pooled = self._pooled_cached(contexts, candidates)
        logit = self._module["head"](pooled).squeeze(-1)
        if "wide" in self._module:
            if features is None:
                raise ConfigError(
                    "This ranker was built with side_features=True and needs the side "
                    "features of each pair (lmrec.ranker.features.side_features)."
                )
            x = torch.as_tensor(np.asarray(features, np.float32), device=pooled.device)
            logit = logit + self._module["wide"](x).squeeze(-1).to(logit.dtype)
        return logit

    def _predict(
        self, contexts: list[str], candidates: list[str], features: np.ndarray | None = None
    ) -> np.ndarray:
        """Logits of prompt pairs as float32, in ``score_batch_size`` chunks, no grad."""
        torch = require("torch", "lm")

        out = np.empty(len(contexts), np.float32)
        step = self.config.score_batch_size
        self._module.eval()
        with torch.inference_mode():
            for s in range(0, len(contexts), step):
                feats = None if features is None else features[s : s + step]
                out[s : s + step] = (
                    self._logits(contexts[s : s + step], candidates[s : s + step], feats)
                    .float()
                    .cpu()
                    .numpy()
                )
        return out

    def _init_wide(self, examples: Examples) -> None:
        """Start the wide part at a logistic regression on the training examples' features."""
        torch = require("torch", "lm")

        if "wide" not in self._module:
            return
        if examples.features is None:
            raise ConfigError(
                "side_features=True needs Examples.features (see lmrec.ranker.features)."
            )
        w, b = fit_logistic(examples.features, examples.labels)
        with torch.no_grad():
            self._module["wide"].weight.copy_(torch.as_tensor(w, dtype=torch.float32)[None, :])
            self._module["wide"].bias.fill_(b)

    def trainable_parameters(self) -> tuple[int, int]:
        """``(trainable, total)`` parameter counts of the cross-encoder (after fit/load)."""
        self._check_module()
        params = list(self._module.parameters())
        return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)

    def _check_module(self) -> None:
        if self._module is None:
            raise NotFittedError(
                "LMRanker is not fitted; call .fit(data) first (or Model.load(dir))."
            )

    # ------------------------------------------------------------------ fitting
    def _fit(self, dataset: Dataset, *, valid: Dataset | None, options: FitOptions) -> None:
        torch = require("torch", "lm")

        from lmrec.ranker.trainer import Trainer

        cfg = self.config
        check_template(cfg.template)
        threads = torch.get_num_threads()
        if cfg.n_threads is not None:
            torch.set_num_threads(cfg.n_threads)
        try:
            self.prompts_ = PromptBuilder.from_dataset(
                dataset,
                template=cfg.template,
                n_history=cfg.n_history,
                like_threshold=cfg.like_threshold,
            )
            self.item_stats_ = (
                ItemStats.from_prompts(self.prompts_, dataset.n_items)
                if cfg.side_features
                else None
            )
            rng = np.random.default_rng(cfg.seed)
            hard = options.hard_negatives
            examples = self.build_examples(
                dataset, rng, None if hard is None else np.asarray(hard, np.int64)
            )
            held_out = None
            if cfg.eval_every:
                perm = rng.permutation(len(examples))
                n_valid = max(2, int(round(cfg.validation_fraction * len(examples))))
                held_out, examples = examples.take(perm[:n_valid]), examples.take(perm[n_valid:])
            self._build()
            self._init_wide(examples)
            self._pool_cache = {} if cfg.cache_frozen else None
            from lmrec.train.distributed import DistInfo, setup_distributed

            dist = setup_distributed() if cfg.distributed else DistInfo()
            trainer = Trainer(
                self._module, self._logits, cfg, checkpoint_dir=options.checkpoint_dir, dist=dist
            )
            self.train_log_ = trainer.train(examples, held_out, self.evaluate_auc)
        finally:
            self._pool_cache = None
            torch.set_num_threads(threads)

    def build_examples(
        self, dataset: Dataset, rng: np.random.Generator, hard: np.ndarray | None = None
    ) -> Examples:
        """Positives (every interaction, history before it) and sampled negatives."""
        if not LMRanker.prompts_.is_set(self) or not LMRanker.seen_.is_set(self):
            raise NotFittedError("build_examples runs inside LMRanker.fit (it needs the prompts).")
        cfg, prompts = self.config, self.prompts_
        counts = np.diff(prompts.indptr)
        users = np.repeat(np.arange(len(counts)), counts)
        pos_in_user = np.arange(len(users)) - prompts.indptr[users]
        items = prompts.items
        n_pos = len(users)
        budget = cfg.few_shot if cfg.few_shot is not None else cfg.max_examples
        per_pos = 1 + cfg.n_negatives
        if budget is not None and n_pos * per_pos > budget:
            keep = max(1, budget // per_pos) if cfg.few_shot is None else max(1, budget // 2)
            sel = np.sort(rng.choice(n_pos, size=keep, replace=False))
            users, pos_in_user, items = users[sel], pos_in_user[sel], items[sel]
        # Few-shot draws spare negatives: some are dropped below as already seen.
        n_neg = cfg.n_negatives if cfg.few_shot is None else 2
        neg_users = np.repeat(users, n_neg)
        neg_pos = np.repeat(pos_in_user, n_neg)
        pop = np.bincount(prompts.items, minlength=dataset.n_items).astype(np.float64)
        neg_items = rng.choice(dataset.n_items, size=len(neg_users), p=pop / pop.sum())
        if hard is not None and cfg.hard_fraction > 0:
            use = rng.random(len(neg_users)) < cfg.hard_fraction
            rows = hard[neg_users[use]]
            pick = rows[np.arange(len(rows)), rng.integers(0, hard.shape[1], len(rows))]
            ok = pick >= 0
            neg_items[np.flatnonzero(use)[ok]] = pick[ok]
        clash = np.asarray(self._seen[neg_users, neg_items]).ravel() > 0
        neg_users, neg_pos, neg_items = neg_users[~clash], neg_pos[~clash], neg_items[~clash]
        all_users = np.concatenate([users, neg_users])
        all_items = np.concatenate([items, neg_items])
        ends = np.concatenate([pos_in_user, neg_pos])
        labels = np.concatenate([np.ones(len(users)), np.zeros(len(neg_users))]).astype(np.float32)
        if cfg.few_shot is not None:  # exactly few_shot examples, half of them positive
            pos = np.flatnonzero(labels == 1)[: cfg.few_shot // 2]
            neg = np.flatnonzero(labels == 0)[: cfg.few_shot - len(pos)]
            order = rng.permutation(np.concatenate([pos, neg]))
            all_users, all_items, ends, labels = (
                all_users[order],
                all_items[order],
                ends[order],
                labels[order],
            )
        ctx, cand = prompts.pairs(all_users, all_items, ends)
        feats = (
            side_features(prompts, self.item_stats_, all_users, all_items, ends)
            if self.item_stats_ is not None
            else None
        )
        return Examples(ctx, cand, labels, feats)

    def evaluate_auc(self, examples: Examples) -> float:
        """ROC AUC of the ranker's logits on labelled examples."""
        from lmrec.eval.pointwise import auc

        return auc(
            examples.labels,
            self._predict(examples.contexts, examples.candidates, examples.features),
        )

    def loss(self, examples: Examples) -> float:
        """Mean binary cross-entropy of the ranker's logits on labelled examples."""
        from lmrec.eval.pointwise import log_loss

        self._check_module()
        logits = self._predict(examples.contexts, examples.candidates, examples.features)
        logits = logits.astype(np.float64)
        return log_loss(examples.labels, 1.0 / (1.0 + np.exp(-logits)))

    def fit_examples(
        self,
        examples: Examples,
        valid: Examples | None = None,
        *,
        checkpoint_dir: str | Path | None = None,
    ) -> list[dict[str, float]]:
        """Fine-tune on ready-made prompt pairs (e.g. a CTR task); returns the step log.

        The ranker can then score pairs with :meth:`predict_pairs` but not users
        (it has no data set); use :meth:`fit` for a recommender.
        """
        torch = require("torch", "lm")

        from lmrec.ranker.trainer import Trainer

        threads = torch.get_num_threads()
        if self.config.n_threads is not None:
            torch.set_num_threads(self.config.n_threads)
        try:
            self._build()
            self._init_wide(examples)
            self._pool_cache = {} if self.config.cache_frozen else None
            trainer = Trainer(
                self._module, self._logits, self.config, checkpoint_dir=checkpoint_dir
            )
            self.train_log_ = trainer.train(examples, valid, self.evaluate_auc)
        finally:
            self._pool_cache = None
            torch.set_num_threads(threads)
        return self.train_log_

    def predict_pairs(
        self, contexts: list[str], candidates: list[str], features: np.ndarray | None = None
    ) -> np.ndarray:
        """Logits (float32) of (context, candidate) text pairs (and their side features)."""
        self._check_module()
        return self._predict(list(contexts), list(candidates), features)

    # ------------------------------------------------------------------ scoring
    def score_candidates(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """Logits of candidate items per user.

        Parameters
        ----------
        user_idx : ndarray (n,)
            Dense user indices.
        item_idx : ndarray (n, c)
            Dense candidate item indices per user; -1 entries score ``-inf``.

        Returns
        -------
        ndarray (n, c) float32
        """
        self._check_fitted()
        self._check_module()
        user_idx = np.asarray(user_idx, np.int64)
        item_idx = np.asarray(item_idx, np.int64)
        if item_idx.ndim != 2 or item_idx.shape[0] != len(user_idx):
            raise ConfigError(
                f"score_candidates needs item_idx of shape (len(user_idx), c) = "
                f"({len(user_idx)}, c); got {item_idx.shape}."
            )
        out = np.full(item_idx.shape, -np.inf, np.float32)
        rows, cols = np.nonzero(item_idx >= 0)
        if len(rows):
            users, items = user_idx[rows], item_idx[rows, cols]
            ctx, cand = self.prompts_.pairs(users, items)
            feats = (
                side_features(self.prompts_, self.item_stats_, users, items)
                if self.item_stats_ is not None
                else None
            )
            out[rows, cols] = self._predict(ctx, cand, feats)
        return out

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        if self.n_items > self.config.full_rank_limit:
            raise ConfigError(
                f"LMRanker is a cross-encoder (one forward pass per user-item pair) and will not "
                f"rank all {self.n_items:,} items (full_rank_limit={self.config.full_rank_limit}). "
                "Use score_candidates(user_idx, item_idx), or the 'pipeline' model, which "
                "reranks a retriever's top-N candidates."
            )
        cand = np.broadcast_to(np.arange(self.n_items), (len(user_idx), self.n_items))
        return self.score_candidates(user_idx, cand)

    # ------------------------------------------------------------------ new users, explanations
    def score_sequences(self, sequences: Sequence[np.ndarray]) -> np.ndarray:
        """Logits of every item for new users: the prompt shows each sequence (item
        indices, oldest first) without attributes or like marks; see
        :mod:`lmrec.ranker.histories`. Catalogs beyond ``full_rank_limit`` raise."""
        return self.score_histories(sequences)

    def score_histories(
        self, histories: Sequence[np.ndarray], *, items: np.ndarray | None = None
    ) -> np.ndarray:
        """As :meth:`Recommender.score_histories`; with ``items`` only those pairs are
        scored, so any catalog size works."""
        from lmrec.ranker.histories import ranker_score_histories

        self._check_fitted()
        return ranker_score_histories(self, histories, items)

    def user_sequence(self, user_idx: int) -> np.ndarray:
        """The user's items in time order, oldest first (as the prompt reads them)."""
        return self.prompts_.positions(int(user_idx)).astype(np.int64)

    def _attribute(self, item: int, history: np.ndarray, user_idx: int | None) -> Attribution:
        """Occlusion of history items in the prompt (known users keep attributes and marks)."""
        from lmrec.ranker.histories import ranker_attribute

        return ranker_attribute(self, item, history, user_idx)

    # ------------------------------------------------------------------ compression
    def merge_and_quantize(self, *, per_channel: tuple[str, ...] = ("output.dense",)) -> LMRanker:
        """A scoring-only copy: LoRA merged into the weights, Linear layers dynamic int8.

        Uses ``merge_and_unload`` (LoRA mode) and ``torch.ao.quantization.quantize_dynamic``
        on the encoder; the head and the wide part stay float32. Linear layers whose
        name ends with one of ``per_channel`` get one weight scale per output row
        (``per_channel_dynamic_qconfig``), the others one scale per matrix. The default
        picks the attention and feed-forward output projections of BERT-style encoders,
        whose activations carry the outliers: on all-MiniLM-L6-v2 this kept int8 as fast
        as all-per-tensor (fbgemm/x86 kernels) while tracking float32 much more closely;
        all-per-channel (``per_channel=("",)``) was about 3x slower than per-tensor on 2
        x86 cores.
        ``per_channel=()`` quantizes every matrix per tensor. The copy cannot be trained
        or saved.
        """
        torch = require("torch", "lm")

        self._check_module()
        twin = copy.copy(self)
        module = copy.deepcopy(self._module).to("cpu")  # torch.ao int8 kernels run on the CPU
        if self.config.mode == "lora":
            module["encoder"] = module["encoder"].merge_and_unload()
        module.eval()
        ao = torch.ao.quantization
        spec = {
            name: ao.per_channel_dynamic_qconfig
            if any(name.endswith(suffix) for suffix in per_channel)
            else ao.default_dynamic_qconfig
            for name, layer in module["encoder"].named_modules()
            if isinstance(layer, torch.nn.Linear)
        }
        # The 385-weight head stays float32: quantizing it saves nothing and costs accuracy.
        module["encoder"] = ao.quantize_dynamic(module["encoder"], spec, dtype=torch.qint8)
        twin._module = module
        twin._device = torch.device("cpu")
        twin.quantized_ = True
        return twin

    def latency(self, user_idx: int, item_idx: np.ndarray, *, repeats: int = 3) -> float:
        """Best-of-``repeats`` seconds to score ``item_idx`` candidates for one user."""
        best = np.inf
        for _ in range(repeats):
            t = time.perf_counter()
            self.score_candidates(np.array([user_idx]), np.asarray(item_idx)[None, :])
            best = min(best, time.perf_counter() - t)
        return float(best)

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        self._check_module()
        if self.quantized_:
            raise ConfigError(
                "A merged, int8-quantized LMRanker cannot be saved; save the original."
            )
        p = self.prompts_
        if p is None:
            raise NotFittedError("This LMRanker was trained with fit_examples and has no data set.")
        arrays = {
            f"param.{n}": t.detach().float().cpu().numpy().copy()
            for n, t in self._module.named_parameters()
            if t.requires_grad or n.startswith("wide.")
        }
        arrays.update({"prompt.indptr": p.indptr, "prompt.items": p.items, "prompt.liked": p.liked})
        if self.item_stats_ is not None:
            s = self.item_stats_
            arrays.update({"side.count": s.count, "side.rated": s.rated, "side.likes": s.likes})
        meta = {
            "item_texts": p.item_texts,
            "item_titles": p.item_titles,
            "user_texts": p.user_texts,
            "train_log": self.train_log_ or [],
        }
        return arrays, meta

    def _set_state(self, arrays: StateArrays, meta: dict[str, Any]) -> None:
        torch = require("torch", "lm")

        cfg = self.config
        n_users, n_items = self._seen.shape
        item_texts = _saved_strings(meta, "item_texts", n_items)
        item_titles = _saved_strings(meta, "item_titles", n_items)
        user_texts = _saved_strings(meta, "user_texts", n_users)
        indptr = arrays.int("prompt.indptr", (n_users + 1,), low=0)
        items = arrays.int("prompt.items", (int(indptr[-1]),), low=0, high=n_items)
        liked = arrays.int(
            "prompt.liked", (len(items),), low=-1, high=2, dtypes=(np.int8, np.int32, np.int64)
        )
        if indptr[0] != 0 or np.any(np.diff(indptr) < 0):
            raise ModelFileError("The ranker's saved prompt histories have invalid pointers.")
        self.prompts_ = PromptBuilder(
            item_texts,
            item_titles,
            user_texts,
            indptr,
            items,
            liked,
            template=cfg.template,
            n_history=cfg.n_history,
        )
        self.train_log_ = list(meta.get("train_log", []))
        self.item_stats_ = None
        if "side.count" in arrays:
            count, rated, likes = (
                arrays.float(f"side.{k}", (n_items,), dtypes=(np.float32, np.float64))
                for k in ("count", "rated", "likes")
            )
            self.item_stats_ = ItemStats(count, rated, likes)
        self._build("auto")
        params = dict(self._module.named_parameters())
        with torch.no_grad():
            for key in arrays.keys("param."):
                name = key[len("param.") :]
                if name not in params:
                    raise ModelFileError(
                        f"Saved ranker weight {name!r} does not fit the base model."
                    )
                value = arrays.float(key, tuple(params[name].shape))
                params[name].copy_(torch.from_numpy(np.asarray(value)))


def one_way_bias(torch: Any, mask: Any, types: Any, dtype: Any) -> Any:
    """Additive attention mask (n, 1, t, t): token i sees token j when j is not padding
    and j's segment is not after i's (the context, segment 0, never sees the item)."""
    allowed = mask[:, None, :].bool() & (types[:, None, :] <= types[:, :, None])
    bias = torch.zeros(allowed.shape, dtype=dtype, device=mask.device)
    return bias.masked_fill(~allowed, torch.finfo(dtype).min)[:, None]


def _saved_strings(meta: dict[str, Any], key: str, want: int) -> list[str]:
    """``meta[key]``, checked to be a list of ``want`` strings (the ranker's saved texts)."""
    value = meta.get(key)
    if not (
        isinstance(value, list) and len(value) == want and all(isinstance(t, str) for t in value)
    ):
        raise ModelFileError(f"The ranker's saved {key} must be {want} strings.")
    return list(value)
