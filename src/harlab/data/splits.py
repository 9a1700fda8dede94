"""How windows are split into training and test data: always by subject, so no person is in both.

- `fixed`: the dataset's own split (its published test subjects, or the time split of a single-subject
  recording made at import).
- `holdout`: a seeded fraction of the subjects is the test set.
- `kfold`: K folds of whole subjects (scikit-learn's GroupKFold); every subject is tested once.
- `loso`: leave one subject out; as many folds as subjects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sklearn.model_selection import GroupKFold

from harlab.data.windowset import WindowSet
from harlab.errors import HarlabError, field_problems

SplitKind = Literal["fixed", "holdout", "kfold", "loso"]


class SplitSpec(BaseModel):
    """Which split: `kind`, with `test_fraction` (and `seed`) for holdout and `folds` for kfold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: SplitKind = "fixed"
    test_fraction: float = Field(default=0.3, gt=0, lt=1)
    folds: int = Field(default=5, ge=2)
    seed: int = Field(default=0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: object) -> object:
        """Accept the bare kind as shorthand: `split = "loso"`."""
        return {"kind": value} if isinstance(value, str) else value

    def is_default(self) -> bool:
        return self == SplitSpec()

    @classmethod
    def of(cls, kind: str, folds: int = 5, test_fraction: float = 0.3, seed: int = 0) -> SplitSpec:
        """The split `kind` with its options, or a one-line error naming the bad one."""
        try:
            return cls(kind=kind, folds=folds, test_fraction=test_fraction, seed=seed)  # type: ignore[arg-type]
        except ValidationError as exc:
            problems = field_problems(exc)
            raise HarlabError(f"split: {problems}") from None


@dataclass(frozen=True)
class Fold:
    """One train/test division: a name recorded with every run, and the test subjects (None: the dataset's own)."""

    name: str
    test_subjects: tuple[int, ...] | None = None

    def apply(self, data: WindowSet) -> tuple[WindowSet, WindowSet]:
        """(train, test) windows of `data` for this fold."""
        if self.test_subjects is None:
            return data.split()
        is_test = np.isin(data.subject, self.test_subjects)
        return data.select(~is_test), data.select(is_test)


OWN_SPLIT = Fold("fixed")


def folds(data: WindowSet, split: SplitSpec) -> list[Fold]:
    """The folds `split` makes of `data`, each testing on subjects it never trains on."""
    if split.kind == "fixed":
        return [OWN_SPLIT]
    subjects = np.unique(data.subject)
    name = data.provenance.dataset
    if len(subjects) < 2:
        raise HarlabError(f"{name}: {len(subjects)} subject(s) cannot be split by subject ({split.kind}); use the "
                          "fixed split (a single-subject recording is split in time when imported)")
    if split.kind == "holdout":
        count = min(max(1, round(split.test_fraction * len(subjects))), len(subjects) - 1)
        chosen = np.random.default_rng(split.seed).choice(subjects, count, replace=False)
        return [Fold("holdout", tuple(sorted(int(s) for s in chosen)))]
    if split.kind == "loso":
        return [Fold(f"subject-{int(s)}", (int(s),)) for s in subjects]
    if split.folds > len(subjects):
        raise HarlabError(f"{name}: {split.folds} folds need at least {split.folds} subjects, it has "
                          f"{len(subjects)}; lower the `folds` setting")
    groups = GroupKFold(n_splits=split.folds).split(np.zeros(len(subjects)), groups=subjects)
    return [Fold(f"kfold-{i}/{split.folds}", tuple(sorted(int(s) for s in subjects[test])))
            for i, (_, test) in enumerate(groups, 1)]


def split_record(data: WindowSet, split: SplitSpec) -> dict[str, Any]:
    """What a results record says about the data: for the dataset's own split, the train/test subjects and
    counts; for a cross-validation, every subject and each fold's test subjects."""
    if split.is_default():
        train, test = data.split()
        return {**data.metadata(), "window": data.window, "n_train": len(train), "n_test": len(test),
                "train_subjects": sorted(set(train.subject.tolist())),
                "test_subjects_present": sorted(set(test.subject.tolist()))}
    return {**data.metadata(), "window": data.window, "n_windows": len(data),
            "subjects": sorted(int(s) for s in np.unique(data.subject)),
            "folds": {f.name: list(f.test_subjects or ()) for f in folds(data, split)}}
