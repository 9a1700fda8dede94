"""Scores of one run on held-out windows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support


@dataclass(frozen=True)
class Scores:
    """Accuracy and macro-F1 (fractions), per-class precision/recall/F1, the confusion matrix, and the balanced
    accuracy (the mean recall of the classes present)."""

    accuracy: float
    macro_f1: float
    per_class: dict[str, dict[str, float]]
    confusion: list[list[int]]
    balanced_accuracy: float


def score(y_true: np.ndarray, y_pred: np.ndarray, classes: tuple[str, ...]) -> Scores:
    labels = list(range(len(classes)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    per_class = {name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                 for name, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True)}
    return Scores(float(accuracy_score(y_true, y_pred)),
                  float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
                  per_class, confusion_matrix(y_true, y_pred, labels=labels).tolist(),
                  float(np.mean(recall[support > 0])) if (support > 0).any() else float("nan"))


def classification_report_lines(per_class: dict[str, dict[str, float]], confusion: list[list[int]]) -> list[str]:
    """scikit-learn-style text: precision, recall, F1 and support per class, macro and weighted averages, then
    the confusion matrix (rows: true class, columns: predicted, in the same order)."""
    names = list(per_class)
    width = max(12, *(len(n) for n in names))
    metrics = ("precision", "recall", "f1")
    lines = [f"{'':>{width}}  precision  recall     f1  support"]
    for name, row in per_class.items():
        lines.append(f"{name:>{width}}  {row['precision']:9.3f}  {row['recall']:6.3f}  {row['f1']:5.3f}  "
                     f"{row['support']:7d}")
    support = np.array([row["support"] for row in per_class.values()], dtype=float)
    total = int(support.sum())
    for label, weights in (("macro avg", np.ones_like(support)), ("weighted avg", support)):
        values = [float(np.average([row[m] for row in per_class.values()], weights=weights)) for m in metrics]
        lines.append(f"{label:>{width}}  {values[0]:9.3f}  {values[1]:6.3f}  {values[2]:5.3f}  {total:7d}")
    lines.append("confusion matrix (rows: true, columns: predicted, order as above):")
    cell = max(4, *(len(str(v)) for r in confusion for v in r))
    lines += [f"{name:>{width}}  " + " ".join(f"{v:>{cell}}" for v in r) for name, r in zip(names, confusion,
                                                                                             strict=True)]
    return lines
