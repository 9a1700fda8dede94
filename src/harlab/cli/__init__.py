"""The `harlab` command line: a thin shell over the public Python API (harlab.api), one module per command
group; each command parses its options, calls the API and prints."""

from __future__ import annotations

import errno
import os
import sys

from rich.markup import escape

from harlab.cli import (  # noqa: F401  (commands register)
    data,
    deploy,
    experiment,
    models,
    reproduce,
    serve,
    train,
    tune,
)
from harlab.cli.common import app, parse_params
from harlab.cli.flags import as_flags
from harlab.console import console
from harlab.errors import HarlabError

__all__ = ["app", "main", "one_line_error", "parse_params"]
_parse_params = parse_params  # the name older tests use

_FIXES = {
    errno.ENOSPC: "the disk is full; free space and run the same command again (finished runs are kept)",
    errno.EDQUOT: "the disk quota is used up; free space and run the same command again",
    errno.EACCES: "permission denied; choose a folder you may write to, or fix its permissions",
    errno.EPERM: "not permitted; choose a folder you may write to, or fix its permissions",
    errno.EROFS: "the file system is read-only; choose a writable folder",
    errno.EISDIR: "is a folder where a file is needed; give a file path",
    errno.ENOTDIR: "part of the path is a file, not a folder; fix the path (or HARLAB_CACHE)",
    errno.ENOENT: "not found; check the path",
    errno.EEXIST: "already exists; choose another path",
    errno.ENAMETOOLONG: "the name is too long; choose a shorter path",
}


def one_line_error(exc: BaseException) -> str:
    """What the user sees for an error that escaped a command: one line with the file and the fix."""
    if isinstance(exc, HarlabError):
        return as_flags(str(exc))
    if isinstance(exc, OSError):
        where = " → ".join(str(name) for name in (exc.filename, exc.filename2) if name is not None)
        fix = _FIXES.get(exc.errno or 0, f"{exc.strerror or exc}; check the path and the disk")
        return f"{where or 'a file operation'}: {fix}"
    if isinstance(exc, MemoryError):
        return ("out of memory; use fewer or shorter windows, a smaller --batch-size or model, or a machine "
                "with more memory")
    if isinstance(exc, RecursionError):
        return "the input is nested too deeply to read; check the file for runaway nesting"
    first = next(iter(str(exc).strip().splitlines()), "")
    return (f"unexpected {type(exc).__name__}" + (f" ({first[:300]})" if first else "")
            + "; run again with --debug for the traceback, and please report it")


def main() -> None:
    """Entry point: any error becomes one line on stderr and exit status 1 (`harlab --debug ...` or
    HARLAB_DEBUG=1 shows the traceback instead); Ctrl-C exits with 130."""
    try:
        app()
    except KeyboardInterrupt:
        console.print("interrupted", highlight=False)
        sys.exit(130)
    except Exception as exc:
        if _debug_wanted():
            raise
        console.print(f"[bold red]error:[/] {escape(one_line_error(exc))}", highlight=False)
        sys.exit(1)


def _debug_wanted() -> bool:
    return os.environ.get("HARLAB_DEBUG", "") not in ("", "0") or "--debug" in sys.argv[1:2]
