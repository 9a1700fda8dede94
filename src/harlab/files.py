"""Atomic file writes, checksums and writer locks: a crash, Ctrl-C or a full disk never leaves a half-written
file behind, saving never deletes a folder that is not harlab's own output, and two processes never write the
same results at once."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

from harlab.errors import DataError, HarlabError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def umask() -> int:
    """The process's file-creation mask (read by setting and restoring it)."""
    current = os.umask(0)
    os.umask(current)
    return current


@contextlib.contextmanager
def atomic_open(path: Path) -> Iterator[BinaryIO]:
    """Open a temporary file beside `path`; on success fsync and rename it over `path`, else delete it.
    The file gets the permissions an ordinary new file would (mkstemp's are owner-only)."""
    with disk_full_reported(path):
        with _named_as(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        tmp = Path(tmp_name)
        try:
            os.fchmod(fd, 0o666 & ~umask())
            with os.fdopen(fd, "wb") as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            with _named_as(path):
                os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


@contextlib.contextmanager
def _named_as(path: Path) -> Iterator[None]:
    """An error of the file system while harlab itself makes `path` (not a full disk: that has its own line) as
    one line naming `path`, not the temporary name beside it."""
    try:
        yield
    except OSError as exc:
        if exc.errno in DISK_FULL:
            raise
        raise WriteError(path, f"cannot write ({exc.strerror or exc})",
                         "choose a path in a folder you can write to") from None


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_open(path) as handle:
        handle.write(data)


def atomic_write_json(path: Path, value: Any) -> None:
    """Write `value` as indented JSON to `path` atomically."""
    atomic_write_bytes(path, (json.dumps(value, indent=2, sort_keys=False) + "\n").encode())


class WriteError(DataError):
    """A file harlab makes could not be written (a missing or read-only folder, a folder in the way, ...)."""


class DiskFull(WriteError):
    """The disk filled up (or the quota ran out) while harlab wrote a file."""


@contextlib.contextmanager
def disk_full_reported(path: Path, kept: str = "nothing half-written was left") -> Iterator[None]:
    """Turn a full disk while writing `path` (or anything inside it: the outermost names it) into one line saying
    what to do."""
    try:
        yield
    except (OSError, DiskFull) as exc:
        if isinstance(exc, OSError) and exc.errno not in DISK_FULL:
            raise
        raise DiskFull(path, "disk full while writing", f"free space and run the same command again; {kept}") from None


@dataclass(frozen=True)
class OutputKind:
    """A harlab output folder that a new one of its kind may replace: what it is called, the names its top level
    holds (exactly: a folder with anything else in it is a user's) and its marker, a JSON object with `keys`."""

    what: str
    marker: str
    names: frozenset[str]
    keys: frozenset[str] = frozenset()

    def holds(self, folder: Path) -> bool:
        """Whether `folder` is one of these, with nothing of the user's in it."""
        marker = folder / self.marker
        if {p.name for p in folder.iterdir()} != self.names or not marker.is_file() or marker.stat().st_size > 1 << 24:
            return False  # is_file: a pipe or device there would never answer
        try:
            value = json.loads(marker.read_bytes())
        except (OSError, ValueError):
            return False
        return isinstance(value, dict) and self.keys <= value.keys()


Replaceable = Literal["bundle", "dataset", "mlpackage"]
KINDS: dict[str, OutputKind] = {  # the names each writer (deploy/bundle.py, data/recordings.py, Core ML) writes
    "bundle": OutputKind("a harlab bundle", "manifest.json", frozenset({"manifest.json", "model.safetensors"}),
                         frozenset({"format", "weights_sha256"})),
    "dataset": OutputKind("a harlab dataset folder", "dataset.json", frozenset({"dataset.json", "windows.npz"})),
    "mlpackage": OutputKind("a Core ML package", "Manifest.json", frozenset({"Manifest.json", "Data"})),
}


def check_output_folder(path: Path, replaces: Replaceable | None = None) -> None:
    """Refuse, in one line, to write the folder `path` unless it is new, an empty folder, or a folder of the kind
    `replaces` (which a new one may replace): a user's own folder or files, or the working folder, are never
    touched."""
    if Path.cwd().resolve().is_relative_to(path.resolve()):
        raise DataError(path, "is the working folder (or holds it)", "choose a new folder")
    if not (path.exists() or path.is_symlink()):
        return
    if path.is_dir() and not path.is_symlink() and (
            not any(path.iterdir()) or (replaces is not None and KINDS[replaces].holds(path))):
        return
    what = "an empty folder" if replaces is None else KINDS[replaces].what
    raise DataError(path, f"exists and is not {what}", "choose a new folder")


@contextlib.contextmanager
def atomic_directory(path: Path, replaces: Replaceable | None = None) -> Iterator[Path]:
    """Yield a temporary folder beside `path` that becomes `path` only if the block finishes without error; it is
    deleted otherwise. `path` must pass `check_output_folder` (before and again after the block): an old folder is
    renamed aside, the new one renamed in, and only then the old one deleted — one of the two is always whole."""
    check_output_folder(path, replaces)
    path.parent.mkdir(parents=True, exist_ok=True)
    with disk_full_reported(path):
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
        try:
            tmp.chmod(0o777 & ~umask())  # mkdtemp makes it private; the result should be an ordinary folder
            yield tmp
            check_output_folder(path, replaces)  # nobody put their own files there meanwhile
            if not path.exists():
                os.replace(tmp, path)
                return
            aside = tmp.with_name(tmp.name.removesuffix(".part") + ".old")  # unique as tmp's name is
            os.replace(path, aside)
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(aside, path)
                raise
            shutil.rmtree(aside)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


_HELD: set[Path] = set()  # locks this process holds, so a caller may take one its callee takes again


@contextlib.contextmanager
def exclusive(target: Path, lock: Path) -> Iterator[None]:
    """Hold the lock file `lock` for the block, so that one harlab process at a time writes `target`; another gets
    one line naming this one's pid. The operating system releases it when the process ends, however it ends."""
    key = lock.resolve()
    if key in _HELD:
        yield
        return
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise DataError(lock.parent, "exists and is not a folder", "choose another out folder") from None
    with open(lock, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            pid = handle.read().strip()
            raise HarlabError(f"{target} is being written by another harlab process" + (f" (pid {pid})" if pid else "")
                              + "; wait for it or choose another out folder") from None
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        _HELD.add(key)
        try:
            yield
        finally:
            _HELD.discard(key)
