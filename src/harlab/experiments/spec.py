"""Experiment specs: a dataset, a model, fixed settings, a grid of swept settings (or a search space for
`harlab tune`), repeats and a base seed.

A spec file (TOML or YAML) is validated completely — every configuration of the grid is built and checked, and
every end of a searched range and every searched choice — before anything trains, so a typo costs one line of
error, not an hour of training.
"""

from __future__ import annotations

import itertools
import math
import tomllib
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_serializer, model_validator

from harlab.data.splits import SplitKind, SplitSpec
from harlab.data.text import read_text_file
from harlab.deploy.bundle import bundle_model
from harlab.errors import DataError, HarlabError
from harlab.limits import RUNS, load_yaml
from harlab.models.registry import ModelEntry, get_entry, validate_hyperparameters
from harlab.training.device import resolve_device
from harlab.training.settings import MAX_SEED, RepeatConfig, RunSettings, defaults_of

# Settings of a run besides the model's hyperparameters; any of them can be fixed or swept.
RUN_SETTINGS = tuple(RunSettings.model_fields)
# Run settings a search may not vary: every trial must be validated on the same subjects, by the same objective.
UNSEARCHABLE = ("split", "validation_split", "monitor")
CHOICE_TYPES = (bool, int, float, str, type(None))
EARLY_STOPPING_SPLIT = 0.2  # of the training subjects, held out when early stopping is asked for without one


class TutorialReference(BaseModel):
    """What the tutorial reported for this experiment: a mean per configuration label, and/or its trend."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = ""
    accuracy: dict[str, float] = Field(default_factory=dict)
    trend: str = ""


class SearchDimension(BaseModel):
    """One searched setting: a range `low`..`high` (of integers when both ends are integers; on a `log` scale,
    or in steps of `step`), or a list of `choices`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: int | float | None = None
    high: int | float | None = None
    log: bool = False
    step: int | float | None = Field(default=None, gt=0)
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _range_or_choices(self) -> SearchDimension:
        if self.choices is not None:
            if self.low is not None or self.high is not None or self.log or self.step is not None:
                raise ValueError("give either choices or a range (low, high, log, step), not both")
            if not self.choices:
                raise ValueError("choices is empty; give at least one value")
            if len({repr(v) for v in self.choices}) != len(self.choices):
                raise ValueError(f"choices repeats a value: {self.choices}")
            return self
        if self.low is None or self.high is None:
            raise ValueError("give low and high (a range) or choices (a list)")
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.step is not None:
            raise ValueError("log and step cannot be combined")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0 (got {self.low})")
        if self.is_int and self.step is not None and not isinstance(self.step, int):
            raise ValueError(f"the step of an integer range must be an integer (got {self.step})")
        return self

    @property
    def is_int(self) -> bool:
        """Whether this is a range of integers (both ends integers)."""
        return isinstance(self.low, int) and isinstance(self.high, int)

    def extremes(self) -> list[Any]:
        """The values that bound what a search can draw: every choice, or both ends of the range."""
        return list(self.choices) if self.choices is not None else [self.low, self.high]

    def describe(self) -> str:
        """A short text such as `16 … 256 (log)` or `one of 3, 5, 7`."""
        if self.choices is not None:
            return "one of " + ", ".join(map(str, self.choices))
        scale = " (log)" if self.log else f" (step {self.step})" if self.step is not None else ""
        return f"{self.low} … {self.high}{scale}" + (" integers" if self.is_int else "")


class Configuration(BaseModel):
    """One point of the grid: a short label (as the tutorial prints it) and the runs' full configuration."""

    model_config = ConfigDict(frozen=True)

    label: str
    swept: dict[str, Any]
    config: RepeatConfig


class ExperimentSpec(RunSettings):
    """What to run. Fixed settings apply to every configuration; `grid` sweeps any run setting or model
    hyperparameter over a list of values (the product of all lists when several are swept); `variants` adds
    configurations one by one after the grid's, each a table of settings and hyperparameters (for instance a
    model with its own hyperparameters beside a grid of models). `search` (for `harlab tune`) gives ranges or
    choices of run settings, hyperparameters or the model instead."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    dataset: str | None = None  # None: uci-har, or the hapt windows when uci-har cannot be had
    dataset_options: dict[str, Any] = Field(default_factory=dict)
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    variants: list[dict[str, Any]] = Field(default_factory=list)
    repeats: int = Field(default=10, ge=1)
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    tutorial: TutorialReference = Field(default_factory=TutorialReference)
    search: dict[str, SearchDimension] = Field(default_factory=dict)
    device: str | None = Field(default=None, description="Where runs train: auto (None), cpu, cuda, cuda:N or mps.")
    workers: int | None = Field(default=None, ge=1, description="Runs trained at once on a CPU; None: chosen.")
    replicas: int | None = Field(default=None, ge=1, description="Repeats trained as one batched computation; "
                                 "None: all of a configuration's on a GPU or MPS, 1 on a CPU.")

    @model_serializer(mode="wrap")
    def _omit_empty_search(self, handler: Any) -> dict[str, Any]:
        """No search space, variants, device, workers or replicas, no such key: specs and records made before
        they existed still match."""
        data = super()._omit_default_split(handler)
        for key in ("search", "variants", "device", "workers", "replicas"):
            if not data.get(key):
                data.pop(key, None)
        return data

    def sweeps_init(self) -> bool:
        return "init" in self.grid or any("init" in variant for variant in self.variants)

    @model_validator(mode="before")
    @classmethod
    def _model_of_init(cls, data: Any) -> Any:
        """Fine-tuning a bundle (`init`) without naming a model trains the bundle's model and hyperparameters."""
        if isinstance(data, dict) and isinstance(data.get("init"), str) and data.get("model") is None:
            model, hyperparameters = bundle_model(data["init"], data.get("hyperparameters"))
            data = {**data, "model": model, "hyperparameters": hyperparameters}
        return data

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

    @model_validator(mode="after")
    def _searchable(self) -> ExperimentSpec:
        """Every searched key applies to every model a trial could train, and every end of a range and every
        choice is a valid value there (with the spec's fixed hyperparameters)."""
        if self.search and self.grid:
            raise ValueError(f"search and grid cannot be combined; give grid.{next(iter(self.grid))} as search "
                             "choices")
        if self.search and self.variants:
            raise ValueError("search and variants cannot be combined; search one model's settings at a time")
        for key, dimension in self.search.items():
            if key in UNSEARCHABLE:
                raise ValueError(f"search.{key}: cannot be searched; every trial is validated on the same subjects, "
                                 "by the same objective")
            if dimension.choices is None and key in ("model", "standardize"):
                raise ValueError(f"search.{key}: give choices, not a range")
            if dimension.choices is not None and not all(isinstance(v, CHOICE_TYPES) for v in dimension.choices):
                raise ValueError(f"search.{key}: choices must be numbers, strings, booleans or null "
                                 f"(got {dimension.choices})")
        models = [_entry("model", m).name for m in self.search["model"].choices] if "model" in self.search else [
            self.model]
        fixed = {k: getattr(self, k) for k in RUN_SETTINGS}
        for key, dimension in self.search.items():
            if key not in RUN_SETTINGS:
                for model in models:
                    if key not in _entry(key, model).hyperparameters:
                        raise ValueError(f"search.{key}: model {model!r} has no such hyperparameter or run setting; "
                                         f"run settings are {', '.join(RUN_SETTINGS)}")
            for value in dimension.extremes():
                try:
                    if key in RUN_SETTINGS:
                        RunSettings(**{**fixed, key: value})
                    if key == "model":
                        validate_hyperparameters(_entry(key, value).name, self.hyperparameters)
                    elif key not in RUN_SETTINGS:
                        for model in models:
                            validate_hyperparameters(model, {**self.hyperparameters, key: value})
                except ValidationError as exc:
                    raise ValueError(f"search.{key}: {one_line(exc)}") from None
                except HarlabError as exc:
                    raise ValueError(f"search.{key}: {exc}") from None
        return self

    def configurations(self) -> list[Configuration]:
        """Every configuration of the grid, in the grid's order, then the variants, each validated (model and
        hyperparameters); counted first, and refused over the RUNS limit with the repeats."""
        keys = list(self.grid)
        count = (math.prod(map(len, self.grid.values())) if keys or not self.variants else 0) + len(self.variants)
        RUNS.check(count * self.repeats, f"spec {self.name!r}: {count:,} configuration(s) × {self.repeats} repeats",
                   "sweep fewer values or train fewer repeats")
        grid = [dict(zip(keys, values, strict=True)) for values in itertools.product(*(self.grid[k] for k in keys))]
        configurations = []
        for swept in (grid if keys or not self.variants else []) + self.variants:
            fixed = {k: getattr(self, k) for k in RUN_SETTINGS}
            settings = {**fixed, **{k: v for k, v in swept.items() if k in RUN_SETTINGS}}
            hyperparameters = {**self.hyperparameters, **{k: v for k, v in swept.items() if k not in RUN_SETTINGS}}
            if isinstance(swept.get("init"), str) and "model" not in swept:  # a swept init trains its bundle's model
                settings["model"], hyperparameters = bundle_model(swept["init"], hyperparameters)
            label = ", ".join(f"{k}={v}" for k, v in swept.items()) or settings["model"]
            try:
                config = RepeatConfig(**settings, hyperparameters=hyperparameters, repeats=self.repeats,
                                      seed=self.seed)
            except ValidationError as exc:
                raise HarlabError(f"spec {self.name!r}, configuration {label}: {one_line(exc)}") from None
            except HarlabError as exc:
                raise HarlabError(f"spec {self.name!r}, configuration {label}: {exc}") from None
            configurations.append(Configuration(label=label, swept=swept, config=config))
        return configurations


def _entry(key: str, model: Any) -> ModelEntry:
    """The registered model `model`, or a ValueError naming search.`key`."""
    try:
        return get_entry(model)
    except (HarlabError, TypeError) as exc:
        raise ValueError(f"search.{key}: {exc}") from None


def one_line(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'spec'}: {e['msg']}" +
                     (f" (got {e['input']!r})" if e["type"] != "missing" and not isinstance(e["input"], dict) else "")
                     for e in exc.errors())


def parse_spec(data: dict[str, Any], where: Path | str, overrides: dict[str, Any] | None = None) -> ExperimentSpec:
    """Validate spec `data` read from `where`; `overrides` (e.g. repeats) replace fields first."""
    if not isinstance(data, dict):
        found = "empty" if data is None else f"a {type(data).__name__}"
        raise DataError(where, f"the spec is {found}, not a table of settings", "see experiments/*.toml for examples")
    try:
        spec = ExperimentSpec(**{**data, **(overrides or {})})
        spec.configurations()
    except ValidationError as exc:
        raise DataError(where, f"bad experiment spec: {one_line(exc)}", "fix the named field") from None
    except HarlabError as exc:
        raise DataError(where, str(exc), "fix the spec") from None
    return spec


def load_spec(path: Path, overrides: dict[str, Any] | None = None) -> ExperimentSpec:
    """Read and validate a spec from a .toml, .yaml or .yml file."""
    if path.suffix not in {".toml", ".yaml", ".yml"}:
        raise DataError(path, "unknown spec format", "name the file .toml, .yaml or .yml")
    text = read_text_file(path, "give a TOML or YAML text file")
    if path.suffix != ".toml":
        return parse_spec(load_yaml(text, path), path, overrides)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DataError(path, f"not valid TOML ({' '.join(str(exc).split())})", "fix the syntax") from None
    except RecursionError:
        raise DataError(path, "nested too deeply to be a spec", "fix the brackets") from None
    return parse_spec(data, path, overrides)


def training_spec(model: str | None = None, *, dataset: str | None = None,
                  dataset_options: dict[str, Any] | None = None, repeats: int = 10, seed: int = 0,
                  hyperparameters: dict[str, Any] | None = None,
                  split: str = "fixed", folds: int = 5, test_fraction: float = 0.3, early_stopping: int | None = None,
                  device: str | None = None, workers: int | None = None, replicas: int | None = None,
                  **settings: Any) -> ExperimentSpec:
    """The one-configuration experiment of `harlab train` (and `harlab.train`): `model` (None: cnn, or fine-tuning
    the `init` bundle, its model); `settings` are TrainConfig's (None: the model's); `early_stopping` is a
    patience that also holds out 20 % of the training subjects to validate on, unless `validation_split` or the
    model's own defaults say otherwise; `device`, `workers` and `replicas` say where and how the runs train. A
    bad setting is one line naming it."""
    RUNS.check(repeats, f"repeats={repeats}", "train fewer repeats")
    if model is None:
        model, hyperparameters = bundle_model(settings["init"], hyperparameters) if settings.get("init") else (
            "cnn", hyperparameters)
    resolve_device(device)  # a missing GPU is one line now, not after loading the data
    if split not in get_args(SplitKind):
        raise HarlabError(f"split={split}: choose one of {', '.join(get_args(SplitKind))}")
    if early_stopping is not None:
        settings["patience"] = early_stopping
        if settings.get("validation_split") is None and not defaults_of(model).validation_split:
            settings["validation_split"] = EARLY_STOPPING_SPLIT
    try:
        spec = ExperimentSpec(
            name=f"train-{model}", model=model, dataset=dataset, dataset_options=dataset_options or {},
            hyperparameters=hyperparameters or {}, repeats=repeats, seed=seed, device=device, workers=workers,
            replicas=replicas,
            split=SplitSpec(kind=split) if split == "fixed" else SplitSpec(  # type: ignore[arg-type]
                kind=split, folds=folds, test_fraction=test_fraction, seed=seed),  # type: ignore[arg-type]
            **{k: v for k, v in settings.items() if v is not None})
        spec.configurations()
    except ValidationError as exc:
        raise HarlabError(f"harlab train: {one_line(exc)}") from None
    return spec
