"""Numeric precision of prediction: ``fp32`` (default), ``bf16`` / ``fp16`` autocast, or ``auto``.

* ``fp32``: the network as it is (the reference's numbers; the default, never changed silently).
* ``bf16``: ``torch.autocast`` with bfloat16 -- on the CPU only where it has bf16 matrix
  instructions (``amx_bf16`` or ``avx512_bf16``; elsewhere bf16 is emulated and slower, so it is
  refused), on CUDA where the GPU supports bf16. Weights stay float32; matrix products and
  convolutions run in bf16, the output is returned as float32.
* ``fp16``: CUDA only (``torch.autocast(dtype=float16)``).
* ``auto``: ``bf16`` where the hardware supports it, else ``fp32``; :func:`resolve_precision`
  returns the reason, which the API logs and the CLI prints.
"""

from __future__ import annotations

import contextlib
import logging
from functools import lru_cache
from pathlib import Path
from typing import ContextManager, Optional

import torch

__all__ = ["PRECISIONS", "cpu_bf16_flags", "resolve_precision", "autocast"]

PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16", "auto")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
_BF16_FLAGS = ("amx_bf16", "avx512_bf16")
log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def cpu_bf16_flags() -> tuple[str, ...]:
    """The CPU's bf16 matrix-instruction flags (``amx_bf16``, ``avx512_bf16``) from /proc/cpuinfo, or ()."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ()
    for line in text.splitlines():
        if line.startswith("flags") and ":" in line:
            flags = set(line.split(":", 1)[1].split())
            return tuple(f for f in _BF16_FLAGS if f in flags)
    return ()


def _cuda_bf16(device: torch.device) -> bool:
    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def resolve_precision(precision: str, device: torch.device | str = "cpu") -> tuple[str, str]:
    """``(fp32 | bf16 | fp16, reason)`` for the requested ``precision`` on ``device``.

    Raises ``ValueError`` for an unknown precision or one the hardware cannot run fast
    (``bf16`` on a CPU without AMX/AVX-512-BF16, ``fp16`` on the CPU).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(map(repr, PRECISIONS))}, got {precision!r}")
    dev = torch.device(device)
    if precision == "fp32":
        return "fp32", "fp32 requested"
    if dev.type == "cuda":
        if precision == "fp16":
            return "fp16", "fp16 autocast on CUDA"
        if _cuda_bf16(dev):
            return "bf16", f"bf16 autocast: {torch.cuda.get_device_name(dev)} supports bf16"
        if precision == "auto":
            return "fp32", "fp32: this GPU has no bf16 support"
        raise ValueError("precision 'bf16' requested but this GPU does not support bf16; use 'fp16' or 'fp32'")
    if dev.type != "cpu":
        if precision == "auto":
            return "fp32", f"fp32: no reduced precision on device type {dev.type!r}"
        raise ValueError(f"precision {precision!r} is not supported on device {str(dev)!r}; use 'fp32'")
    if precision == "fp16":
        raise ValueError("precision 'fp16' runs on CUDA only; on the CPU use 'bf16' (where supported) or 'fp32'")
    flags = cpu_bf16_flags()
    if flags:
        return "bf16", f"bf16 autocast: the CPU has {' and '.join(flags)}"
    if precision == "auto":
        return "fp32", "fp32: the CPU has neither AMX nor AVX-512-BF16 (bf16 would be emulated and slower)"
    raise ValueError(
        "precision 'bf16' requested but this CPU has neither AMX (amx_bf16) nor AVX-512-BF16 (avx512_bf16), "
        "so bf16 would be emulated and slower than fp32; use 'fp32' or 'auto'"
    )


def autocast(precision: str, device: torch.device | str = "cpu") -> ContextManager[Optional[object]]:
    """The autocast context for a *resolved* precision (``fp32``: a no-op)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=_DTYPES[precision])
