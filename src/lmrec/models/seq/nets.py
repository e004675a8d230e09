"""The torch modules of the sequence models: item tower, causal self-attention, GRU.

Imported only inside functions (it imports torch at the top). Modules are built on the
``meta`` device and then initialised from an explicit ``torch.Generator``
(:func:`build`), so building a model never draws from torch's global random state,
and dropout draws its masks from a per-batch generator (:class:`Noise`) for the whole
*global* batch, so a data-parallel step equals the single-process step.

Item tower (:class:`ItemTower`), for items ``i`` (index 0 is the padding item)::

    id:       E[i]
    text:     A(t_i)                 t_i: frozen content vector of the item (below)
    id+text:  m_i * E[i] + w_i * A(t_i)
              m_i: 1 if the item has training interactions; w_i: the text weight
              (1, or c_i / (c_i + k) with ``text_weight='popularity'``, c_i the item's
              training interactions; 1 for items without any)

``t_i`` is the unit-length LM vector of the item text followed by the item's centred
one-hot attributes times ``attribute_weight`` (``SequentialRecommender._item_text``).

``A`` is a linear map, or UniSRec's mixture of whitening experts (Hou et al., KDD 2022):
``A(t) = sum_k g_k(t) (t - b_k) W_k`` with ``g = softmax(t W_g)``. The tower's table is
both the input embedding of a history and the output layer (tied weights): the score of
item ``i`` after a history is ``h . item(i)``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from lmrec._optional import require
from lmrec.errors import NotFittedError

if TYPE_CHECKING:
    import torch
    import torch.nn.functional as F
    from torch import nn
else:  # at run time through require: thread settings first (lmrec._threads)
    torch = require("torch", "torch")
    F = torch.nn.functional
    nn = torch.nn

INIT_STD = 0.02


def lookup(table: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Rows ``idx`` of ``table``, as ``table[idx]``, with a deterministic gradient.

    The gradient of ``table[idx]`` is ``index_put_(accumulate=True)``, which on CPU adds
    float rows from several threads at once (atomic adds in no fixed order), so two runs
    of the same seeded fit could differ in the last bits and then drift apart over the
    epochs (about 1 in 6 runs with 2 threads). ``F.embedding``'s gradient splits the
    table's rows between threads and adds each row's terms in index order.
    """
    return F.embedding(idx, table)


class Noise:
    """Where dropout masks come from in the current step (none: no dropout).

    ``gen`` is the batch's generator, ``n`` the global batch size, ``[lo, hi)`` this
    rank's rows of it: masks are drawn for all ``n`` rows and sliced, so they do not
    depend on how the batch is split over ranks.
    """

    def __init__(self) -> None:
        self.gen: Any = None
        self.lo, self.hi, self.n = 0, 0, 0

    def set(self, gen: Any, lo: int, hi: int, n: int) -> None:
        self.gen, self.lo, self.hi, self.n = gen, lo, hi, n

    def clear(self) -> None:
        self.gen = None


class Dropout(nn.Module):
    """Inverted dropout over batch-major tensors, masks drawn from :class:`Noise`."""

    def __init__(self, p: float, noise: Noise) -> None:
        super().__init__()
        self.p, self.noise = p, noise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nz = self.noise
        if not self.training or self.p == 0 or nz.gen is None:
            return x
        u = torch.rand((nz.n, *x.shape[1:]), generator=nz.gen, device=nz.gen.device)
        keep = (u[nz.lo : nz.hi] >= self.p).to(device=x.device, dtype=x.dtype)
        return x * keep / (1.0 - self.p)


class MoEAdaptor(nn.Module):
    """UniSRec's parametric whitening experts mixed by a softmax gate over the text vector."""

    def __init__(self, d_in: int, d_out: int, n_experts: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(n_experts, d_in))
        self.weight = nn.Parameter(torch.empty(n_experts, d_in, d_out))
        self.gate = nn.Parameter(torch.empty(d_in, n_experts))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        g = torch.softmax(t @ self.gate, dim=-1)  # (n, K)
        experts = torch.einsum("nkd,kde->nke", t[:, None, :] - self.bias, self.weight)
        return (g[..., None] * experts).sum(dim=1)


class ItemTower(nn.Module):
    """The item table ``(n_items + 1, d)``; row 0 (padding) is zero. See the module docstring."""

    def __init__(
        self, n_items: int, d: int, repr_: str, text_dim: int, adaptor: str, n_experts: int
    ) -> None:
        super().__init__()
        self.n_items, self.repr = n_items, repr_
        self.id = nn.Parameter(torch.empty(n_items + 1, d)) if "id" in repr_ else None
        self.adaptor: nn.Module | None = None
        if "text" in repr_:
            self.adaptor = (
                MoEAdaptor(text_dim, d, n_experts) if adaptor == "moe" else nn.Linear(text_dim, d)
            )
        self.text: torch.Tensor | None = None  # (n_items, text_dim), frozen
        self.known: torch.Tensor | None = None  # (n_items,), 1 for items with interactions
        self.text_weight: torch.Tensor | None = None  # (n_items,), None: 1 for every item

    def set_data(
        self,
        text: torch.Tensor | None,
        known: torch.Tensor,
        text_weight: torch.Tensor | None = None,
    ) -> None:
        """Attach the frozen text vectors, the known-item mask and the per-item weight of
        the text part (None: 1), none of them parameters."""
        self.text, self.known, self.text_weight = text, known, text_weight

    def forward(
        self, rows: torch.Tensor | None = None, id_keep: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Vectors of item ``rows`` (1-based, 0 = padding), or the whole table.

        ``id_keep`` (float, per item, 0-based) zeroes the id part of dropped items.
        """
        idx = None if rows is None else rows.clamp(min=1) - 1  # 0-based item index
        parts = []
        if self.id is not None:
            e = self.id[1:] if idx is None else lookup(self.id, idx + 1)
            gate = self.known if self.repr == "id+text" else None
            if id_keep is not None:
                gate = id_keep if gate is None else gate * id_keep
            if gate is not None:
                e = e * (gate if idx is None else gate[idx])[:, None]
            parts.append(e)
        if self.adaptor is not None:
            if self.text is None:
                raise NotFittedError("ItemTower has no text vectors; call set_data(text, known).")
            t = self.adaptor(self.text if idx is None else self.text[idx])
            if self.text_weight is not None:
                w = self.text_weight
                t = t * (w if idx is None else w[idx])[:, None]
            parts.append(t)
        out = parts[0] if len(parts) == 1 else parts[0] + parts[1]
        if rows is None:
            return torch.cat([out.new_zeros((1, out.shape[1])), out], dim=0)
        return out * (rows > 0).to(out.dtype)[:, None]


class AttentionBlock(nn.Module):
    """Pre-norm transformer block: causal multi-head self-attention, then a GELU MLP."""

    def __init__(self, d: int, n_heads: int, dropout: float, noise: Noise) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.out = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.ff1, self.ff2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.drop1, self.drop2 = Dropout(dropout, noise), Dropout(dropout, noise)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, length, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        q, k, v = (
            t.view(b, length, self.n_heads, d // self.n_heads).transpose(1, 2) for t in (q, k, v)
        )
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.drop1(self.out(a.transpose(1, 2).reshape(b, length, d)))
        return x + self.drop2(self.ff2(F.gelu(self.ff1(self.ln2(x)))))


class SASRecEncoder(nn.Module):
    """Causal self-attention over a left-padded window (Kang & McAuley, ICDM 2018)."""

    def __init__(
        self, d: int, max_len: int, n_layers: int, n_heads: int, dropout: float, noise: Noise
    ) -> None:
        super().__init__()
        self.scale = math.sqrt(d)
        self.pos = nn.Parameter(torch.empty(max_len, d))
        self.drop = Dropout(dropout, noise)
        self.blocks = nn.ModuleList(
            AttentionBlock(d, n_heads, dropout, noise) for _ in range(n_layers)
        )
        self.ln = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        length = x.shape[1]
        keep = valid[..., None].to(x.dtype)
        x = self.drop(x * self.scale + self.pos[-length:]) * keep
        causal = torch.ones(length, length, dtype=torch.bool, device=x.device).tril()
        # a query attends to earlier real items; a padding query to itself (output unused)
        eye = torch.eye(length, dtype=torch.bool, device=x.device)
        mask = (causal & valid[:, None, None, :]) | eye
        for block in self.blocks:
            x = block(x, mask) * keep
        return self.ln(x)


class GRUEncoder(nn.Module):
    """GRU over the window (Hidasi et al., ICLR 2016) with a linear map back to item space.

    Inputs are scaled by ``sqrt(d)`` as in :class:`SASRecEncoder`: the item table starts at
    std 0.02 (it is also the output layer), and unscaled it barely moves a GRU whose gates
    expect unit-scale inputs (training then sits on a popularity plateau for several
    epochs, and early stopping ended it there). The states are layer-normalised before
    the output map, which shortens that plateau further.
    """

    def __init__(self, d: int, n_layers: int, dropout: float, noise: Noise) -> None:
        super().__init__()
        self.scale = math.sqrt(d)
        self.drop = Dropout(dropout, noise)
        self.gru = nn.GRU(d, d, n_layers, batch_first=True)
        self.ln = nn.LayerNorm(d)
        self.proj = nn.Linear(d, d)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        h, _ = self.gru(self.drop(x * self.scale) * valid[..., None].to(x.dtype))
        return self.proj(self.ln(h))


class SequenceNet(nn.Module):
    """Item tower + sequence encoder; ``forward`` gives the hidden state at every position."""

    def __init__(self, tower: ItemTower, encoder: nn.Module, dropout: float, noise: Noise) -> None:
        super().__init__()
        self.tower, self.encoder = tower, encoder
        self.noise = noise
        self.in_drop = Dropout(dropout, noise)

    def forward(self, seqs: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """Hidden states (B, L, d) of left-padded 1-based item windows ``seqs`` (B, L)."""
        return self.encoder(self.in_drop(lookup(table, seqs)), seqs > 0)


def build(
    kind: str,
    *,
    n_items: int,
    factors: int,
    max_len: int,
    item_repr: str,
    text_dim: int,
    adaptor: str,
    n_experts: int,
    dropout: float,
    n_layers: int,
    n_heads: int,
    gen: torch.Generator,
    device: Any,
) -> SequenceNet:
    """A :class:`SequenceNet` on ``device`` with every parameter drawn from ``gen``.

    Built on the meta device first, so torch's global generator is never used: weight
    matrices and embeddings ~ N(0, 0.02^2), biases 0, LayerNorm gains 1 (the BERT/SASRec
    initialisation); adaptor weights ~ N(0, 1/text_dim).
    """
    noise = Noise()
    with torch.device("meta"):
        tower = ItemTower(n_items, factors, item_repr, text_dim, adaptor, n_experts)
        if kind == "sasrec":
            enc: nn.Module = SASRecEncoder(factors, max_len, n_layers, n_heads, dropout, noise)
        else:
            enc = GRUEncoder(factors, n_layers, dropout, noise)
        net = SequenceNet(tower, enc, dropout, noise)
    net = net.to_empty(device="cpu")
    with torch.no_grad():
        for name, p in net.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if isinstance(_owner(net, name), nn.LayerNorm):
                p.fill_(1.0 if leaf == "weight" else 0.0)
            elif leaf.startswith("bias"):
                p.zero_()
            else:
                std = INIT_STD
                if name.startswith("tower.adaptor"):
                    std = text_dim**-0.5
                elif name.startswith("encoder.gru"):
                    std = factors**-0.5  # recurrent weights need unit-scale gains
                p.copy_(torch.randn(p.shape, generator=gen) * std)
    return net.to(device)


def _owner(net: nn.Module, name: str) -> nn.Module:
    module = net
    for part in name.split(".")[:-1]:
        module = getattr(module, part)
    return module
