"""Scores of one run on held-out windows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support


@dataclass(frozen=True)
class Scores:
    """Accuracy and macro-F1 (fractions), per-class precision/recall/F1, and the confusion matrix."""

    accuracy: float
    macro_f1: float
    per_class: dict[str, dict[str, float]]
    confusion: list[list[int]]


def score(y_true: np.ndarray, y_pred: np.ndarray, classes: tuple[str, ...]) -> Scores:
    labels = list(range(len(classes)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    per_class = {name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                 for name, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True)}
    return Scores(float(accuracy_score(y_true, y_pred)),
                  float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
                  per_class, confusion_matrix(y_true, y_pred, labels=labels).tolist())
