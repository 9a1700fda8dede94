"""A model bundle: a folder with the weights in safetensors and a JSON manifest saying everything needed to use
them on new recordings — model and hyperparameters, input channels and window, sampling rate, classes, the
standardization fitted on the training subjects, versions, the scores it got, and the weights' sha256.

Loading never unpickles anything: safetensors holds plain tensors, JSON the rest. A bundle whose weights do not
match the recorded checksum, whose manifest lacks a key, or whose tensors do not fit the model is refused with
one line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from harlab.data.transforms import Standardizer
from harlab.environment import describe_environment, now_iso
from harlab.errors import DataError
from harlab.files import atomic_directory, atomic_write_json, sha256_file, umask
from harlab.models.registry import create_model
from harlab.training.loop import to_tensor

FORMAT = 1
WEIGHTS, MANIFEST = "model.safetensors", "manifest.json"
REQUIRED = ("format", "model", "hyperparameters", "channels", "window", "step", "sampling_rate", "classes",
            "standardization", "weights_sha256")


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


def save_bundle(directory: Path, model: nn.Module, *, model_name: str, hyperparameters: dict[str, Any],
                channels: list[str], window: int, step: int, sampling_rate: float, classes: list[str],
                standardizer: Standardizer | None, metrics: dict[str, Any], provenance: dict[str, Any],
                training: dict[str, Any], preprocessing: dict[str, Any] | None = None) -> Path:
    """Write a bundle folder atomically (replacing one that exists); return its path. `preprocessing` says how
    raw recordings become the model's channels (see `preprocessing_of`)."""
    with atomic_directory(directory) as tmp:
        weights = tmp / WEIGHTS
        save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(weights))
        weights.chmod(0o666 & ~umask())
        manifest = {
            "format": FORMAT, "model": model_name, "hyperparameters": hyperparameters, "channels": list(channels),
            "window": window, "step": step, "sampling_rate": sampling_rate, "classes": list(classes),
            "standardization": standardizer.to_dict() if standardizer else None,
            "preprocessing": preprocessing or {"pipeline": "none"}, "metrics": metrics,
            "training": training, "provenance": provenance, "environment": describe_environment(),
            "created": now_iso(), "weights_sha256": sha256_file(weights)}
        atomic_write_json(tmp / MANIFEST, manifest)
    return directory


def load_bundle(directory: Path) -> Bundle:
    """Read and verify a bundle folder; the model comes back in eval mode."""
    manifest_path, weights = directory / MANIFEST, directory / WEIGHTS
    if not directory.is_dir():
        raise DataError(directory, "not a model bundle folder", "pass the folder `harlab train --save` wrote")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(manifest_path, "missing", "this folder is not a complete harlab bundle") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(manifest_path, f"not valid JSON ({exc})", "the bundle is damaged; save it again") from None
    if missing := [key for key in REQUIRED if key not in manifest]:
        raise DataError(manifest_path, f"missing key(s) {', '.join(missing)}", "the bundle is damaged or not "
                        "harlab's; save it again")
    if manifest["format"] != FORMAT:
        raise DataError(manifest_path, f"bundle format {manifest['format']}, this harlab reads {FORMAT}",
                        "use the harlab version that wrote it")
    if not weights.exists():
        raise DataError(weights, "missing", "the bundle is incomplete; save it again")
    if (actual := sha256_file(weights)) != manifest["weights_sha256"]:
        raise DataError(weights, f"checksum mismatch (sha256 {actual[:12]}…, manifest says "
                        f"{str(manifest['weights_sha256'])[:12]}…)", "the weights were altered or truncated; "
                        "save the bundle again")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        raise DataError(weights, f"unreadable weights ({exc})", "save the bundle again") from None
    model = create_model(manifest["model"], len(manifest["channels"]), manifest["window"], len(manifest["classes"]),
                         **manifest["hyperparameters"])
    expected = model.state_dict()
    if problems := sorted(set(expected) ^ set(state)) or [
            f"{k} {tuple(state[k].shape)} ≠ {tuple(v.shape)}" for k, v in expected.items()
            if state[k].shape != v.shape]:
        raise DataError(weights, f"tensors do not fit model {manifest['model']!r}: {', '.join(map(str, problems[:3]))}",
                        "the manifest and weights come from different models; save the bundle again")
    model.load_state_dict(state)
    return Bundle(model.eval(), manifest)


def save_run_bundle(directory: Path, model: nn.Module, config: Any, data: Any, standardizer: Standardizer | None,
                    run: Any) -> Path:
    """The bundle of one finished run of `harlab train`: `config` a RepeatConfig, `data` the WindowSet it
    trained on, `run` its RunResult."""
    from dataclasses import asdict

    metrics = {"accuracy": run.accuracy, "macro_f1": run.macro_f1, "per_class": run.per_class,
               "confusion": run.confusion, "fold": run.fold, "repeat": run.repeat, "seed": run.seed,
               "test_subjects": list(data.test_subjects) if run.fold == "fixed" else None}
    return save_bundle(directory, model, model_name=config.model, hyperparameters=config.hyperparameters,
                       channels=list(data.channels), window=data.window, step=data.step,
                       sampling_rate=data.sampling_rate, classes=list(data.classes), standardizer=standardizer,
                       metrics=metrics, provenance=asdict(data.provenance),
                       training=config.model_dump(mode="json"), preprocessing=preprocessing_of(data))


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
