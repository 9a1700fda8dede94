"""`harlab serve` end to end, against a server started as a user starts it (a subprocess on a free local port): a
real HAPT test subject's recording replayed fast while headless Chromium watches the live page, which must show
`harlab predict`'s activities; a span relabelled through the review page's controls and saved as an interval file
that `harlab data import --labels` reads; and the faults a server meets (broken, NaN and oversized batches, a
client gone mid-batch, a 100 MB upload, paths outside the folder, missing or wrong tokens), each refused in one
line with the server still serving.

HARLAB_SCREENSHOTS=docs/img makes the page test save the screenshots the docs show (else they go to a temporary
folder). Chromium is Debian's (/usr/lib/chromium/chromium, or $HARLAB_CHROMIUM); without it the test fails."""

from __future__ import annotations

import http.client
import json
import os
import re
import select
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_pretrained import _recording
from typer.testing import CliRunner

from harlab.cli import app
from harlab.data.intervals import read_intervals
from harlab.deploy.predict import open_model, predict_file, timeline, timeline_agreement
from harlab.errors import HarlabError

CHROMIUM = Path(os.environ.get("HARLAB_CHROMIUM", "/usr/lib/chromium/chromium"))
TOKEN = "serve-test-token-0123456789"
MAX_UPLOAD_MB = 5
RATE = 50.0
CLASSES = ("WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING")
G = 9.80665


@dataclass
class Server:
    """A `harlab serve` process and what a client needs to talk to it."""

    process: subprocess.Popen[str]
    url: str
    port: int
    folder: Path

    def request(self, method: str, path: str, body: bytes | None = None, *, token: str | None = TOKEN,
                headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """(status, decoded JSON body) of one request."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        sent = {"Content-Type": "application/json", **(headers or {})}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        data = response.read()
        connection.close()
        return response.status, json.loads(data) if data else None

    def push(self, stream: str, batch: dict[str, Any] | bytes) -> tuple[int, Any]:
        body = batch if isinstance(batch, bytes) else json.dumps(batch).encode()
        return self.request("POST", f"/api/push?stream={stream}", body)

    def serving(self) -> bool:
        return self.process.poll() is None and self.request("GET", "/api/health")[0] == 200

    def rss(self) -> int:
        """The server process's resident memory in bytes."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status)[1]) * 1024

    def snapshot(self, stream: str) -> dict[str, Any]:
        """The first event a page watching `stream` gets: its windows and latest signals."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        connection.request("GET", f"/api/live/events?stream={stream}", headers={"Authorization": f"Bearer {TOKEN}"})
        line = connection.getresponse().readline()
        connection.close()
        return json.loads(line.decode().removeprefix("data: "))


@pytest.fixture(scope="module")
def recording(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """A HAPT test subject's experiment as a CSV in the folder served, and its frame (with the true activities)."""
    folder = tmp_path_factory.mktemp("served")
    return folder / "rec.csv", _recording(real_data, folder / "rec.csv")


@pytest.fixture(scope="module")
def server(recording: tuple[Path, pd.DataFrame]) -> Iterator[Server]:
    """`harlab serve` with a token, on a free port, replaying the recording at 100× (no smoothing: the windows
    compare one to one with harlab predict's)."""
    path, _ = recording
    process = subprocess.Popen([sys.executable, "-m", "harlab", "serve", "pretrained:hapt-resnet1d", "--port", "0",
                                "--token", TOKEN, "--folder", str(path.parent), "--replay", str(path), "--speed", "100",
                                "--smoothing", "1", "--max-upload-mb", str(MAX_UPLOAD_MB)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert process.stdout is not None
    line = process.stdout.readline()
    found = re.search(r"http://127\.0\.0\.1:(\d+)/\?token=\S+", line)
    if found is None:
        process.kill()
        pytest.fail(f"harlab serve did not print its URL: {line}{process.stdout.read()}", pytrace=False)
    yield Server(process, found[0], int(found[1]), path.parent)
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[test]'", pytrace=False)
    if not CHROMIUM.is_file():
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install chromium, or set HARLAB_CHROMIUM", pytrace=False)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM),  # flags for containers: small /dev/shm
                                               args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])
        yield launched
        launched.close()


def _sample_labels(segments: pd.DataFrame, samples: int) -> np.ndarray:
    """Each sample's activity in a timeline (None where no segment covers it)."""
    times = np.arange(samples) / RATE
    labels = np.full(samples, None, dtype=object)
    for start, end, activity in segments[["start", "end", "activity"]].itertuples(index=False):
        labels[(times >= start) & (times < end)] = activity
    return labels


def _screenshot(page: Any, name: str, tmp_path: Path) -> None:
    folder = Path(os.environ.get("HARLAB_SCREENSHOTS") or tmp_path)
    page.screenshot(path=str(folder / name))


def test_live_page_shows_predicts_activities_and_review_saves_a_relabelled_span(
        server: Server, recording: tuple[Path, pd.DataFrame], browser: Any, tmp_path: Path) -> None:
    path, frame = recording
    model = open_model(Path("pretrained:hapt-resnet1d"))
    expected = predict_file(model, path, smoothing=1)
    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server.url + "#live")
    page.wait_for_function("document.getElementById('live-status').textContent.includes('replay finished')",
                           timeout=120_000)
    assert page.text_content("#live-status") == f"replay: {len(expected)} windows, replay finished"
    rows = page.eval_on_selector_all("#live-segments tbody tr", "rows => rows.map(r => ({...r.dataset}))")
    shown = pd.DataFrame(rows).astype({"start": float, "end": float})
    agreement, compared = timeline_agreement(shown, _sample_labels(timeline(expected), len(frame)), RATE,
                                             model.classes)
    assert agreement > 0.98 and compared > 0.95 * len(frame), (agreement, compared)
    assert page.text_content("#current-activity") == expected["activity"].iloc[-1]
    assert re.fullmatch(r"\d+ %", page.text_content("#current-confidence"))
    _screenshot(page, "serve-live.png", tmp_path)

    page.goto(server.url + "#review")
    page.select_option("#review-recording", "rec.csv")
    page.click("#review-open")
    page.wait_for_function("document.getElementById('review-status').textContent.includes('windows')")
    box = page.locator("#review-plot").bounding_box()
    page.mouse.move(box["x"] + 0.3 * box["width"], box["y"] + 80)
    page.mouse.down()
    page.mouse.move(box["x"] + 0.4 * box["width"], box["y"] + 80, steps=8)
    page.mouse.up()
    start, end = float(page.input_value("#span-start")), float(page.input_value("#span-end"))
    assert 0.25 * len(frame) / RATE < start < end < 0.45 * len(frame) / RATE
    near = expected[(expected["end"] > start - 5) & (expected["start"] < end + 5)]["activity"]
    label = next(c for c in model.classes if c not in set(near))  # one the model did not predict there
    page.select_option("#span-label", label)
    page.click("#span-set")
    page.click("#labels-save")
    page.wait_for_function("document.getElementById('review-status').textContent.startsWith('saved')")
    assert page.text_content("#review-status").startswith("saved rec.labels.csv (")
    _screenshot(page, "serve-review.png", tmp_path)
    assert not errors, errors

    intervals = read_intervals([server.folder / "rec.labels.csv"], ["rec"])["rec"]
    relabelled = [i for i in intervals if i.label == label and i.end > start - 5 and i.start < end + 5]
    assert [(i.start, i.end) for i in relabelled] == [(pytest.approx(start, abs=0.011), pytest.approx(end, abs=0.011))]
    kept = _sample_labels(pd.DataFrame([(i.start, i.end, i.label) for i in intervals],
                                       columns=["start", "end", "activity"]), len(frame))
    outside = (np.arange(len(frame)) / RATE < start) | (np.arange(len(frame)) / RATE >= end)
    predicted = _sample_labels(timeline(expected), len(frame))
    assert np.mean(kept[outside] == predicted[outside]) > 0.99  # the rest is the model's timeline
    imported = CliRunner().invoke(app, ["data", "import", str(path), "--labels", str(server.folder / "rec.labels.csv"),
                                        "--pipeline", "uci-har", "--rate", "50", "--out", str(tmp_path / "dataset")])
    assert imported.exit_code == 0, imported.output
    assert label in json.loads((tmp_path / "dataset" / "dataset.json").read_text())["classes"]


def _batch(frame: pd.DataFrame, rows: slice) -> dict[str, Any]:
    part = frame.iloc[rows]
    return {"time": part["time"].tolist(), **{c: part[c].tolist() for c in part.columns if c[:3] in ("acc", "gyr")}}


def _hang_up_mid_request(server: Server, head: str, body: bytes) -> None:
    """Send a request's head and the start of its body, then hang up."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as client:
        client.sendall(head.encode() + body)


def _send_until_answered(server: Server, head: str, chunk: bytes, most: int) -> tuple[int, Any, int]:
    """Send a request's head, then `chunk` after `chunk` of its body until the server answers (or `most` bytes are
    sent): the answer's status and JSON body, and the body bytes sent."""
    sent = 0
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as client:
        client.sendall(head.encode())
        while sent < most and not select.select([client], [], [], 0)[0]:
            try:
                client.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        answer = http.client.HTTPResponse(client)
        answer.begin()
        return answer.status, json.loads(answer.read()), sent


def test_faults_are_refused_in_one_line_and_the_stream_and_server_go_on(
        server: Server, recording: tuple[Path, pd.DataFrame]) -> None:
    path, frame = recording
    frame = frame[["time", "acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]]
    status, data = server.push("faults", _batch(frame, slice(0, 150)))
    assert status == 200 and data["samples"] == 150 and data["windows"] == 1 and data["activity"] in CLASSES
    refusals = {
        "malformed JSON": (b'{"time": [1, 2', 400, r"the batch is not valid JSON \(.*\); send one JSON object .*"),
        "NaN batch": (json.dumps({**_batch(frame, slice(150, 200)), "acc_x": [float("nan")] * 50}).encode(), 422,
                      r"acc_x: 50 of 50 values are NaN or infinite; send only finite numbers .*"),
        "a missing channel": (json.dumps({"time": [9.0], "acc_x": [1.0]}).encode(), 422,
                              r"the batch has no acc_y, acc_z, gyro_x, gyro_y, gyro_z: the model reads .*"),
        "oversized batch": (b"[" + b"0," * 600_000 + b"0]", 413, r"a batch of 1,200,\d+ bytes is over the limit .*"),
    }
    for what, (body, status, message) in refusals.items():
        answered, data = server.push("faults", body)
        assert answered == status and re.fullmatch(message, data["error"]), (what, answered, data)
        assert server.serving(), what
    head = (f"POST /api/push?stream=faults HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Content-Type: application/json\r\nContent-Length: 50000\r\n\r\n")
    _hang_up_mid_request(server, head, json.dumps(_batch(frame, slice(150, 300))).encode()[:3000])
    assert server.serving()
    status, data = server.push("faults", _batch(frame, slice(150, 300)))  # the stream goes on where it was
    assert status == 200 and data["windows"] == 2
    assert next(s for s in server.request("GET", "/api/live")[1] if s["name"] == "faults")["windows"] == 3

    before = server.rss()
    head = (f"PUT /api/recordings?name=big.csv HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Length: {100 * 10**6}\r\n\r\n")
    status, data, sent = _send_until_answered(server, head, b"0" * 2**16, 100 * 10**6)
    assert status == 413 and data["error"].startswith("the upload of 100,000,000 bytes is over the limit of "
                                                      "5,000,000; ") and sent < 30 * 10**6, (data, sent)
    chunk = b"10000\r\n" + b"1" * 2**16 + b"\r\n"  # no length given: refused once the limit is read
    status, data, sent = _send_until_answered(server, head.replace(f"Content-Length: {100 * 10**6}",
                                                                   "Transfer-Encoding: chunked"), chunk, 100 * 10**6)
    assert status == 413 and "over the limit of 5,000,000 bytes" in data["error"] and sent < 30 * 10**6, sent
    assert server.rss() - before < 20 * 2**20 and not list((server.folder / "uploads").glob("*big*"))
    small = path.read_bytes()[:50_000].rsplit(b"\n", 1)[0] + b"\n"
    assert server.request("PUT", "/api/recordings?name=small.csv", small) == (200, {"path": "uploads/small.csv",
                                                                                    "bytes": len(small)})
    assert "uploads/small.csv" in server.request("GET", "/api/recordings")[1]

    (server.folder / "outside").symlink_to("/etc")
    for place in ("../rec.csv", "/etc/passwd", "outside/passwd", "uploads/../../rec.csv"):
        status, data = server.request("GET", f"/api/review?path={place}")
        assert status == 403 and "served folder" in data["error"], (place, data)
        body = json.dumps({"path": place, "intervals": [{"start": 0, "end": 1, "label": "WALKING"}]}).encode()
        assert server.request("POST", "/api/labels", body)[0] == 403
    assert server.serving()

    for token in (None, "wrong-token-0123456789"):
        for where in ("/", "/static/app.js", "/api/health", "/api/live/events?stream=faults", "/api/recordings"):
            status, data = server.request("GET", where, token=token)
            assert status == 401 and data["error"].startswith("missing or wrong token"), (token, where)
        assert server.push("faults", _batch(frame, slice(300, 350)))[0] == 200  # with the token
    assert server.request("GET", "/api/health", headers={"Host": "harlab.example:80"})[0] == 421
    assert server.request("POST", "/api/push?stream=faults", b"{}", headers={"Content-Type": "text/plain"})[0] == 415
    assert server.serving()


def test_sensor_logger_push_streams_like_a_table(server: Server, recording: tuple[Path, pd.DataFrame]) -> None:
    """Sensor Logger's HTTP push (acceleration in m/s², time in ns since the epoch, one reading per sample and
    sensor) gives the same windows as the same samples sent as harlab batches."""
    _, frame = recording
    epoch = 1_700_000_000 * 10**9
    for first in range(0, 1500, 100):  # 30 s in 2 s messages
        part = frame.iloc[first:first + 100]
        payload = [{"name": sensor, "time": epoch + round(t * 1e9),
                    "values": {a: float(row[f"{kind}_{a}"]) * (G if kind == "acc" else 1.0) for a in "xyz"}}
                   for sensor, kind in (("totalacceleration", "acc"), ("gyroscope", "gyro"), ("location", "acc"))
                   for t, (_, row) in zip(part["time"], part.iterrows(), strict=True)]
        message = {"messageId": first // 100, "sessionId": "s", "deviceId": "d", "payload": payload}
        assert server.push("sensor-logger", message)[0] == 200
    for first in range(0, 1500, 100):
        assert server.push("table", _batch(frame, slice(first, first + 100)))[0] == 200
    logged, table = server.snapshot("sensor-logger")["windows"], server.snapshot("table")["windows"]
    assert len(logged) == len(table) == (1500 - 128) // 64 + 1
    assert [w["activity"] for w in logged] == [w["activity"] for w in table]
    np.testing.assert_allclose([w["confidence"] for w in logged], [w["confidence"] for w in table], atol=1e-3)
    assert server.push("sensor-logger", {"payload": []}) == (200, {"stream": "sensor-logger", "samples": 0,
                                                                   "windows": 0, "activity": None})


def test_serving_beyond_this_machine_needs_a_token(tmp_path: Path) -> None:
    refused = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--folder", str(tmp_path)])
    assert isinstance(refused.exception, HarlabError)
    assert str(refused.exception) == ("--host 0.0.0.0 is reachable from other machines: give a token (pass --token "
                                      "SECRET, at least 16 characters) that every request must carry, or serve on "
                                      "127.0.0.1")
    short = CliRunner().invoke(app, ["serve", "--token", "short", "--folder", str(tmp_path)])
    assert "shorter than 16 characters" in str(short.exception)


def test_streams_resample_each_channel_and_restart_after_a_gap() -> None:
    """Channels at their own rates and times meet on the model's 50 Hz grid; repeated or late samples are left
    out; a pause longer than 0.5 s restarts the grid there, the timeline going on after the pause."""
    from harlab.serve.batches import Batch
    from harlab.serve.live import LiveStream

    model = open_model(Path("pretrained:hapt-resnet1d"))
    names = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
    stream = LiveStream("test", model, 1)

    def batch(start: float, seconds: float) -> Batch:
        acc_t = start + np.arange(int(seconds * 100)) / 100  # acc at 100 Hz, gyro at 50 Hz 3 ms later
        gyro_t = start + 0.003 + np.arange(int(seconds * 50)) / 50
        channels = {n: (acc_t, np.sin(acc_t) + (1.0 if n == "acc_y" else 0.0)) for n in names[:3]}
        return Batch(channels | {n: (gyro_t, np.cos(gyro_t)) for n in names[3:]})

    events = stream.add(batch(0.0, 4.0))
    signals = events[0]  # from the first moment both sensors give (0.003 s: time 0 of the stream), at 25 Hz
    assert signals["times"][0] == 0.0 and np.allclose(np.diff(signals["times"]), 0.04)
    np.testing.assert_allclose([v[0] for v in signals["values"]], np.sin(0.003 + np.array(signals["times"])),
                               atol=1e-3)
    np.testing.assert_allclose([v[3] for v in signals["values"]], np.cos(0.003 + np.array(signals["times"])),
                               atol=1e-3)
    assert [e["start"] for e in events[1:]] == [0.0, 1.28]  # 199 grid samples: 2 windows
    assert stream.add(batch(2.0, 1.0)) == [] and stream.summary()["ignored"] == 3 * 100 + 3 * 50  # all repeats
    later = stream.add(batch(10.0, 4.0))  # after a 6 s pause: a new grid from 10.003 s
    assert later[0]["times"][0] == 10.0 and [e["start"] for e in later[1:]] == [10.0, 11.28]
    assert [w["start"] for w in stream.windows] == [0.0, 1.28, 10.0, 11.28]
