"""User-facing errors: one line that names the file, the field and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class HarlabError(Exception):
    """An error caused by input or environment, reported to the user as one line (no traceback)."""


class DataError(HarlabError):
    """Bad or missing data: a file, and where applicable a line and a field, plus what to do."""

    def __init__(self, path: str | Path, problem: str, fix: str = "", line: int | None = None):
        where = f"{path}:{line}" if line is not None else str(path)
        message = f"{where}: {problem}"
        if fix:
            message += f" — {fix}"
        super().__init__(message)
        self.path = Path(path)
        self.problem = problem
        self.fix = fix
        self.line = line


def field_problems(exc: Any) -> str:
    """A pydantic ValidationError as one line: `field=value: what is wrong` per problem, joined by `; `."""
    return "; ".join(f"{'.'.join(map(str, e['loc']))}={e['input']!r}: {e['msg']}" for e in exc.errors())
