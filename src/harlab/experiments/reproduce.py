"""`harlab reproduce`: the tutorials' eight experiments, run from the specs shipped with harlab, and one report
comparing every configuration with the figure the tutorial reported."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from harlab.errors import HarlabError
from harlab.experiments.spec import ExperimentSpec, load_spec

QUICK = {"repeats": 2, "epochs": 1}


def tutorial_specs(quick: bool = False, only: list[str] | None = None,
                   overrides: dict[str, Any] | None = None) -> list[ExperimentSpec]:
    """The shipped specs in their order; `quick` runs 2 repeats of 1 epoch; `only` keeps the named ones;
    `overrides` (e.g. {"precision": "bf16"}) set fields of every spec."""
    folder = resources.files("harlab.experiments") / "specs"
    paths = sorted((Path(str(p)) for p in folder.iterdir() if p.name.endswith(".toml")), key=lambda p: p.name)
    merged = {**(QUICK if quick else {}), **(overrides or {})}
    specs = [load_spec(path, merged or None) for path in paths]
    if only:
        names = [spec.name for spec in specs]
        if unknown := sorted(set(only) - set(names)):
            raise HarlabError(f"no tutorial experiment(s) {unknown}; choose from {', '.join(names)}")
        specs = [spec for spec in specs if spec.name in only]
    return specs
