"""What a result was produced with: versions, CPU, threads, time."""

from __future__ import annotations

import os
import platform
import sys
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import torch

PACKAGES = ("harlab", "torch", "numpy", "scipy", "scikit-learn", "pandas")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def package_version(name: str = "harlab") -> str | None:
    """The installed version of package `name`, or None when it is not installed."""
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def describe_environment() -> dict[str, Any]:
    """Versions of Python and the packages that shape results, the CPU, and torch's thread count."""
    versions = {name: package_version(name) for name in PACKAGES}
    return {"python": sys.version.split()[0], "packages": versions, "platform": platform.platform(),
            "machine": platform.machine(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}
