"""Library messages name settings as fields; `as_flags` turns them into the command line's flags.

harlab's library code (errors and logged notices) never speaks in flags: a Python or spec user has no
`--validation-split`. A message names a setting in one of these forms instead, and the command line passes
its messages through `as_flags` to show its own flags:

- `name=VALUE`: what to set. "set validation_split=0" → "pass --validation-split 0"; "set rate=50 or
  pipeline=none" → "pass --rate 50 or --pipeline none"; "set data_dir=DIR" → "pass --data-dir DIR". A boolean
  is `name=true` → `--name` and `name=false` → `--no-name` (use false only for a flag that has a --no- form).
  Write it with no spaces in VALUE, after a space or "(" (optionally in backticks), and only for what the user
  should set, never to describe data ("window=80" in a description would become a flag too).
- the `name` setting (or the `a` or `b` setting(s)): the setting itself. "lower the `window` setting" → "lower
  --window"; "raise the `step` setting" → "raise --step"; "lower the `window` or `purity` setting" → "lower
  --window or --purity".
- `name` in backticks alone: "pass its name (`time_column`, `channels`, ...)" → "(--time-column, --channels, ...)".
- out folder: the output folder. "choose another out folder" → "choose another --out folder".

Only the names in FLAGS are translated; anything else (a model hyperparameter such as filters=16, which the
command line takes as `--param filters=16`, or an environment variable such as HARLAB_MAX_MEMORY=8e9) stays as
written, so a message about a setting without a flag reads the same everywhere. A message naming a new setting
needs its row in FLAGS (the field's name as a spec or the Python API spells it → the command line's flag).
"""

from __future__ import annotations

import re

FLAGS: dict[str, str] = {
    # datasets
    "data_dir": "--data-dir",
    "dataset": "--dataset",
    "window": "--window",
    "step": "--step",
    "transitions": "--transitions",
    # importing recordings (ImportOptions)
    "time_column": "--time-column",
    "label_column": "--label-column",
    "subject_column": "--subject-column",
    "session_column": "--session-column",
    "channels": "--channels",
    "rate": "--rate",
    "purity": "--purity",
    "max_gap_s": "--max-gap",
    "pipeline": "--pipeline",
    "align": "--align",
    "time_unit": "--time-unit",
    "test_subjects": "--test-subjects",
    # training runs (RunSettings and the split)
    "model": "--model",
    "repeats": "--repeats",
    "seed": "--seed",
    "standardize": "--standardize",
    "epochs": "--epochs",
    "batch_size": "--batch-size",
    "validation_split": "--validation-split",
    "patience": "--patience",
    "early_stopping": "--early-stopping",
    "schedule": "--schedule",
    "weight_decay": "--weight-decay",
    "label_smoothing": "--label-smoothing",
    "class_weight": "--class-weight",
    "sampler": "--sampler",
    "monitor": "--monitor",
    "learning_rate": "--learning-rate",
    "init": "--init",
    "freeze": "--freeze",
    "new_head": "--new-head",
    "head_learning_rate": "--head-learning-rate",
    "augment": "--augment",
    "split": "--cv",
    "folds": "--folds",
    "test_fraction": "--test-fraction",
    "threads": "--threads",
    "device": "--device",
    "workers": "--workers",
    "replicas": "--replicas",
    "precision": "--precision",
    # outputs and exports
    "out": "--out",
    "save": "--save",
    "save_repeat": "--save-repeat",
    "onnx": "--onnx",
    "coreml": "--coreml",
    "flat_input": "--flat-input",
    # experiments, searches, prediction
    "backend": "--backend",
    "address": "--address",
    "track": "--track",
    "tracking_uri": "--tracking-uri",
    "trials": "--trials",
    "timeout": "--timeout",
    "smoothing": "--smoothing",
    # harlab serve
    "host": "--host",
    "port": "--port",
    "token": "--token",
    "folder": "--folder",
    "speed": "--speed",
}

_NAME = r"[a-z][a-z0-9_]*"
_ASSIGNMENT = re.compile(rf"(?<![^\s(])(?P<set>set )?(?P<tick>`?)(?P<name>{_NAME})="
                         r"(?P<value>[^\s;)`]*[^\s;).,:`])(?P=tick)")
_SETTING = re.compile(rf"\bthe (?P<names>`{_NAME}`(?:(?:,| or| and|, or|, and) `{_NAME}`)*) settings?\b")
_TICKED = re.compile(rf"`(?P<name>{_NAME})`")
_OUT_FOLDER = re.compile(r"(?<![^\s(])out folder\b")


def _assignment(match: re.Match[str]) -> str:
    name, value = match["name"], match["value"]
    if name not in FLAGS:
        return match[0]
    flag = FLAGS[name]
    if value.lower() == "true":
        text = flag
    elif value.lower() == "false":
        text = "--no-" + flag.removeprefix("--")
    else:
        text = f"{flag} {value}"
    return ("pass " if match["set"] else "") + text


def _setting(match: re.Match[str]) -> str:
    names = _TICKED.findall(match["names"])
    if any(name not in FLAGS for name in names):
        return match[0]
    return _TICKED.sub(lambda m: FLAGS[m["name"]], match["names"])


def as_flags(message: str) -> str:
    """`message` with the settings it names (see the module docstring) written as command-line flags."""
    message = _ASSIGNMENT.sub(_assignment, message)
    message = _SETTING.sub(_setting, message)
    message = _TICKED.sub(lambda m: FLAGS.get(m["name"], m[0]), message)
    return _OUT_FOLDER.sub("--out folder", message)
