"""Personalisation on HAPT: how much do a person's first minutes of labelled data help?

A resnet1d (the modern recipe) is trained on HAPT's 21 training subjects. For each of the 9 test subjects, their
windows in recording order are cut after their first k minutes of labelled data (k = 0.5, 1, 2, 5; one window
left out at the cut, since windows overlap by half); the rest of that subject's windows are the test. On the same
test windows, three models are scored:

- no fine-tuning: the model trained on the 21 subjects, as it is;
- fine-tuned: that model fine-tuned on the first k minutes (`init=`, its defaults: the head's rows kept, learning
  rate 1e-4, the recipe's epochs);
- from scratch: a resnet1d trained on the first k minutes only.

Each fine-tuned and scratch fit is repeated with SEEDS seeds. Every score is appended to WORK/scores.jsonl as it is
made, so an interrupted run resumes where it stopped. Prints the table (the mean over subjects of each subject's
mean accuracy, ± the std over subjects) and draws WORK/personalisation.png (accuracy against k).

    python benchmarks/personalisation.py --data-dir ../shared/data --work /tmp/personalisation
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from harlab.data.datasets import load_dataset
from harlab.data.windowset import WindowSet
from harlab.errors import HarlabError
from harlab.estimator import HARClassifier

MINUTES = (0.5, 1.0, 2.0, 5.0)
SEEDS = (0, 1, 2)
METHODS = ("no fine-tuning", "fine-tuned", "from scratch")


def first_minutes(windows: WindowSet, minutes: float) -> tuple[WindowSet, WindowSet]:
    """(the windows of the first `minutes` of labelled data, the rest after one left-out window)."""
    count = round(minutes * 60 * windows.sampling_rate / windows.step)
    order = np.arange(len(windows))
    return windows.select(order < count), windows.select(order > count)


def base_model(data: WindowSet, work: Path) -> Path:
    folder = work / "base-resnet1d"
    if not (folder / "manifest.json").is_file():
        train, _ = data.split()
        started = time.perf_counter()
        HARClassifier("resnet1d", random_state=0).fit(train).save(folder)
        print(f"base resnet1d on {len(train):,} windows of the 21 training subjects: "
              f"{time.perf_counter() - started:.0f} s", flush=True)
    return folder


def score(method: str, base: Path, fit_on: WindowSet, test: WindowSet, seed: int) -> float | None:
    """The accuracy of `method` on `test`; None where the first minutes hold a single activity (nothing to fit)."""
    try:
        if method == "no fine-tuning":
            return HARClassifier.load(base).score(test)
        clf = HARClassifier(init=str(base), random_state=seed) if method == "fine-tuned" else HARClassifier(
            "resnet1d", random_state=seed)
        return clf.fit(fit_on).score(test)
    except HarlabError as exc:
        if "at least two classes" not in str(exc):
            raise
        return None


def measure(data: WindowSet, base: Path, scores_file: Path) -> list[dict]:
    done = [json.loads(line) for line in scores_file.read_text().splitlines()] if scores_file.exists() else []
    seen = {(r["subject"], r["minutes"], r["method"], r["seed"]) for r in done}
    for subject in data.test_subjects:
        windows = data.select(data.subject == subject)
        for minutes in MINUTES:
            fit_on, test = first_minutes(windows, minutes)
            for method in METHODS:
                for seed in SEEDS[:1] if method == "no fine-tuning" else SEEDS:
                    if (int(subject), minutes, method, seed) in seen:
                        continue
                    row = {"subject": int(subject), "minutes": minutes, "method": method, "seed": seed,
                           "fit_windows": len(fit_on), "activities": len(np.unique(fit_on.y)),
                           "test_windows": len(test), "accuracy": score(method, base, fit_on, test, seed)}
                    with scores_file.open("a") as out:
                        out.write(json.dumps(row) + "\n")
                    done.append(row)
            means = ", ".join(f"{m} {np.nanmean(_accuracies(done, subject, minutes, m)):.1f}" for m in METHODS)
            print(f"subject {subject}, first {minutes:g} min ({len(fit_on)} windows, "
                  f"{len(np.unique(fit_on.y))} activities): {means}", flush=True)
    return done


def _accuracies(rows: list[dict], subject: int, minutes: float, method: str) -> list[float]:
    """The accuracies (%, NaN where nothing could be fitted) of `method` for `subject` after `minutes`."""
    return [_pct(r) for r in rows if (r["subject"], r["minutes"], r["method"]) == (subject, minutes, method)]


def _pct(row: dict) -> float:
    return np.nan if row["accuracy"] is None else 100 * row["accuracy"]


def table(rows: list[dict]) -> dict[str, dict[float, tuple[float, float, int]]]:
    """method → minutes → (mean over subjects of the subject's mean accuracy, std over subjects, subjects)."""
    summary: dict[str, dict[float, tuple[float, float, int]]] = {}
    for method in METHODS:
        for minutes in MINUTES:
            per_subject = []
            for subject in sorted({r["subject"] for r in rows}):
                values = _accuracies(rows, subject, minutes, method)
                if values and not np.isnan(values).all():
                    per_subject.append(np.nanmean(values))
            summary.setdefault(method, {})[minutes] = (float(np.mean(per_subject)), float(np.std(per_subject, ddof=1)),
                                                       len(per_subject))
    return summary


def plot(summary: dict[str, dict[float, tuple[float, float, int]]], path: Path) -> None:
    figure, axes = plt.subplots(figsize=(6, 4))
    for method, by_minutes in summary.items():
        means = np.array([by_minutes[m][0] for m in MINUTES])
        stds = np.array([by_minutes[m][1] for m in MINUTES])
        axes.errorbar(MINUTES, means, yerr=stds, marker="o", capsize=3, label=method)
    axes.set(xscale="log", xticks=MINUTES, xticklabels=[f"{m:g}" for m in MINUTES],
             xlabel="labelled minutes of the person (first k)", ylabel="accuracy on the rest (%)",
             title="HAPT test subjects: personalising resnet1d")
    axes.minorticks_off()
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--work", type=Path, default=Path("results/personalisation"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    data = load_dataset("hapt", args.data_dir, quiet=True)
    base = base_model(data, args.work)
    rows = measure(data, base, args.work / "scores.jsonl")
    summary = table(rows)
    print("\n| method | " + " | ".join(f"k = {m:g} min" for m in MINUTES) + " |")
    print("|---|" + "---|" * len(MINUTES))
    for method, by_minutes in summary.items():
        print(f"| {method} | " + " | ".join(f"{mean:.1f} ± {std:.1f}" + ("" if n == 9 else f" ({n} subjects)")
                                           for mean, std, n in by_minutes.values()) + " |")
    plot(summary, args.work / "personalisation.png")
    print(f"figure: {args.work / 'personalisation.png'}")


if __name__ == "__main__":
    main()
