"""Limits on what a flag, a spec or an input file may ask for, so that a typo cannot exhaust memory or time.

Each amount is estimated before anything is allocated and refused with one line giving the amount and the
limit. A user who really means it raises a limit with its environment variable, HARLAB_MAX_<NAME>
(e.g. HARLAB_MAX_MEMORY=8e9).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harlab.errors import DataError, HarlabError


def _number(amount: float) -> str:
    """1,234 below a million, else 1.2e10."""
    if amount < 1e6:
        return f"{amount:,.0f}"
    mantissa, exponent = f"{amount:.1e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)}"


def _bytes(amount: float) -> str:
    """2.95 GB, 340 MB, 12 kB, 100 B."""
    for factor, unit in ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if amount >= factor:
            return f"{amount / factor:.3g} {unit}"
    return f"{amount:.0f} B"


@dataclass(frozen=True)
class Limit:
    """A named limit: `default`, unless the environment variable HARLAB_MAX_<name> sets another."""

    name: str
    default: int
    unit: str  # what is counted: "runs", "parameters", "bytes", "values"

    @property
    def variable(self) -> str:
        """The environment variable that sets this limit."""
        return f"HARLAB_MAX_{self.name}"

    def value(self) -> int:
        """The limit in force."""
        raw = os.environ.get(self.variable, "").strip()
        if not raw:
            return self.default
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not 1 <= value < math.inf:
            raise HarlabError(f"{self.variable}={raw!r} is not a number of {self.unit}; set it to a positive number "
                              f"such as {_number(self.default)}")
        return int(value)

    def show(self, amount: float) -> str:
        """An amount with its unit: `3e12 parameters`, `2.95 GB`."""
        return _bytes(amount) if self.unit == "bytes" else f"{_number(amount)} {self.unit}"

    def check(self, amount: int, what: str, fix: str) -> None:
        """Refuse `amount` (what `what` gives) over the limit, in one line with `fix` and the way to allow it."""
        limit = self.value()
        if amount > limit:
            digits = max(0, len(str(int(amount))) - 2)
            allow = math.ceil(amount / 10**digits) * 10**digits
            shown_limit = _bytes(limit) if self.unit == "bytes" else _number(limit)
            raise HarlabError(f"{what} gives {self.show(amount)} (limit {shown_limit}); {fix}, or set "
                              f"{self.variable}={_number(allow).replace(',', '')} to allow it")


RUNS = Limit("RUNS", 100_000, "runs")  # configurations × repeats of a train or an experiment
PARAMETERS = Limit("PARAMETERS", 100_000_000, "parameters")  # a model's weights and buffers
MEMORY = Limit("MEMORY", 2_000_000_000, "bytes")  # one block of data: windows, augmented copies, features
YAML_VALUES = Limit("YAML_VALUES", 100_000, "values")  # a YAML file, its aliases expanded


def _expanded_size(data: Any) -> int:
    """How many values `data` holds once every shared (aliased) part is counted each time it is used; linear in
    the distinct parts, so an alias bomb is measured without being expanded."""
    sizes: dict[int, int] = {}
    pending: set[int] = set()

    def size(value: Any) -> int:
        if not isinstance(value, dict | list):
            return 1
        key = id(value)
        if key in pending:
            raise ValueError("an alias refers to a value that contains it")
        if key not in sizes:
            pending.add(key)
            children = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            sizes[key] = 1 + sum(size(child) for child in children)
            pending.discard(key)
        return sizes[key]

    return size(data)


def load_yaml(text: str, where: str | Path) -> Any:
    """Plain YAML data (no tags that construct objects), refused in one line naming `where` when it is not valid,
    nests too deeply, refers to itself or expands (through aliases) to more than the YAML_VALUES limit."""
    try:
        data = yaml.safe_load(text)
        size = _expanded_size(data)
    except yaml.YAMLError as exc:
        raise DataError(where, f"not valid YAML ({' '.join(str(exc).split())})", "fix the syntax") from None
    except RecursionError:
        raise DataError(where, "nested too deeply to be a settings file", "fix the brackets or indentation") from None
    except ValueError as exc:
        raise DataError(where, str(exc), "write the value out instead of the alias") from None
    try:
        YAML_VALUES.check(size, "expanding its aliases", "write it without nested aliases")
    except HarlabError as exc:
        raise DataError(where, str(exc)) from None
    return data
