"""SASRec: next-item prediction with causal self-attention (Kang & McAuley, ICDM 2018).

Each user's history, in time order, is read by a stack of causal transformer blocks;
the state after the last item is matched against the item table (tied with the input
embeddings) by a dot product. Trained by default with cross-entropy over the whole
catalog, which is far stronger than the paper's one-negative BCE (Klenitskiy & Vasilev,
RecSys 2023); ``loss="sampled"`` is the large-catalog variant (shared popularity
negatives, log-Q correction). ``item_repr`` puts the language model inside the item
representation: ``text`` reads each item's frozen sentence vector through a trained
adaptor (a mixture of whitening experts, as in UniSRec, Hou et al., KDD 2022), so items
without interactions are recommended and understood with no retraining; ``id+text`` adds
a learned id vector.

See :mod:`lmrec.models.seq.trainer` for the training loop and
:mod:`lmrec.models.seq.base` for scoring, sessions and persistence.

Examples
--------
Users walk items i0 -> i1 -> ... -> i5 -> i0 from different starts; a session is read in
its order:

>>> import pandas as pd
>>> from lmrec.data import Dataset
>>> walks = [(f"u{u}", f"i{(u + t) % 6}", t) for u in range(30) for t in range(5)]
>>> data = Dataset.from_frame(pd.DataFrame(walks, columns=["user", "item", "timestamp"]))
>>> model = SASRec(factors=16, max_len=4, epochs=30, lr=0.01, device="cpu").fit(data)
>>> model.recommend_for_items(["i1", "i2", "i3"], k=1)["item"].tolist()
['i4']
>>> model.recommend_for_items(["i2", "i3", "i4", "i5"], k=1)["item"].tolist()
['i0']
"""

from __future__ import annotations

from pydantic import Field, model_validator

from lmrec.models.seq.base import SequentialRecommender
from lmrec.models.seq.config import SequenceConfig


class SASRecConfig(SequenceConfig):
    """Hyperparameters of :class:`SASRec` (the shared ones: :class:`SequenceConfig`)."""

    n_layers: int = Field(default=2, ge=1)
    """Transformer blocks."""
    n_heads: int = Field(default=2, ge=1)
    """Attention heads per block (``factors`` must be divisible by it)."""

    @model_validator(mode="after")
    def _heads_divide(self) -> SASRecConfig:
        if self.factors % self.n_heads:
            raise ValueError(
                f"factors ({self.factors}) must be divisible by n_heads ({self.n_heads})"
            )
        return self


class SASRec(SequentialRecommender):
    """Self-attentive sequential recommendation (see the module docstring)."""

    name = "sasrec"
    config_class = SASRecConfig
    config: SASRecConfig
    encoder_kind = "sasrec"

    def _encoder_params(self) -> dict[str, int]:
        return {"n_layers": self.config.n_layers, "n_heads": self.config.n_heads}
