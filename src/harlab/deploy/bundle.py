"""A model bundle: a folder with the weights in safetensors and a JSON manifest saying everything needed to use
them on new recordings — model and hyperparameters, input channels and window, sampling rate, classes, the
standardization fitted on the training subjects, versions, the scores it got, and the weights' sha256.

Loading never unpickles anything: safetensors holds plain tensors, JSON the rest. A bundle whose files are not
regular files or too large (MAX_MANIFEST_BYTES, MAX_MODEL_BYTES), whose manifest lacks a key or has a field of
the wrong type or length (a standardization with a zero, NaN or infinite value among them), whose weights do not
match the recorded checksum, or whose tensors (names, shapes, dtypes, read from the safetensors header) do not
fit the model is refused with one line — the model's shapes come from building it on the `meta` device, so a
manifest asking for a huge model costs no memory before it is compared.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import numpy as np
import pydantic
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from harlab.data.fetch import regular_file
from harlab.data.transforms import Standardizer
from harlab.deploy.hmm import Transitions
from harlab.deploy.pretrained import resolve
from harlab.environment import describe_environment, now_iso
from harlab.errors import DataError, HarlabError
from harlab.files import atomic_directory, atomic_write_json, sha256_file, umask
from harlab.models.registry import create_model
from harlab.training.loop import to_tensor
from harlab.training.transfer import Start

FORMAT = 1
WEIGHTS, MANIFEST = "model.safetensors", "manifest.json"
MAX_MANIFEST_BYTES = 16 << 20  # a manifest is a few KB
MAX_MODEL_BYTES = 2 << 30  # weights or an ONNX file (protobuf's own limit); harlab's largest models take a few MB
_FIX = "the bundle is damaged or not harlab's; save it again"
_SAFETENSORS_DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
                       torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL"}


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True)


class Standardization(_Strict):
    """Per-channel mean and standard deviation (finite, the deviations above 0)."""

    mean: list[Annotated[float, Field(allow_inf_nan=False)]]
    std: list[Annotated[float, Field(gt=0, allow_inf_nan=False)]]


class Preprocessing(_Strict):
    """How raw recordings become the model's channels (see `preprocessing_of`)."""

    pipeline: Literal["none", "uci-har"]
    raw_channels: list[str] = []
    accelerometer: list[str] = []


Probability = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class TransitionTable(_Strict):
    """How the training windows' activities followed each other (harlab.deploy.hmm): transition probabilities
    between windows `step` samples apart (each row summing to 1) and the class priors."""

    step: int = Field(gt=0)
    matrix: list[list[Probability]]
    priors: list[Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]]

    @model_validator(mode="after")
    def _stochastic(self) -> TransitionTable:
        if any(abs(sum(row) - 1) > 1e-3 for row in [*self.matrix, self.priors]):
            raise ValueError("the transition matrix's rows and the priors must each sum to 1")
        return self


class ModelInput(_Strict):
    """What using a model needs, as a bundle's manifest or an ONNX file's metadata declares it."""

    channels: list[str] = Field(min_length=1)
    classes: list[str] = Field(min_length=1)
    window: int = Field(gt=0)
    step: int = Field(gt=0)
    sampling_rate: float = Field(gt=0, allow_inf_nan=False)
    preprocessing: Preprocessing | None = None
    transitions: TransitionTable | None = None

    @model_validator(mode="after")
    def _pipeline_makes_the_channels(self) -> ModelInput:
        steps = self.preprocessing
        if steps is not None and steps.pipeline == "uci-har":
            if not set(steps.accelerometer) <= set(steps.raw_channels):
                raise ValueError("field preprocessing: accelerometer names channels that are not in raw_channels")
            made = {f"total_{c}" for c in steps.accelerometer} | {f"body_{c}" for c in steps.raw_channels}
            if missing := [c for c in self.channels if c not in made]:
                raise ValueError(f"field preprocessing: the uci-har pipeline does not make channel(s) "
                                 f"{', '.join(missing[:3])} from raw_channels")
        table, n = self.transitions, len(self.classes)
        if table is not None and {len(table.priors), len(table.matrix), *map(len, table.matrix)} != {n}:
            raise ValueError(f"field transitions: not a {n} × {n} matrix with {n} priors, one per class")
        return self


class Manifest(ModelInput):
    """The keys of manifest.json that loading reads (the others — metrics, provenance, ... — are for people)."""

    format: int
    model: str
    hyperparameters: dict[str, Any]
    standardization: Standardization | None
    weights_sha256: str = Field(pattern="^[0-9a-f]{64}$")

    @model_validator(mode="after")
    def _standardization_fits(self) -> Manifest:
        stats = self.standardization
        if stats is not None and not len(stats.mean) == len(stats.std) == len(self.channels):
            raise ValueError(f"field standardization: {len(stats.mean)} means and {len(stats.std)} standard "
                             f"deviations for {len(self.channels)} channels")
        return self


REQUIRED = tuple(name for name, field in Manifest.model_fields.items() if field.is_required())
Schema = TypeVar("Schema", bound=BaseModel)


def validated(schema: type[Schema], value: object, path: Path, fix: str) -> Schema:
    """`value` checked against `schema`; a one-line DataError naming `path`, the first bad field and its value."""
    try:
        return schema.model_validate(value)
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        problem = error["msg"].removeprefix("Value error, ")
        if error["loc"]:
            found = repr(error["input"])
            problem = (f"field {'.'.join(map(str, error['loc']))}: {problem} "
                       f"(found {found if len(found) <= 60 else found[:59] + '…'})")
        raise DataError(path, problem, fix) from None


@dataclass(frozen=True)
class Bundle:
    """A loaded bundle: the model in eval mode and its manifest."""

    model: nn.Module
    manifest: dict[str, Any]

    @property
    def classes(self) -> list[str]:
        return list(self.manifest["classes"])

    @property
    def channels(self) -> list[str]:
        return list(self.manifest["channels"])

    @property
    def window(self) -> int:
        return int(self.manifest["window"])

    @property
    def standardizer(self) -> Standardizer | None:
        stats = self.manifest["standardization"]
        return None if stats is None else Standardizer(np.array(stats["mean"]), np.array(stats["std"]))

    def prepare(self, X: np.ndarray) -> torch.Tensor:
        """Raw windows [n, time, channels] → the model's standardized [n, channels, time] tensor."""
        return to_tensor(X, self.standardizer)


def cpu_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's weights as contiguous CPU tensors, whatever device it trained on (what a bundle stores)."""
    return {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}


def save_bundle(directory: Path, model: nn.Module, *, model_name: str, hyperparameters: dict[str, Any],
                channels: list[str], window: int, step: int, sampling_rate: float, classes: list[str],
                standardizer: Standardizer | None, metrics: dict[str, Any], provenance: dict[str, Any],
                training: dict[str, Any], preprocessing: dict[str, Any] | None = None,
                transitions: Transitions | None = None, pretrained: dict[str, Any] | None = None) -> Path:
    """Write a bundle folder atomically (replacing one that exists); return its path. `preprocessing` says how
    raw recordings become the model's channels (see `preprocessing_of`); `transitions`, how the training
    windows' activities followed each other (for `harlab predict --smoothing hmm`); `pretrained`, what a model
    shipped in the package is and how well it does (harlab.deploy.pretrained)."""
    with atomic_directory(directory, "bundle") as tmp:
        weights = tmp / WEIGHTS
        save_file(cpu_state_dict(model), str(weights))
        weights.chmod(0o666 & ~umask())
        manifest = {
            "format": FORMAT, "model": model_name, "hyperparameters": hyperparameters, "channels": list(channels),
            "window": window, "step": step, "sampling_rate": sampling_rate, "classes": list(classes),
            "standardization": standardizer.to_dict() if standardizer else None,
            "preprocessing": preprocessing or {"pipeline": "none"}, "metrics": metrics,
            "training": training, "provenance": provenance, "environment": describe_environment(),
            "created": now_iso(), "weights_sha256": sha256_file(weights),
            "transitions": transitions.to_dict() if transitions else None,
            **({"pretrained": pretrained} if pretrained else {})}
        atomic_write_json(tmp / MANIFEST, manifest)
    return directory


def load_bundle(directory: Path) -> Bundle:
    """Read and verify a bundle folder (`pretrained:NAME`: one shipped in the package); the model comes back in
    eval mode."""
    directory = resolve(directory)
    manifest_path, weights = directory / MANIFEST, directory / WEIGHTS
    if not directory.is_dir():
        raise DataError(directory, "not a model bundle folder",
                        "pass a folder saved after training (the `save` setting)")
    manifest = read_manifest(manifest_path)
    regular_file(weights, "the bundle is incomplete or damaged; save it again", limit=MAX_MODEL_BYTES)
    if (actual := sha256_file(weights)) != manifest["weights_sha256"]:
        raise DataError(weights, f"checksum mismatch (sha256 {actual[:12]}…, manifest says "
                        f"{manifest['weights_sha256'][:12]}…)", "the weights were altered or truncated; "
                        "save the bundle again")
    with torch.device("meta"):  # the shapes the manifest asks for, without allocating them
        expected = {name: (tuple(tensor.shape), _SAFETENSORS_DTYPES.get(tensor.dtype, str(tensor.dtype)))
                    for name, tensor in _model_of(manifest, manifest_path).state_dict().items()}
    try:
        with safe_open(str(weights), framework="pt") as header:
            declared = {name: (tuple(header.get_slice(name).get_shape()), header.get_slice(name).get_dtype())
                        for name in header.keys()}  # noqa: SIM118 — safe_open is not a mapping
        if problems := sorted(set(expected) ^ set(declared)) or [
                f"{name} {declared[name][1]}{list(declared[name][0])} ≠ {dtype}{list(shape)}"
                for name, (shape, dtype) in expected.items() if declared[name] != (shape, dtype)]:
            raise DataError(weights, f"tensors do not fit model {manifest['model']!r}: "
                            f"{', '.join(map(str, problems[:3]))}", "the manifest and weights come from different "
                            "models; save the bundle again")
        state = load_file(str(weights), device="cpu")  # wherever it was trained, a bundle loads on the CPU
    except (SafetensorError, OSError) as exc:
        raise DataError(weights, f"unreadable weights ({exc})", "save the bundle again") from None
    model = _model_of(manifest, manifest_path)
    model.load_state_dict(state)
    return Bundle(model.eval(), manifest)


def starting_point(init: str | Path) -> Start:
    """The bundle `init` (a folder or pretrained:NAME) as fine-tuning starts from it (harlab.training.transfer)."""
    bundle = load_bundle(Path(init))
    manifest = bundle.manifest
    return Start(str(init), manifest["weights_sha256"], bundle.model, manifest["model"],
                 dict(manifest["hyperparameters"]), tuple(bundle.channels), tuple(bundle.classes), bundle.window,
                 float(manifest["sampling_rate"]), bundle.standardizer,
                 manifest.get("preprocessing") or {"pipeline": "none"})


def bundle_model(init: str | Path, hyperparameters: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """The registered model of the bundle `init` (a folder or pretrained:NAME) and its hyperparameters, with
    `hyperparameters` given on top, read from its checked manifest."""
    manifest = read_manifest(resolve(Path(init)) / MANIFEST)
    return manifest["model"], {**manifest["hyperparameters"], **(hyperparameters or {})}


def model_input(data: Any, init: str | None) -> tuple[list[str], dict[str, Any]]:
    """The channels and preprocessing of a model trained on `data`: the windows', or, fine-tuned from the bundle
    `init`, the bundle's (its channels were picked out of the windows by name)."""
    if init is None:
        return list(data.channels), preprocessing_of(data)
    manifest = read_manifest(resolve(Path(init)) / MANIFEST)
    return list(manifest["channels"]), manifest.get("preprocessing") or {"pipeline": "none"}


def read_manifest(path: Path) -> dict[str, Any]:
    """A bundle's manifest.json, checked: a regular file of at most MAX_MANIFEST_BYTES, a JSON object with every
    key loading needs, of this harlab's format, each field of the right type (`Manifest`)."""
    regular_file(path, "this folder is not a complete harlab bundle", limit=MAX_MANIFEST_BYTES)
    try:
        manifest = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise DataError(path, f"not valid JSON ({exc})", "the bundle is damaged; save it again") from None
    if not isinstance(manifest, dict):
        raise DataError(path, f"a JSON {type(manifest).__name__}, not an object", _FIX)
    if missing := [key for key in REQUIRED if key not in manifest]:
        raise DataError(path, f"missing key(s) {', '.join(missing)}", _FIX)
    if manifest["format"] != FORMAT:
        raise DataError(path, f"bundle format {manifest['format']!r}, this harlab reads {FORMAT}",
                        "use the harlab version that wrote it")
    validated(Manifest, manifest, path, _FIX)
    return manifest


def _model_of(manifest: dict[str, Any], manifest_path: Path) -> nn.Module:
    """The model the manifest names, built on the current default device; its errors name the manifest."""
    try:
        return create_model(manifest["model"], len(manifest["channels"]), manifest["window"],
                            len(manifest["classes"]), **manifest["hyperparameters"])
    except HarlabError as exc:
        raise DataError(manifest_path, f"fields model and hyperparameters: {exc}", _FIX) from None


def save_run_bundle(directory: Path, model: nn.Module, config: Any, data: Any, standardizer: Standardizer | None,
                    run: Any, train: Any) -> Path:
    """The bundle of one finished run of `harlab train`: `config` a RepeatConfig, `data` the WindowSet it
    trained on, `run` its RunResult, `train` its training windows (in recording order: the activities'
    transitions are counted on them, subject by subject)."""
    from dataclasses import asdict

    metrics = {"accuracy": run.accuracy, "macro_f1": run.macro_f1, "per_class": run.per_class,
               "confusion": run.confusion, "fold": run.fold, "repeat": run.repeat, "seed": run.seed,
               "test_subjects": list(data.test_subjects) if run.fold == "fixed" else None}
    channels, preprocessing = model_input(data, config.init)
    return save_bundle(directory, model, model_name=config.model, hyperparameters=config.hyperparameters,
                       channels=channels, window=data.window, step=data.step,
                       sampling_rate=data.sampling_rate, classes=list(data.classes), standardizer=standardizer,
                       metrics=metrics, provenance=asdict(data.provenance),
                       training=config.model_dump(mode="json"), preprocessing=preprocessing,
                       transitions=Transitions.count(train.y, train.subject, len(data.classes), data.step))


def preprocessing_of(data: Any) -> dict[str, Any]:
    """How raw recordings become `data`'s channels: UCI HAR's pipeline (filters, gravity split) from raw
    acc/gyro axes for uci-har, hapt and recordings imported with it; nothing otherwise."""
    from harlab.data import hapt

    options = data.provenance.options
    if data.provenance.dataset in ("uci-har", "hapt"):
        return {"pipeline": "uci-har", "raw_channels": list(hapt.CHANNELS),
                "accelerometer": [c for c in hapt.CHANNELS if c.startswith("acc")]}
    if options.get("pipeline") == "uci-har":
        return {"pipeline": "uci-har", "raw_channels": list(options["channels"]),
                "accelerometer": list(options["accelerometer"])}
    return {"pipeline": "none"}
