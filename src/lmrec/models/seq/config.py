"""Hyperparameters shared by the sequence models (:class:`SequenceConfig`)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from lmrec.models.config import TorchConfig, search
from lmrec.models.dp import DPConfig
from lmrec.train.torch_utils import Device

ItemRepr = Literal["id", "text", "id+text"]
Loss = Literal["ce", "sampled", "bce"]
Precision = Literal["auto", "fp32", "mixed"]
EpochsFrom = Literal["valid", "last_item", "new_items"]
TextWeight = Literal["uniform", "popularity"]


class SequenceConfig(TorchConfig, DPConfig):
    """Hyperparameters common to :class:`~lmrec.models.seq.sasrec.SASRec` and
    :class:`~lmrec.models.seq.gru4rec.GRU4Rec`.

    Defaults come from ``benchmarks/sequential.py`` on MovieLens-100K (see
    ``benchmarks/RESULTS.md``): an untuned model is close to its tuned best there.
    """

    renamed: ClassVar[dict[str, str]] = {"torch_threads": "n_threads"}

    factors: int = Field(default=64, ge=2, json_schema_extra=search("int_log", 32, 256))
    """Width of the item vectors and of the sequence encoder."""
    max_len: int = Field(default=50, ge=1)
    """Most recent items of a history the encoder reads (training windows have this length)."""
    item_repr: ItemRepr = "id"
    """``id``: a learned vector per item; ``text``: the frozen language-model vector of the
    item's text through a small trained adaptor (inductive: items without interactions are
    scored and understood from their text); ``id+text``: the sum (items without training
    interactions use the text part alone)."""
    adaptor: Literal["linear", "moe"] = "moe"
    """Text adaptor: one linear map, or UniSRec's mixture of ``n_experts`` whitening maps
    (``(e - b_k) W_k`` mixed by a softmax gate over ``e``)."""
    n_experts: int = Field(default=8, ge=1)
    """Experts of the ``moe`` adaptor."""
    id_dropout: float = Field(default=0.1, ge=0, lt=1)
    """``id+text``: share of items whose id vector is zeroed per training step, so that the
    text part also carries signal alone (what an item without interactions gets)."""
    text_weight: TextWeight = "uniform"
    """``id+text``: the weight of an item's text part. ``uniform``: 1. ``popularity``:
    ``c / (c + k)``, with ``c`` the item's training interactions and ``k``
    ``text_weight_count``; items without interactions keep 1 (their text is all they
    have). The text part then carries popular items, where its neighbours in text space
    are well trained, and leaves rare items to their own id vectors. On MovieLens-100K
    (leave-one-out, five seeds) text gained on frequent next items and lost on rare ones
    with ``uniform``; ``popularity`` reached NDCG@10 0.1178 against 0.1100 with ids
    (1.071x, paired CI above zero) with ties in time broken at random, and 0.1084
    against 0.1046 (1.037x, CI includes zero) with ties in file order; ``uniform``:
    1.034x and 1.007x. Much of that gain is in early stopping: fewer weighted fits
    stopped at id+text's early validation peak, and among the fits that trained past it
    the two are level. With ``patience=30`` as well it reached 1.112x ids (random ties)
    and 1.068x (file order), both CIs above zero. It costs new items: on the cold-item
    variant (five draws of new items) ``popularity`` ranked them at 0.881x the NDCG@10 of
    ``uniform``, CI below zero (the same with ``patience=30``), so keep ``uniform`` where
    new items matter (``benchmarks/RESULTS.md``)."""
    text_weight_count: float | None = Field(default=None, gt=0)
    """``text_weight='popularity'``: the training count at which the text part has half
    its weight (None: the median count of the items with interactions)."""
    text_whitening: bool = False
    """Centre and whiten the frozen text vectors over the catalog before the adaptor
    (shrunk towards the identity, so near-empty directions are not blown up): sentence
    vectors crowd into a narrow cone, and whitening spreads them out (Su et al., 2021;
    the motivation of UniSRec's whitening experts)."""
    encoder: str = "all-MiniLM-L6-v2"
    """Sentence encoder of the item text: the bundled default, a local directory or a hub id."""
    text_template: str | None = None
    """Item text template over the item columns (default: every string column)."""
    attribute_weight: float = Field(default=0.5, ge=0)
    """``text``/``id+text``: scale of the item's one-hot attributes (genres and other
    ``|``-separated categories, numeric columns such as the year in 10 quantile bins;
    :func:`lmrec.models.text2cf.item_attributes`), centred and appended to its frozen
    text vector before the adaptor (0: text alone). The same content features as
    ``text2cf``: a sentence vector blurs a genre list and a year, which the one-hot
    columns state exactly. On MovieLens-100K (``benchmarks/RESULTS.md``) they lifted
    sasrec (id+text) on new items from NDCG@10 0.0852 to 0.1027 (text2cf: 0.0967; draw 0
    of the cold-item variant, one fit each) and on known items from 0.1048 to 0.1077
    (leave-one-out, seeds 0-2); sasrec (text) on new items fell from 0.0828 to 0.0635
    (draw 0), on known items it rose from 0.1011 to 0.1033 (seeds 0-2)."""
    dropout: float = Field(default=0.2, ge=0, lt=1, json_schema_extra=search("float", 0.0, 0.5))
    """Dropout on the item inputs and inside the encoder."""
    epochs: int = Field(default=200, ge=1)
    """Most passes over the training windows (early stopping ends sooner with ``valid``)."""
    patience: int = Field(default=15, ge=1)
    """Stop after this many evaluations without a better validation NDCG@10 (with ``valid``).
    One user's one held-out item makes that metric noisy (on MovieLens-100K it moves by
    about 0.005 from one epoch to the next while it still climbs), so a short patience
    stops at a chance peak: with 5, sasrec (id+text) stopped at epoch 18 with its best
    valid 0.1065 at epoch 13; with 15 it ran to epoch 62, best 0.1125 at epoch 47
    (``benchmarks/RESULTS.md``)."""
    epochs_from: EpochsFrom = "valid"
    """How the number of epochs is chosen. ``valid``: early stopping on NDCG@10 of the
    ``valid`` data when it is given, else ``epochs`` passes. ``last_item``: the fit holds
    out each user's latest item itself, early-stops on it and refits on all of the data
    for the best epoch count (no validation data needed; about twice the training time;
    checkpoints cover the refit, and a resumed fit repeats the deterministic search).
    ``new_items``: the same with ``new_item_share`` of the items held out instead, ranked
    among themselves (:mod:`lmrec.models.seq.holdout`): for catalogs that keep adding
    items, with ``item_repr='text'``. On MovieLens-100K's cold-item variant it stopped
    sasrec (text) after 1-3 epochs instead of 24-68 and lifted it on new items from
    NDCG@10 0.0935 to 0.1140 (five draws; text2cf: 0.1142); sasrec (id+text) is better
    stopped on warm items there (0.1240, against 0.1156), since its id vectors need the
    longer training (``benchmarks/RESULTS.md``)."""
    new_item_share: float = Field(default=0.1, gt=0, lt=1)
    """``epochs_from='new_items'``: share of the items with interactions held out."""
    eval_every: int = Field(default=1, ge=1)
    """Evaluate on ``valid`` every this many epochs."""
    batch_size: int = Field(default=128, ge=1)
    """Training windows (sequences of up to ``max_len`` next-item targets) per step."""
    lr: float = Field(default=2e-3, gt=0, json_schema_extra=search("float_log", 0.0001, 0.01))
    """Adam learning rate. Chosen on MovieLens-100K's validation step: over 3 seeds and both
    tie orders, sasrec (id) averaged valid NDCG@10 0.1114 at 1e-3, 0.1137 at 2e-3 and 0.1133
    at 5e-3; 2e-3 varies least between seeds (5e-3 sometimes stops after a few epochs), so
    it is the default (``benchmarks/RESULTS.md``)."""
    weight_decay: float = Field(default=0.0, ge=0)
    """Decoupled (AdamW-style) weight decay per step."""
    loss: Loss = "ce"
    """``ce``: cross-entropy over the full catalog (exact; the default); ``sampled``: softmax
    over the target and ``n_negatives`` shared negatives drawn by popularity, with the log-Q
    correction (large catalogs); ``bce``: one uniform negative per target, binary
    cross-entropy (the original SASRec loss, for reference)."""
    n_negatives: int = Field(default=256, ge=1)
    """Negatives per step of the ``sampled`` loss (shared by the batch)."""
    sample_power: float = Field(default=0.75, ge=0, le=1)
    """``sampled``: negatives drawn in proportion to item count ** power (0: uniform)."""
    logq: bool = True
    """``sampled``: subtract log q(item) from every logit (sampling-bias correction)."""
    device: Device = "auto"
    """``cpu``, ``cuda``, or ``auto`` (CUDA when available)."""
    precision: Precision = "auto"
    """``mixed``: bfloat16 autocast on CPU, float16 autocast with dynamic loss scaling on
    CUDA; ``fp32``; ``auto``: mixed on CUDA, fp32 on CPU."""
    dp_clip: float = 1.0
    """With ``dp_epsilon``: bound on the L2 norm of one user's gradient; a step then samples
    ``batch_size`` *users* on average (see :mod:`lmrec.models.seq.private`)."""

    @model_validator(mode="after")
    def _text_options(self) -> SequenceConfig:
        if self.item_repr == "id" and self.text_template is not None:
            raise ValueError("text_template needs item_repr='text' or 'id+text'")
        if self.text_weight != "uniform" and self.item_repr != "id+text":
            raise ValueError(
                f"text_weight={self.text_weight!r} weighs the text part against the id part, "
                f"so it needs item_repr='id+text' (got {self.item_repr!r})"
            )
        if self.text_weight_count is not None and self.text_weight != "popularity":
            raise ValueError("text_weight_count needs text_weight='popularity'")
        if self.text_weight == "popularity" and self.dp_epsilon is not None:
            raise ValueError(
                "text_weight='popularity' reads each item's training count, which "
                "dp_epsilon keeps private; use text_weight='uniform' with dp_epsilon"
            )
        if self.epochs_from == "new_items" and self.item_repr == "id":
            raise ValueError(
                "epochs_from='new_items' needs item_repr='text' or 'id+text': with ids alone "
                "items without interactions cannot be ranked"
            )
        if self.epochs_from != "valid" and self.dp_epsilon is not None:
            raise ValueError(
                f"epochs_from={self.epochs_from!r} fits twice, which the privacy accounting "
                "does not cover; use epochs_from='valid' (dp_epsilon trains `epochs` passes)"
            )
        return self
