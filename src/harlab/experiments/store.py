"""The results store: one folder per experiment holding the spec as run, the environment, and one JSON line
per finished run, appended and fsynced as each run ends.

A run killed mid-write leaves at most a torn last line, which is cut off when the store is opened again; a
finished run is never lost or written twice, so running the same command again finishes what is missing. One
process at a time writes a store (`writing`); a run found twice all the same (e.g. lines pasted in) counts once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from harlab.errors import DataError, HarlabError
from harlab.experiments.spec import ExperimentSpec
from harlab.files import atomic_write_json, disk_full_reported, exclusive

SPEC_FILE, ENVIRONMENT_FILE, RUNS_FILE, DATASET_FILE = "spec.json", "environment.json", "runs.jsonl", "dataset.json"
LOCK_FILE = ".lock"
logger = logging.getLogger(__name__)
RUNS_KEPT = "the runs finished so far are kept"


def run_place(row: dict[str, Any]) -> tuple[str, str, int]:
    """Which run a stored row is: (configuration key, fold, repeat); rows written before folds existed belong
    to the dataset's own (fixed) split."""
    return row["key"], row.get("fold", "fixed"), row["repeat"]


def writing(directory: Path) -> contextlib.AbstractContextManager[None]:
    """Hold the results folder `directory` for writing (DIR/.lock) while the block runs: a second harlab process on
    the same --out is refused in one line instead of training and storing every run again."""
    return exclusive(directory, directory / LOCK_FILE)


class ResultsStore:
    """One experiment's folder: spec.json, dataset.json, environment.json, runs.jsonl."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.runs_path = directory / RUNS_FILE

    @classmethod
    def open(cls, directory: Path, spec: ExperimentSpec, dataset: dict[str, Any],
             environment: dict[str, Any]) -> ResultsStore:
        """Create the store, or reopen one holding the same experiment: only what does not change the finished
        runs may differ (repeats, description, the tutorial's reference, variants added after the existing
        ones), and the spec is updated to it."""
        store = cls(directory)
        spec_json = spec.model_dump(mode="json")
        if (directory / SPEC_FILE).exists():
            previous = store.spec()
            if not _extends(previous, spec_json):
                raise HarlabError(f"{directory} holds a different experiment ({previous.get('name')!r}); "
                                  "choose another out folder, or delete the folder to start over")
            if store.dataset() != dataset:
                raise HarlabError(f"{directory} holds runs on other data ({store.dataset().get('provenance')}); "
                                  "choose another out folder")
            store._cut_torn_line()
        else:
            directory.mkdir(parents=True, exist_ok=True)
            atomic_write_json(directory / DATASET_FILE, dataset)
        atomic_write_json(directory / SPEC_FILE, spec_json)
        atomic_write_json(directory / ENVIRONMENT_FILE, environment)
        return store

    def _read_json(self, name: str) -> dict[str, Any]:
        path = self.directory / name
        try:
            return json.loads(path.read_bytes())
        except FileNotFoundError:
            raise DataError(path, "missing", "is this a harlab experiment folder?") from None
        except ValueError as exc:  # not JSON, or not UTF-8
            raise DataError(path, f"not valid JSON ({getattr(exc, 'msg', exc)})",
                            "delete the folder and run again") from None

    def spec(self) -> dict[str, Any]:
        return self._read_json(SPEC_FILE)

    def dataset(self) -> dict[str, Any]:
        return self._read_json(DATASET_FILE)

    def environment(self) -> dict[str, Any]:
        return self._read_json(ENVIRONMENT_FILE)

    def _cut_torn_line(self) -> None:
        if not self.runs_path.exists():
            return
        data = self.runs_path.read_bytes()
        if data and not data.endswith(b"\n"):
            with self.runs_path.open("r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)
                os.fsync(f.fileno())

    def rows(self) -> list[dict[str, Any]]:
        """Every finished run, in the order they finished. A run stored twice (same configuration, fold and repeat:
        the same seeded run) counts once, the first kept, with a one-line note: a pasted or merged line must
        not change n, the means or the p-values, and refusing would lock the user out of finished results."""
        if not self.runs_path.exists():
            return []
        rows: dict[tuple[str, str, int], dict[str, Any]] = {}
        repeated = []
        with self.runs_path.open("rb") as f:
            for number, line in enumerate(f, 1):
                if not line.endswith(b"\n"):
                    break  # torn by a kill mid-write: that run did not finish
                try:
                    row = json.loads(line)
                    place = run_place(row)
                except ValueError as exc:  # not JSON, or not UTF-8
                    raise DataError(self.runs_path, f"damaged row ({getattr(exc, 'msg', exc)})",
                                    "delete that line and run again", line=number) from None
                except (KeyError, TypeError):
                    raise DataError(self.runs_path, "not a run (no key or repeat)", "delete that line and run again",
                                    line=number) from None
                if problem := _row_problem(row):
                    raise DataError(self.runs_path, f"not a run ({problem})", "delete that line and run again",
                                    line=number)
                if place in rows:
                    repeated.append(number)
                else:
                    rows[place] = row
        if repeated:
            logger.warning(f"{self.runs_path}: line(s) {', '.join(map(str, repeated))} store a run again (same "
                           "configuration, fold and repeat); each run counts once, as first stored")
        return list(rows.values())

    def finished(self) -> set[tuple[str, str, int]]:
        """(configuration key, fold, repeat) of every finished run."""
        return {run_place(row) for row in self.rows()}

    def append(self, row: dict[str, Any]) -> None:
        """Add one finished run, durably: written, flushed and fsynced before this returns."""
        line = json.dumps(row, separators=(",", ":")) + "\n"
        with disk_full_reported(self.runs_path, RUNS_KEPT), self.runs_path.open("a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())


def _row_problem(row: dict[str, Any]) -> str:
    """What makes a stored row unusable as a finished run (a hand edit, a foreign line), or "" when nothing does."""
    if not (isinstance(row["key"], str) and isinstance(row["repeat"], int) and isinstance(row.get("fold", ""), str)):
        return "key, fold and repeat must be text, text and a whole number"
    for name in ("accuracy", "macro_f1"):
        value = row.get(name, 0.0)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            return f"{name} {value!r} is not a fraction between 0 and 1"
    seconds = row.get("fit_seconds", 0.0)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds < float("inf"):
        return f"fit_seconds {seconds!r} is not a number of seconds"
    return ""


def refuse_old_train_file(out: Path) -> None:
    """A results file of `harlab train` from before results were folders is refused in one line that says how to
    get the same runs in the folder format (they are seeded: training them again gives the same numbers)."""
    if out.is_file() and out.suffix == ".json":
        raise DataError(out, "a results file of an older harlab train (results are folders now, readable by "
                        "`harlab experiment report`)", "train again with the same options into a new out folder "
                        "(the runs are seeded: the same numbers); the old file stays readable as JSON")


def same_configuration(a: dict[str, Any], b: dict[str, Any], ignore: tuple[str, ...] = ("repeats",)) -> bool:
    """Whether two dumped configurations (or specs) train the same runs: the keys in `ignore` — by default
    the number of repeats — may differ."""
    return {k: v for k, v in a.items() if k not in ignore} == {k: v for k, v in b.items() if k not in ignore}


def _extends(previous: dict[str, Any], spec: dict[str, Any]) -> bool:
    """Whether `spec` trains every run of `previous` the same way, possibly with more variants after its own."""
    before, after = previous.get("variants", []), spec.get("variants", [])
    return after[:len(before)] == before and same_configuration(previous, spec, (
        "repeats", "description", "tutorial", "variants", "device", "workers", "replicas"))
