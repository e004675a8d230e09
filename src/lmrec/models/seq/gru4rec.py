"""GRU4Rec: next-item prediction with a recurrent network (Hidasi et al., ICLR 2016).

The history, in time order, runs through a GRU; its state after the last item, mapped
back to item space by a linear layer, is matched against the item table by a dot
product. It is trained with the same losses and item representations as
:class:`~lmrec.models.seq.sasrec.SASRec` (cross-entropy over the catalog by default,
which Hidasi & Czapp, RecSys 2023, also found strongest).
"""

from __future__ import annotations

from pydantic import Field

from lmrec.models.seq.base import SequentialRecommender
from lmrec.models.seq.config import SequenceConfig


class GRU4RecConfig(SequenceConfig):
    """Hyperparameters of :class:`GRU4Rec` (the shared ones: :class:`SequenceConfig`)."""

    n_layers: int = Field(default=1, ge=1)
    """Stacked GRU layers."""


class GRU4Rec(SequentialRecommender):
    """Recurrent next-item model (see the module docstring)."""

    name = "gru4rec"
    config_class = GRU4RecConfig
    config: GRU4RecConfig
    encoder_kind = "gru4rec"

    def _encoder_params(self) -> dict[str, int]:
        return {"n_layers": self.config.n_layers, "n_heads": 1}
