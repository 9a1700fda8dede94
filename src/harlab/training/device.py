"""Where a run trains and in which precision: device names resolved and checked in one line, bf16 only where
the hardware computes it natively, fp16 only with a gradient scaler on CUDA.

`auto` picks a CUDA GPU, then Apple's MPS, then the CPU. A CPU computes bf16 natively only with AVX-512 BF16 or
AMX; elsewhere torch emulates it, slower than fp32, so harlab refuses it there rather than lose time.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import torch

from harlab.errors import HarlabError

Precision = Literal["fp32", "bf16", "fp16"]
DEVICE_CHOICES = "auto, cpu, cuda, cuda:N or mps"
_LOW_PRECISION = {"bf16": torch.bfloat16, "fp16": torch.float16}
_NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """The torch device `name` means (auto, cpu, cuda, cuda:N, mps), or a one-line error when this machine or
    this torch build has no such device."""
    if isinstance(name, torch.device):
        name = str(name)
    text = (name or "auto").strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "mps":
        if not _mps_available():
            raise HarlabError("device 'mps': this machine or torch build has no Apple MPS backend; use --device auto "
                              "or cpu")
        return torch.device("mps")
    if match := re.fullmatch(r"cuda(?::(\d+))?", text):
        if not torch.cuda.is_available():
            raise HarlabError(f"device {text!r}: torch {torch.__version__} sees no CUDA GPU here; use --device auto or "
                              "cpu, or install a CUDA build of torch on a machine with an NVIDIA GPU")
        index = int(match.group(1) or 0)
        if index >= (count := torch.cuda.device_count()):
            raise HarlabError(f"device {text!r}: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}")
        return torch.device("cuda", index)
    raise HarlabError(f"unknown device {name!r}; use {DEVICE_CHOICES}")


def cpu_features() -> set[str]:
    """The CPU's feature flags as Linux lists them (empty where /proc/cpuinfo does not exist)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return set()
    flags = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return set(flags.partition(":")[2].split())


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX-512 BF16 or AMX), where bf16 autocast pays."""
    return any(flag in cpu_features() for flag in _NATIVE_BF16_FLAGS)


def check_precision(precision: Precision, device: torch.device) -> None:
    """A one-line error when `device` cannot train in `precision` (or only by slow emulation)."""
    if precision == "fp16" and device.type != "cuda":
        raise HarlabError(f"precision fp16 trains only on a CUDA GPU (with a gradient scaler), not on {device.type}; "
                          "use --precision bf16 or fp32")
    if precision != "bf16":
        return
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise HarlabError(f"precision bf16: GPU {torch.cuda.get_device_name(device)} has no bf16; use --precision "
                          "fp16 or fp32")
    if device.type == "cpu" and not cpu_has_native_bf16():
        raise HarlabError(f"precision bf16: this CPU ({torch.backends.cpu.get_cpu_capability()}) has no native bf16 "
                          "(AVX-512 BF16 or AMX), so torch would emulate it, slower than fp32; use --precision fp32")


@contextlib.contextmanager
def autocast(device: torch.device, precision: Precision) -> Iterator[None]:
    """Mixed precision for the forward pass and the loss: bf16/fp16 autocast on `device`, nothing for fp32."""
    if precision == "fp32":
        yield
        return
    with torch.autocast(device.type, dtype=_LOW_PRECISION[precision]):
        yield


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """torch's CPU threads set to `threads` (None: unchanged) inside the block; a CPU run's numbers depend on it."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def gradient_scaler(device: torch.device, precision: Precision) -> torch.amp.GradScaler | None:
    """fp16's loss scaler (its gradients would underflow without one); None in every other precision."""
    return torch.amp.GradScaler(device.type) if precision == "fp16" else None
