"""Pretrained activity models shipped inside the package: `pretrained:NAME` wherever a bundle is accepted.

Each is an ordinary bundle folder (safetensors weights + manifest.json) under harlab/deploy/pretrained/, trained
by scripts/train_pretrained.py on all 30 subjects of the HAPT recordings. Its manifest's `pretrained` entry says
what it is for, what it was trained on (with the data's sha256), with which recipe and seed, and how well it does
on people it never saw: subject-grouped 5-fold cross-validation (accuracy and macro-F1, mean ± std, and the
summed confusion matrix). Nothing is downloaded: the weights are package data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harlab.errors import HarlabError

PREFIX = "pretrained:"
FOLDER = Path(__file__).parent / "pretrained"


@dataclass(frozen=True)
class PretrainedModel:
    """A shipped model as `harlab models list --pretrained` shows it."""

    name: str
    path: Path
    description: str
    channels: list[str]
    sampling_rate: float
    window: int
    classes: list[str]
    cross_validation: dict[str, Any]

    def input_text(self) -> str:
        """`acc_x, acc_y, acc_z in g at 50 Hz, windows of 128 samples`: what a recording must give it."""
        return (f"{', '.join(self.channels)} at {self.sampling_rate:g} Hz (any rate is resampled), windows of "
                f"{self.window} samples")

    def accuracy_text(self) -> str:
        """`98.1 ± 0.6 % (macro-F1 98.0 ± 0.7 %), 5-fold CV by subject`."""
        cv = self.cross_validation
        return (f"{cv['accuracy']['mean']:.1f} ± {cv['accuracy']['std']:.1f} % (macro-F1 {cv['macro_f1']['mean']:.1f} "
                f"± {cv['macro_f1']['std']:.1f} %), {cv['folds']}-fold CV by subject")


def pretrained_models() -> list[PretrainedModel]:
    """Every model shipped in the package, by name."""
    found = []
    for folder in sorted(p for p in FOLDER.iterdir() if (p / "manifest.json").is_file()) if FOLDER.is_dir() else []:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        about = manifest["pretrained"]
        raw = (manifest.get("preprocessing") or {}).get("raw_channels") or manifest["channels"]
        found.append(PretrainedModel(folder.name, folder, about["description"], list(raw),
                                     manifest["sampling_rate"], manifest["window"], manifest["classes"],
                                     about["cross_validation"]))
    return found


def resolve(model: str | Path) -> Path:
    """The bundle folder `model` names: `pretrained:NAME` for a shipped model, else the path itself."""
    text = str(model)
    if not text.startswith(PREFIX):
        return Path(model)
    name = text[len(PREFIX):]
    names = [m.name for m in pretrained_models()]
    if name not in names:
        raise HarlabError(f"{text}: no such pretrained model; choose one of: {', '.join(names) or 'none shipped'} "
                          "(harlab models list --pretrained)")
    return FOLDER / name
