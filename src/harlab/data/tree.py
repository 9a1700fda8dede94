"""A read-only view of a dataset's files, whether they sit in a folder or inside a (nested) zip; members are read
within the decompression limits of `harlab.data.fetch`."""

from __future__ import annotations

import hashlib
import io
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from harlab.data import fetch
from harlab.data.fetch import Inflation, member_target, open_zip, regular_file
from harlab.errors import DataError
from harlab.files import sha256_file


class FileTree:
    """Files by relative POSIX name, read as bytes; `where(name)` names a file in error messages."""

    def __init__(self, root: Path, names: list[str], zip_file: zipfile.ZipFile | None, identity: str | None,
                 inflation: Inflation | None = None):
        self.root = root
        self._names = names
        self._zip = zip_file
        self._identity = identity
        self._inflation = inflation or Inflation()  # shared with inner archives: one total for the whole tree

    @property
    def identity(self) -> str:
        """sha256 of the archive, or of a folder's listing (names, sizes, modification times)."""
        if self._identity is None:
            self._identity = sha256_file(self.root)
        return self._identity

    @classmethod
    def open(cls, path: Path) -> FileTree:
        """A folder, or a zip archive (every entry name checked so none can escape its folder)."""
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file())
            names = [p.relative_to(path).as_posix() for p in files]
            listing = "\n".join(f"{n}\t{p.stat().st_size}\t{p.stat().st_mtime_ns}" for n, p in zip(names, files,
                                                                                                 strict=True))
            return cls(path, names, None, hashlib.sha256(listing.encode()).hexdigest())
        zf = open_zip(path)
        return cls._from_zip(path, zf, None)

    @classmethod
    def _from_zip(cls, path: Path, zf: zipfile.ZipFile, identity: str | None,
                  inflation: Inflation | None = None) -> FileTree:
        names = []
        for info in zf.infolist():
            member_target(Path("/nonexistent-root"), info.filename, path)
            if not info.is_dir():
                names.append(info.filename)
        return cls(path, names, zf, identity, inflation)

    def names(self) -> list[str]:
        return list(self._names)

    def find(self, suffix: str) -> str | None:
        """The shortest name ending in `suffix` (skipping macOS resource forks), or None."""
        hits = [n for n in self._names if n.endswith(suffix) and "__MACOSX" not in n]
        return min(hits, key=len) if hits else None

    def where(self, name: str) -> Path:
        return self.root / name

    def read(self, name: str) -> bytes:
        """A file's bytes: a folder's regular file, or a zip member decompressed within the limits."""
        try:
            if self._zip is None:
                regular_file(self.root / name, "use the dataset's own files", limit=fetch.MAX_MEMBER_BYTES)
                return (self.root / name).read_bytes()
            info = self._zip.getinfo(name)
            with self._zip.open(info) as stream:
                return self._inflation.read(stream, self.root, f"member {name!r}", info.compress_size)
        except (zipfile.BadZipFile, OSError, EOFError, KeyError, zlib.error) as exc:
            raise DataError(self.where(name), f"cannot read ({exc})",
                            "the file or archive is truncated or corrupt; fetch the dataset again") from None

    def descend(self, marker: str) -> FileTree:
        """This tree if it holds `marker`, else the first inner zip archive that does."""
        if self.find(marker) is not None:
            return self
        for name in self._names:
            if name.endswith(".zip") and "__MACOSX" not in name:
                data = self.read(name)
                try:
                    inner = zipfile.ZipFile(io.BytesIO(data))
                except zipfile.BadZipFile:
                    raise DataError(self.where(name), "inner archive is not a readable zip",
                                    "the archive is corrupt; fetch it again") from None
                tree = FileTree._from_zip(self.where(name), inner, hashlib.sha256(data).hexdigest(), self._inflation)
                if tree.find(marker) is not None:
                    return tree
        raise DataError(self.root, f"no {PurePosixPath(marker).name} found inside",
                        "point harlab at the dataset's own archive or extracted folder")
