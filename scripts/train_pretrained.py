"""Train the pretrained models shipped in the package (src/harlab/deploy/pretrained/NAME/), as anyone can rerun it.

For each model: subject-grouped 5-fold cross-validation on all 30 HAPT subjects (the estimate of its accuracy on
people it never saw: accuracy and macro-F1, mean ± std over the folds, and the summed confusion matrix), then one
fit on all 30 subjects, saved as an ordinary bundle whose manifest's `pretrained` entry records all of it, the
recipe, the seed and the data's sha256. The models read raw acc/gyro columns (the UCI HAR pipeline comes with
them, as every hapt bundle's does):

- hapt-resnet1d: accelerometer (g) and gyroscope (rad/s), the modern recipe's resnet1d;
- hapt-acc: accelerometer only (most wearables and many phone exports have no gyroscope); its architecture is
  chosen among CANDIDATES by accuracy on validation subjects held out of HAPT's fixed training split.

    python scripts/train_pretrained.py --data-dir ../shared/data [--only hapt-acc]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from harlab.data.datasets import load_dataset
from harlab.data.windowset import WindowSet
from harlab.deploy.bundle import save_bundle
from harlab.deploy.hmm import Transitions
from harlab.deploy.pretrained import FOLDER
from harlab.estimator import HARClassifier
from harlab.evaluation.metrics import score
from harlab.training.run import hold_out_validation

SEED, FOLDS = 0, 5
ACC_RAW = ["acc_x", "acc_y", "acc_z"]
ACC_CHANNELS = ("total_acc_x", "total_acc_y", "total_acc_z", "body_acc_x", "body_acc_y", "body_acc_z")
CANDIDATES = ("resnet1d", "inceptiontime", "cnn")  # for hapt-acc, chosen on validation subjects
MODELS = {
    "hapt-resnet1d": ("Phone at the waist: accelerometer + gyroscope, the 6 UCI HAR activities", None),
    "hapt-acc": ("Accelerometer only (3 axes, in g), phone at the waist: the 6 UCI HAR activities", ACC_CHANNELS),
}


def with_channels(ws: WindowSet, channels: tuple[str, ...] | None) -> WindowSet:
    return ws if channels is None else ws.channels_named(channels)


def fitted(model: str, train: WindowSet) -> HARClassifier:
    started = time.perf_counter()
    clf = HARClassifier(model, random_state=SEED).fit(train)
    print(f"    {model} on {len(train):,} windows of {len(set(train.subject.tolist()))} subjects: "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    return clf


def choose(ws: WindowSet) -> str:
    """The candidate with the best accuracy on validation subjects held out of the fixed training split."""
    train, _ = ws.split()
    fit_part, validation, subjects = hold_out_validation(train, 0.2, SEED)
    accuracy = {}
    for model in CANDIDATES:
        predicted = fitted(model, fit_part).predict(validation)
        accuracy[model] = float(np.mean(predicted == np.asarray(ws.classes)[validation.y]))
        print(f"  {model}: {accuracy[model]:.2%} on validation subjects {subjects}", flush=True)
    return max(accuracy, key=accuracy.__getitem__)


def cross_validate(model: str, ws: WindowSet) -> dict:
    """Subject-grouped k-fold: per fold accuracy and macro-F1 (%), their mean ± std, the summed confusion."""
    accuracy, macro_f1, confusion = [], [], np.zeros((len(ws.classes),) * 2, int)
    for number, (train, test) in enumerate(ws.folds("kfold", folds=FOLDS, seed=SEED), start=1):
        predicted = fitted(model, train).predict(test)
        codes = np.array([ws.classes.index(c) for c in predicted])
        scores = score(test.y, codes, ws.classes)
        accuracy.append(100 * scores.accuracy)
        macro_f1.append(100 * scores.macro_f1)
        confusion += np.asarray(scores.confusion)
        print(f"  fold {number}: {accuracy[-1]:.2f} % (test subjects {sorted(set(test.subject.tolist()))})",
              flush=True)
    return {"folds": FOLDS, "grouped_by": "subject", "seed": SEED,
            "accuracy": {"mean": float(np.mean(accuracy)), "std": float(np.std(accuracy, ddof=1)),
                         "per_fold": accuracy},
            "macro_f1": {"mean": float(np.mean(macro_f1)), "std": float(np.std(macro_f1, ddof=1)),
                         "per_fold": macro_f1},
            "confusion": confusion.tolist(), "confusion_order": list(ws.classes)}


def train_pretrained(name: str, data: WindowSet) -> Path:
    description, channels = MODELS[name]
    ws = with_channels(data, channels)
    model = "resnet1d" if channels is None else choose(ws)
    print(f"{name}: {model}, {FOLDS}-fold cross-validation by subject", flush=True)
    cv = cross_validate(model, ws)
    print(f"{name}: {cv['accuracy']['mean']:.2f} ± {cv['accuracy']['std']:.2f} %; final fit on all 30", flush=True)
    clf = fitted(model, ws)
    raw = ACC_RAW if channels is not None else ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
    about = {"name": name, "description": description, "model": model, "recipe": clf.config_.model_dump(mode="json"),
             "seed": SEED, "trained_on": f"HAPT raw recordings, all 30 subjects ({len(ws):,} windows)",
             "data_sha256": data.provenance.sha256, "cross_validation": cv,
             "units": {"acc": "g", "gyro": "rad/s"}, "trained_by": "scripts/train_pretrained.py"}
    return save_bundle(FOLDER / name, clf.model_, model_name=model, hyperparameters=clf.config_.hyperparameters,
                       channels=list(ws.channels), window=ws.window, step=ws.step, sampling_rate=ws.sampling_rate,
                       classes=list(ws.classes), standardizer=clf.standardizer_,
                       metrics={"cross_validation": cv, "seed": SEED}, provenance=asdict(ws.provenance),
                       training=clf.config_.model_dump(mode="json"),
                       preprocessing={"pipeline": "uci-har", "raw_channels": raw, "accelerometer": ACC_RAW},
                       transitions=Transitions.count(ws.y, ws.subject, len(ws.classes), ws.step), pretrained=about)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--only", choices=list(MODELS), default=None)
    args = parser.parse_args()
    data = load_dataset("hapt", args.data_dir)
    for name in [args.only] if args.only else MODELS:
        print(f"wrote {train_pretrained(name, data)}", flush=True)


if __name__ == "__main__":
    main()
