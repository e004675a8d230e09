"""Small pieces every torch model's fit needs: device, autocast, threads, seeds.

torch is passed in (never imported here), so ``import lmrec.train.torch_utils`` stays cheap.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np

from lmrec.errors import ConfigError
from lmrec.train.distributed import DistInfo, broadcast_

Device = Literal["auto", "cpu", "cuda"]


def resolve_device(torch: Any, device: Device) -> Any:
    """The torch device for ``device``: ``"auto"`` is CUDA when available, else CPU.

    Raises :class:`ConfigError` when ``"cuda"`` is asked for and none is available.
    Called in ``fit`` only (constructors never probe devices).
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "device='cuda' was requested but torch sees no CUDA device; "
            "use device='cpu' or device='auto'."
        )
    return torch.device(device)


def autocast(torch: Any, device: Any, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    """bfloat16 autocast on ``device`` when ``enabled``, else a no-op context."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


@contextlib.contextmanager
def torch_threads(torch: Any, n_threads: int | None) -> Iterator[None]:
    """Use ``n_threads`` intra-op threads inside the block and restore the old count after.

    ``torch.set_num_threads`` is process-global, so it is changed only for the duration
    of a ``fit`` that asks for it and always put back.
    """
    if n_threads is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def torch_generator(torch: Any, seed: int) -> Any:
    """A CPU ``torch.Generator`` seeded with ``seed`` (parameters are initialised on CPU)."""
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(seed))
    return gen


def draw_seed(seed: int | None) -> int:
    """The config seed, or fresh OS entropy when it is ``None`` (recorded in the model)."""
    if seed is not None:
        return int(seed)
    return int(np.random.SeedSequence().generate_state(1, np.uint32)[0])


def shared_seed(torch: Any, seed: int, dist: DistInfo) -> int:
    """Rank 0's ``seed`` on every rank (a drawn seed differs per process; batches must not)."""
    if not dist.is_distributed:
        return seed
    t = torch.tensor([seed], dtype=torch.int64)
    broadcast_(torch, [t])
    return int(t.item())
