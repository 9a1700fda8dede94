"""Experiment specs: a dataset, a model, fixed settings, a grid of swept settings, repeats and a base seed.

A spec file (TOML or YAML) is validated completely — every configuration of the grid is built and checked —
before anything trains, so a typo costs one line of error, not an hour of training.
"""

from __future__ import annotations

import itertools
import tomllib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harlab.errors import DataError, HarlabError
from harlab.experiments.repeats import RepeatConfig, RunSettings
from harlab.models.registry import get_entry

# Settings of a run besides the model's hyperparameters; any of them can be fixed or swept.
RUN_SETTINGS = tuple(RunSettings.model_fields)


class TutorialReference(BaseModel):
    """What the tutorial reported for this experiment: a mean per configuration label, and/or its trend."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = ""
    accuracy: dict[str, float] = Field(default_factory=dict)
    trend: str = ""


class Configuration(BaseModel):
    """One point of the grid: a short label (as the tutorial prints it) and the runs' full configuration."""

    model_config = ConfigDict(frozen=True)

    label: str
    swept: dict[str, Any]
    config: RepeatConfig


class ExperimentSpec(RunSettings):
    """What to run. Fixed settings apply to every configuration; `grid` sweeps any run setting or model
    hyperparameter over a list of values (the product of all lists when several are swept)."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    dataset: str | None = None  # None: uci-har, or the hapt windows when uci-har cannot be had
    dataset_options: dict[str, Any] = Field(default_factory=dict)
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    repeats: int = Field(default=10, ge=1)
    seed: int = Field(default=0, ge=0)
    tutorial: TutorialReference = Field(default_factory=TutorialReference)

    @field_validator("grid")
    @classmethod
    def _non_empty(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in grid.items():
            if not values:
                raise ValueError(f"grid.{key} is empty; give at least one value")
            if len({repr(v) for v in values}) != len(values):
                raise ValueError(f"grid.{key} repeats a value: {values}")
        return grid

    @model_validator(mode="after")
    def _known_keys(self) -> ExperimentSpec:
        for key in self.grid:
            if key in RUN_SETTINGS:
                continue
            models = self.grid.get("model", [self.model])
            for model in models:
                if key not in get_entry(model).hyperparameters:
                    raise ValueError(f"grid.{key}: model {model!r} has no such hyperparameter or run setting; "
                                     f"run settings are {', '.join(RUN_SETTINGS)}")
        return self

    def configurations(self) -> list[Configuration]:
        """Every configuration of the grid, in the grid's order, each validated (model and hyperparameters)."""
        keys = list(self.grid)
        configurations = []
        for values in itertools.product(*(self.grid[k] for k in keys)) if keys else [()]:
            swept = dict(zip(keys, values, strict=True))
            fixed = {k: getattr(self, k) for k in RUN_SETTINGS}
            settings = {**fixed, **{k: v for k, v in swept.items() if k in RUN_SETTINGS}}
            hyperparameters = {**self.hyperparameters, **{k: v for k, v in swept.items() if k not in RUN_SETTINGS}}
            label = ", ".join(f"{k}={v}" for k, v in swept.items()) or settings["model"]
            try:
                config = RepeatConfig(**settings, hyperparameters=hyperparameters, repeats=self.repeats,
                                      seed=self.seed)
            except ValidationError as exc:
                raise HarlabError(f"spec {self.name!r}, configuration {label}: {_one_line(exc)}") from None
            except HarlabError as exc:
                raise HarlabError(f"spec {self.name!r}, configuration {label}: {exc}") from None
            configurations.append(Configuration(label=label, swept=swept, config=config))
        return configurations


def _one_line(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'spec'}: {e['msg']}" +
                     (f" (got {e['input']!r})" if e["type"] != "missing" and not isinstance(e["input"], dict) else "")
                     for e in exc.errors())


def parse_spec(data: dict[str, Any], where: Path | str, overrides: dict[str, Any] | None = None) -> ExperimentSpec:
    """Validate spec `data` read from `where`; `overrides` (e.g. repeats) replace fields first."""
    try:
        spec = ExperimentSpec(**{**data, **(overrides or {})})
        spec.configurations()
    except ValidationError as exc:
        raise DataError(where, f"bad experiment spec: {_one_line(exc)}", "fix the named field") from None
    except HarlabError as exc:
        raise DataError(where, str(exc), "fix the spec") from None
    return spec


def load_spec(path: Path, overrides: dict[str, Any] | None = None) -> ExperimentSpec:
    """Read and validate a spec from a .toml, .yaml or .yml file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(path, f"cannot read the spec ({exc.strerror})", "check the path") from None
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix in {".yaml", ".yml"}:
            data = yaml.safe_load(text)
        else:
            raise DataError(path, "unknown spec format", "name the file .toml, .yaml or .yml")
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise DataError(path, f"not valid {path.suffix[1:].upper()} ({' '.join(str(exc).split())})",
                        "fix the syntax") from None
    if not isinstance(data, dict):
        raise DataError(path, "the spec is not a table of settings", "see experiments/*.toml for examples")
    return parse_spec(data, path, overrides)
