"""harlab.data.fetch against a loopback HTTP server: downloads with checksums, the package index as a
mirror (PEP 691 JSON and PEP 503 HTML), and zip extraction that cannot escape its folder."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import stat
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harlab.data import fetch
from harlab.data.fetch import download, fetch_from_index, list_index_files, safe_extract_zip
from harlab.data.tree import FileTree
from harlab.errors import DataError, HarlabError

PAYLOAD = bytes(range(256)) * 1000  # 256 kB: several 64 kB reads
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
PROJECT = "Tutorial_Data.Set"  # normalized on the index as tutorial-data-set
FILENAME = "tutorial-data-set-0.1.tar.gz"
JSON_TYPE = "application/vnd.pypi.simple.v1+json"


@dataclass
class Server:
    """A loopback HTTP server: `routes[path]` is (content type, body) or a callable taking the handler."""

    url: str
    routes: dict[str, tuple[str, bytes] | Callable[[BaseHTTPRequestHandler], None]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (path, Accept header)


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append((self.path, self.headers.get("Accept", "")))
            route = state.routes.get(self.path)
            if route is None:
                self.send_error(404)
            elif callable(route):
                route(self)
            else:
                content_type, body = route
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def closed_port_url() -> str:
    """A loopback URL where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/file.zip"


def leftovers(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*")) if folder.exists() else []


def one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(exc.value)
    assert "\n" not in text, text
    return text


# --- download -------------------------------------------------------------------------------------------


def test_download_writes_the_content_and_returns_its_sha256(server: Server, tmp_path: Path) -> None:
    server.routes["/data/file.bin"] = ("application/octet-stream", PAYLOAD)
    dest = tmp_path / "new" / "folder" / "file.bin"
    assert download(f"{server.url}/data/file.bin", dest, quiet=True) == PAYLOAD_SHA
    assert dest.read_bytes() == PAYLOAD
    assert leftovers(dest.parent) == [dest]


def test_download_with_the_expected_sha256(server: Server, tmp_path: Path) -> None:
    server.routes["/file.bin"] = ("application/octet-stream", PAYLOAD)
    dest = tmp_path / "file.bin"
    assert download(f"{server.url}/file.bin", dest, expected_sha256=PAYLOAD_SHA) == PAYLOAD_SHA  # with progress bar
    assert dest.read_bytes() == PAYLOAD


def test_download_checksum_mismatch_leaves_no_file(server: Server, tmp_path: Path) -> None:
    server.routes["/file.bin"] = ("application/octet-stream", PAYLOAD)
    dest = tmp_path / "dl" / "file.bin"
    with pytest.raises(DataError) as info:
        download(f"{server.url}/file.bin", dest, expected_sha256="0" * 64, quiet=True)
    text = one_line(info)
    assert "checksum" in text and PAYLOAD_SHA in text and "/file.bin" in text
    assert not dest.exists()
    assert leftovers(tmp_path / "dl") == []  # no .part file either


def test_download_failure_keeps_the_previous_file(server: Server, tmp_path: Path) -> None:
    server.routes["/file.bin"] = ("application/octet-stream", PAYLOAD)
    dest = tmp_path / "file.bin"
    dest.write_bytes(b"the good old copy")
    with pytest.raises(DataError):
        download(f"{server.url}/file.bin", dest, expected_sha256="0" * 64, quiet=True)
    assert dest.read_bytes() == b"the good old copy"
    assert leftovers(tmp_path) == [dest]


def test_download_from_an_unreachable_server_is_one_line(tmp_path: Path) -> None:
    url = closed_port_url()
    with pytest.raises(HarlabError) as info:
        download(url, tmp_path / "file.zip", quiet=True)
    text = one_line(info)
    assert text.startswith(f"{url}: download failed")
    assert leftovers(tmp_path) == []


def test_download_http_error_is_one_line(server: Server, tmp_path: Path) -> None:
    with pytest.raises(HarlabError) as info:
        download(f"{server.url}/missing.zip", tmp_path / "missing.zip", quiet=True)
    text = one_line(info)
    assert "/missing.zip: download failed" in text and "Not Found" in text
    assert leftovers(tmp_path) == []


def test_download_cut_short_is_an_error(server: Server, tmp_path: Path) -> None:
    """The server promises more bytes than it sends, then closes: not a complete download."""
    def short(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(PAYLOAD)))
        handler.end_headers()
        handler.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
        handler.close_connection = True

    server.routes["/short.zip"] = short
    with pytest.raises(HarlabError) as info:
        download(f"{server.url}/short.zip", tmp_path / "short.zip", quiet=True)
    assert "/short.zip: download failed" in one_line(info)
    assert leftovers(tmp_path) == []


def test_download_with_a_broken_chunked_response_is_one_line(server: Server, tmp_path: Path) -> None:
    def broken_chunks(handler: BaseHTTPRequestHandler) -> None:
        handler.protocol_version = "HTTP/1.1"
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        handler.wfile.write(b"400\r\n" + b"x" * 100)  # a 1024-byte chunk cut after 100 bytes
        handler.close_connection = True

    server.routes["/chunked.zip"] = broken_chunks
    with pytest.raises(HarlabError) as info:
        download(f"{server.url}/chunked.zip", tmp_path / "chunked.zip", quiet=True)
    assert "/chunked.zip: download failed" in one_line(info)
    assert leftovers(tmp_path) == []


# --- the package index as a mirror ------------------------------------------------------------------------


def json_index(files: list[dict]) -> tuple[str, bytes]:
    body = {"meta": {"api-version": "1.1"}, "name": "tutorial-data-set", "files": files}
    return JSON_TYPE, json.dumps(body).encode()


def html_index(anchors: list[tuple[str, str]]) -> tuple[str, bytes]:
    links = "\n".join(f'    <a href="{href}">{text}</a><br/>' for href, text in anchors)
    page = f"<!DOCTYPE html>\n<html>\n  <body>\n    <h1>Links for tutorial-data-set</h1>\n{links}\n  </body>\n</html>\n"
    return "text/html; charset=utf-8", page.encode()


def use_indexes(monkeypatch: pytest.MonkeyPatch, *urls: str) -> None:
    monkeypatch.setattr(fetch, "pip_index_urls", lambda: list(urls))


def test_fetch_from_a_json_index(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server.routes["/files/ab/tutorial-data-set-0.1.tar.gz"] = ("application/octet-stream", PAYLOAD)
    server.routes["/simple/tutorial-data-set/"] = json_index([
        {"filename": "tutorial-data-set-0.0.tar.gz", "url": "../../files/aa/tutorial-data-set-0.0.tar.gz",
         "hashes": {"sha256": "1" * 64}},
        {"filename": FILENAME, "url": "../../files/ab/tutorial-data-set-0.1.tar.gz",
         "hashes": {"sha256": PAYLOAD_SHA}},
    ])
    use_indexes(monkeypatch, f"{server.url}/simple")
    dest = tmp_path / "cache" / FILENAME
    assert fetch_from_index(PROJECT, FILENAME, PAYLOAD_SHA, dest, quiet=True) == dest
    assert dest.read_bytes() == PAYLOAD
    page_request = server.requests[0]
    assert page_request[0] == "/simple/tutorial-data-set/" and JSON_TYPE in page_request[1]


def test_fetch_from_an_html_index(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server.routes["/packages/tutorial-data-set-0.1.tar.gz"] = ("application/octet-stream", PAYLOAD)
    server.routes["/simple/tutorial-data-set/"] = html_index([
        ("/packages/tutorial-data-set-0.0.tar.gz#sha256=" + "1" * 64, "tutorial-data-set-0.0.tar.gz"),
        (f"../../packages/{FILENAME}#sha256={PAYLOAD_SHA}", FILENAME),
    ])
    files = list_index_files(f"{server.url}/simple/", PROJECT)
    assert [(f.filename, f.sha256) for f in files] == [("tutorial-data-set-0.0.tar.gz", "1" * 64),
                                                       (FILENAME, PAYLOAD_SHA)]
    assert files[1].url == f"{server.url}/packages/{FILENAME}"

    use_indexes(monkeypatch, f"{server.url}/simple")
    dest = tmp_path / FILENAME
    fetch_from_index(PROJECT, FILENAME, PAYLOAD_SHA, dest, quiet=True)
    assert dest.read_bytes() == PAYLOAD


def test_pip_index_url_from_the_environment(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server.routes[f"/packages/{FILENAME}"] = ("application/octet-stream", PAYLOAD)
    server.routes["/simple/tutorial-data-set/"] = html_index([(f"/packages/{FILENAME}#sha256={PAYLOAD_SHA}",
                                                               FILENAME)])
    monkeypatch.setenv("PIP_INDEX_URL", f"{server.url}/simple")
    assert fetch.pip_index_urls()[0] == f"{server.url}/simple"
    dest = tmp_path / FILENAME
    fetch_from_index(PROJECT, FILENAME, PAYLOAD_SHA, dest, quiet=True)
    assert dest.read_bytes() == PAYLOAD


def test_index_listing_another_sha256_is_refused(server: Server, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    other = "f" * 64
    server.routes[f"/packages/{FILENAME}"] = ("application/octet-stream", PAYLOAD)
    server.routes["/simple/tutorial-data-set/"] = json_index([
        {"filename": FILENAME, "url": f"/packages/{FILENAME}", "hashes": {"sha256": other}}])
    use_indexes(monkeypatch, f"{server.url}/simple")
    dest = tmp_path / FILENAME
    with pytest.raises(HarlabError) as info:
        fetch_from_index(PROJECT, FILENAME, PAYLOAD_SHA, dest, quiet=True)
    text = one_line(info)
    assert f"lists sha256 {other}" in text and f"expected {PAYLOAD_SHA}" in text
    assert not dest.exists()
    assert f"/packages/{FILENAME}" not in [path for path, _ in server.requests]  # never downloaded


def test_index_file_with_another_content_is_refused(server: Server, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """An index that lists no hash still cannot hand over a different file."""
    server.routes[f"/packages/{FILENAME}"] = ("application/octet-stream", b"something else")
    server.routes["/simple/tutorial-data-set/"] = html_index([(f"/packages/{FILENAME}", FILENAME)])
    use_indexes(monkeypatch, f"{server.url}/simple")
    dest = tmp_path / FILENAME
    with pytest.raises(DataError, match="checksum"):
        fetch_from_index(PROJECT, FILENAME, PAYLOAD_SHA, dest, quiet=True)
    assert leftovers(tmp_path) == []


def test_index_without_the_file_and_unreachable_index(server: Server, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    server.routes["/simple/tutorial-data-set/"] = json_index([])
    unreachable = closed_port_url().rsplit("/", 1)[0] + "/simple"
    use_indexes(monkeypatch, unreachable, f"{server.url}/simple", f"{server.url}/other-simple")
    with pytest.raises(HarlabError) as info:
        fetch_from_index(PROJECT, FILENAME, PAYLOAD_SHA, tmp_path / FILENAME, quiet=True)
    text = one_line(info)
    assert text.startswith(f"{PROJECT} {FILENAME} could not be fetched")
    assert f"{server.url}/simple: no file {FILENAME}" in text
    assert unreachable in text and f"{server.url}/other-simple" in text
    assert leftovers(tmp_path) == []


def test_falls_through_to_the_next_index(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server.routes[f"/packages/{FILENAME}"] = ("application/octet-stream", PAYLOAD)
    server.routes["/good/tutorial-data-set/"] = json_index([
        {"filename": FILENAME, "url": f"{server.url}/packages/{FILENAME}", "hashes": {"sha256": PAYLOAD_SHA}}])
    server.routes["/broken/tutorial-data-set/"] = (JSON_TYPE, b"{not json")
    use_indexes(monkeypatch, closed_port_url(), f"{server.url}/broken", f"{server.url}/good")
    dest = tmp_path / FILENAME
    fetch_from_index(PROJECT, FILENAME, PAYLOAD_SHA, dest, quiet=True)
    assert dest.read_bytes() == PAYLOAD


# --- safe_extract_zip and FileTree ---------------------------------------------------------------------------


def make_zip(path: Path, entries: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return path


def symlink_entry(name: str, points_to: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix, so the mode bits are honoured
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, points_to.encode()


def test_safe_extract_zip(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "ok.zip", [("top/", b""), ("top/a.txt", b"alpha"), ("top/sub/b.txt", b"beta" * 999),
                                             ("c.txt", b"")])
    target = tmp_path / "out"
    assert safe_extract_zip(archive, target) == target
    assert (target / "top" / "a.txt").read_bytes() == b"alpha"
    assert (target / "top" / "sub" / "b.txt").read_bytes() == b"beta" * 999
    assert (target / "c.txt").read_bytes() == b""


@pytest.mark.parametrize("evil", ["../evil.txt", "/abs.txt", "a/../../b.txt", "ok/../../../c.txt", "..\\d.txt",
                                  "C:/e.txt"])
def test_escaping_entries_are_refused(tmp_path: Path, evil: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    archive = make_zip(tmp_path / "evil.zip", [("fine.txt", b"fine"), (evil, b"pwned")])
    target = work / "inside" / "out"
    with pytest.raises(DataError) as info:
        safe_extract_zip(archive, target)
    text = one_line(info)
    assert str(archive) in text and repr(evil) in text
    assert leftovers(work) == []  # nothing at all is written, inside or outside the target
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.zip", "work"]
    assert not Path("/abs.txt").exists()


def test_symbolic_link_entries_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    archive = make_zip(tmp_path / "link.zip", [("fine.txt", b"fine"), symlink_entry("link", "../outside.txt"),
                                               ("link2/x.txt", b"through the link")])
    target = tmp_path / "out"
    with pytest.raises(DataError) as info:
        safe_extract_zip(archive, target)
    assert "symbolic link" in one_line(info) and "'link'" in str(info.value)
    assert not os.path.lexists(target / "link")
    assert leftovers(target) == []
    assert outside.read_text() == "secret"


def real_zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(5):
            zf.writestr(f"folder/file{i}.txt", os.urandom(2000).hex())
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["truncated", "corrupt", "empty", "missing"])
def test_unreadable_archives(tmp_path: Path, kind: str) -> None:
    archive = tmp_path / f"{kind}.zip"
    data = real_zip_bytes()
    if kind == "truncated":
        archive.write_bytes(data[: len(data) // 2])
    elif kind == "corrupt":
        archive.write_bytes(os.urandom(4096))
    elif kind == "empty":
        archive.write_bytes(b"")
    target = tmp_path / "out"
    with pytest.raises(DataError) as info:
        safe_extract_zip(archive, target)
    assert one_line(info).startswith(f"{archive}: ")
    assert leftovers(target) == []


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_corrupt_entry_data_is_a_data_error(tmp_path: Path, compression: int) -> None:
    """The directory is intact but an entry's bytes are damaged (bad CRC, or undecodable deflate data)."""
    payload = b"0123456789" * 500
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as zf:
        zf.writestr("a.txt", payload)
        info = zf.getinfo("a.txt")
    data = bytearray(buffer.getvalue())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + 5] ^= 0xFF
    archive = tmp_path / "damaged.zip"
    archive.write_bytes(bytes(data))
    with pytest.raises(DataError) as exc:
        safe_extract_zip(archive, tmp_path / "out")
    assert one_line(exc).startswith(f"{archive}: ")
    with pytest.raises(DataError) as exc:
        FileTree.open(archive).read("a.txt")
    assert one_line(exc).startswith(f"{archive / 'a.txt'}: cannot read")


def test_file_tree_refuses_an_escaping_entry(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "evil.zip", [("UCI HAR Dataset/train/y_train.txt", b"1\n"),
                                               ("../../etc/evil.txt", b"x")])
    with pytest.raises(DataError) as info:
        FileTree.open(archive)
    assert str(archive) in one_line(info) and "../../etc/evil.txt" in str(info.value)


def test_file_tree_refuses_an_escaping_entry_in_an_inner_zip(tmp_path: Path) -> None:
    inner = make_zip(tmp_path / "inner.zip", [("data/labels.txt", b"1 1 1 0 10\n"), ("/etc/evil.txt", b"x")])
    outer = make_zip(tmp_path / "outer.zip", [("inner.zip", inner.read_bytes())])
    tree = FileTree.open(outer)
    with pytest.raises(DataError) as info:
        tree.descend("labels.txt")
    assert "inner.zip" in one_line(info) and "/etc/evil.txt" in str(info.value)


def test_file_tree_reads_nested_zips(tmp_path: Path) -> None:
    inner = make_zip(tmp_path / "inner.zip", [("data/labels.txt", b"1 1 1 0 10\n")])
    outer = make_zip(tmp_path / "outer.zip", [("__MACOSX/._inner.zip", b"junk"), ("inner.zip", inner.read_bytes())])
    tree = FileTree.open(outer).descend("labels.txt")
    assert tree.read("data/labels.txt") == b"1 1 1 0 10\n"
    assert tree.identity == hashlib.sha256(inner.read_bytes()).hexdigest()
    assert tree.where("data/labels.txt") == outer / "inner.zip" / "data" / "labels.txt"
