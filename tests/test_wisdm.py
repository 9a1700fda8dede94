"""WISDM v1.1: the raw file's quirks parsed and reported, windows only inside continuous stretches, the
archive read in place and trusted on first download, clear errors, and wisdm_cnn trained on it end to end."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from harlab.api import run_training
from harlab.cli import app
from harlab.data import wisdm
from harlab.data.datasets import load_dataset
from harlab.data.wisdm import (
    BAD_NUMBER,
    CLASSES,
    EMPTY_FIELD,
    UNKNOWN_ACTIVITY,
    WRONG_FIELD_COUNT,
    ZERO_TIMESTAMP,
    make_windows,
    parse_raw,
)
from harlab.errors import DataError, HarlabError
from harlab.experiments.spec import ExperimentSpec
from harlab.training.settings import RepeatConfig

SAMPLE_NS = 50_000_000  # 20 Hz
# How consecutive records are laid out, in turn: `;`-terminated, three on a line with an empty record between,
# a trailing `,` before the `;`, no `;` at all, and a record followed by a blank line.
LAYOUTS = ("{};", "{};{};;{};", "{},;", "{}", "{};\n   ")


class RawWriter:
    """A WISDM raw file built record by record, remembering what the parser must make of it: the stretches
    (every valid sample has x = its stretch's number, y = its position in the stretch, z = its class index,
    so a window that crosses a stretch, or starts where it should not, shows in its values) and the skips."""

    def __init__(self) -> None:
        self.clock = 1_000_000_000_000
        self.records: list[tuple[str, str | None]] = []  # (text, why it is skipped, or None)
        self.stretches: list[tuple[int, list[str]]] = []  # (user, activity of every sample)

    def stretch(self, user: int, *runs: tuple[str, int] | int) -> None:
        """One continuous stretch of (activity, samples) runs; an int between runs is a pause in ns."""
        number, activities = len(self.stretches) + 1, []
        for run in runs:
            if isinstance(run, int):
                self.clock += run
                continue
            activity, samples = run
            for _ in range(samples):
                position = len(activities)
                self.records.append((f"{user},{activity},{self.clock},{number}.0,{position},"
                                     f"{CLASSES.index(activity)}.000", None))
                activities.append(activity)
                self.clock += SAMPLE_NS
        self.stretches.append((user, activities))

    def bad(self, why: str, template: str) -> None:
        """A record the parser must skip for reason `why`; `{t}` in it is the current timestamp."""
        self.records.append((template.format(t=self.clock), why))
        self.clock += SAMPLE_NS

    def jump(self, ns: int) -> None:
        self.clock += ns

    def render(self) -> tuple[str, list[tuple[int, str]]]:
        """The file's text, and each record's (line number, text as it appears between separators)."""
        lines: list[str] = []
        where: list[tuple[int, str]] = []
        i = 0
        while i < len(self.records):
            layout = LAYOUTS[len(lines) % len(LAYOUTS)]
            texts = [text for text, _ in self.records[i:i + layout.count("{}")]]
            i += len(texts)
            if len(texts) < layout.count("{}"):
                layout = "{};" * len(texts)
            where += [(len(lines) + 1, text + ("," if layout == "{},;" else "")) for text in texts]
            lines += layout.format(*texts).split("\n")
        return "\n".join(lines) + "\n", where

    def text(self) -> str:
        return self.render()[0]

    def expected_skips(self) -> tuple[dict[str, int], dict[str, list[tuple[int, str]]]]:
        _, where = self.render()
        skipped = [(why, place) for (_, why), place in zip(self.records, where, strict=True) if why]
        counts = Counter(why for why, _ in skipped)
        examples = {why: [place for w, place in skipped if w == why][:3] for why in counts}
        return dict(counts), examples

    def expected_windows(self, window: int, step: int) -> list[tuple[int, int, int, int]]:
        """(user, stretch, first position, label) of every window, in file order; a label is the window's most
        frequent activity, a tie going to the class first in CLASSES."""
        out = []
        for number, (user, activities) in enumerate(self.stretches, start=1):
            for start in range(0, len(activities) - window + 1, step):
                counts = Counter(activities[start:start + window])
                label = max(range(len(CLASSES)), key=lambda c: (counts[CLASSES[c]], -c))
                out.append((user, number, start, label))
        return out


def quirky_writer() -> RawWriter:
    """Every quirk of the real file, around stretches short enough to count windows (8 samples, step 4) by hand."""
    w = RawWriter()
    w.stretch(1, ("Walking", 12), ("Jogging", 8))  # 4 windows; [8, 16) is a 4/4 tie: Walking
    w.bad(ZERO_TIMESTAMP, "1,Jogging,0,0.0,0.0,0.0")
    w.stretch(1, ("Upstairs", 10))
    w.jump(2_000_000_000)  # a 2 s gap
    w.stretch(1, ("Downstairs", 9))
    w.jump(-10_000_000_000)  # the clock jumps back
    w.stretch(1, ("Standing", 8), ("Walking", 5))  # [4, 12) is a tie: Walking, not the first sample's Standing
    w.bad(WRONG_FIELD_COUNT, "1,Walking,{t},1.0,2.0")
    w.stretch(1, ("Jogging", 8))
    w.stretch(2, ("Walking", 8), 900_000_000, ("Jogging", 8))  # only the user changes; a 0.95 s step is no gap
    w.bad(EMPTY_FIELD, "2,Jogging,,1.0,2.0,3.0")  # a missing timestamp
    w.stretch(2, ("Upstairs", 8))
    w.bad(BAD_NUMBER, "2,Upstairs,{t},abc,2.0,3.0")
    w.stretch(2, ("Downstairs", 5))  # shorter than a window
    w.bad(UNKNOWN_ACTIVITY, "2,Running,{t},1.0,2.0,3.0")
    w.stretch(2, ("Sitting", 8), ("Standing", 4))
    for _ in range(3):
        w.bad(ZERO_TIMESTAMP, "2,Standing,0,1.0,2.0,3.0")
    w.bad(WRONG_FIELD_COUNT, "2,Standing,{t},1.0,2.0,3.0,4.0")
    w.bad(EMPTY_FIELD, "2,Standing,{t},1.0,,3.0")
    w.bad(BAD_NUMBER, "2.5,Standing,{t},1.0,2.0,3.0")
    w.stretch(29, ("Sitting", 8), ("Jogging", 2))
    w.stretch(30, ("Standing", 12))
    return w


def training_writer(users: tuple[int, ...] = (1, 2, 3, 4, 5, 29, 30), samples: int = 60) -> RawWriter:
    """Every user does all six activities, `samples` each, in one stretch (user 3's is cut by a zero timestamp)."""
    w = RawWriter()
    for user in users:
        runs = [(activity, samples) for activity in CLASSES]
        if user == 3:
            w.stretch(user, *runs[:3])
            w.bad(ZERO_TIMESTAMP, "3,Downstairs,0,1.0,2.0,3.0")
            runs = runs[3:]
        w.stretch(user, *runs)
    return w


def tar_gz(files: dict[str, str]) -> bytes:
    """A .tar.gz holding `files` (name → text)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def official_archive(text: str) -> bytes:
    return tar_gz({f"{wisdm.FOLDER}/readme.txt": "WISDM v1.1\n", f"{wisdm.FOLDER}/{wisdm.RAW_MEMBER}": text})


def check_windows(X: np.ndarray, y: np.ndarray, subject: np.ndarray, writer: RawWriter, window: int,
                  step: int) -> None:
    """The windows are exactly the writer's: none crosses a stretch, each starts where it should, right label."""
    assert X.dtype == np.float32 and y.dtype == np.int64 and X.shape[1:] == (window, 3)
    assert (X[:, :, 0] == X[:, :1, 0]).all(), "a window crosses a user, a skipped record or a gap"
    starts = X[:, 0, 1].astype(int)
    assert (X[:, :, 1] == starts[:, None] + np.arange(window)).all(), "a window skips or repeats samples"
    got = list(zip(subject.tolist(), X[:, 0, 0].astype(int).tolist(), starts.tolist(), y.tolist(), strict=True))
    assert got == writer.expected_windows(window, step)


# --- parsing and windowing ------------------------------------------------------------------------------------


def test_the_raw_files_quirks_are_parsed_and_every_skip_reported() -> None:
    writer = quirky_writer()
    records, skips = parse_raw(writer.text(), "raw.txt")
    counts, examples = writer.expected_skips()
    assert counts == {ZERO_TIMESTAMP: 4, WRONG_FIELD_COUNT: 2, EMPTY_FIELD: 2, BAD_NUMBER: 2, UNKNOWN_ACTIVITY: 1}
    assert skips.counts == counts and skips.examples == examples  # line numbers and texts; 3 examples at most
    assert len(skips.examples[ZERO_TIMESTAMP]) == 3
    valid = sum(len(activities) for _, activities in writer.stretches)
    assert len(records) == valid and skips.total_records == valid + sum(counts.values())
    assert records.xyz.dtype == np.float32 and records.xyz.shape == (valid, 3)
    assert sorted(set(records.user.tolist())) == [1, 2, 29, 30]
    first_line, first_text = writer.expected_skips()[1][ZERO_TIMESTAMP][0]
    summary = skips.summary()
    assert summary.startswith(f"skipped 11 of {valid + 11} records (wrong field count 2, empty field 2, bad number 2, "
                              "unknown activity 1, zero timestamp 4); e.g. line ")
    assert f"line {first_line}: {first_text!r}" in summary and "\n" not in summary


def test_every_layout_quirk_is_in_the_synthetic_file() -> None:
    """The parser test above is only as good as its file: it must hold every quirk of the real one."""
    text = quirky_writer().text()
    lines = text.split("\n")
    assert any(line.count(";") >= 3 for line in lines)  # several records on one line
    assert ";;" in text and ",;" in text  # an empty record, a trailing comma
    assert any(line and not line.endswith(";") and line.strip() for line in lines)  # no `;` at all
    assert any(not line.strip() for line in lines[:-1])  # blank lines
    assert ",," in text and ",0," in text and "Running" in text and "abc" in text


def test_windows_stay_inside_stretches_with_majority_labels() -> None:
    writer = quirky_writer()
    records, _ = parse_raw(writer.text(), "raw.txt")
    X, y, subject = make_windows(records, window=8, step=4, source="raw.txt")
    check_windows(X, y, subject, writer, 8, 4)
    assert len(X) == 4 + 1 + 1 + 2 + 1 + 3 + 1 + 0 + 2 + 1 + 2
    ties = (X[:, 0, 0] == 1) & (X[:, 0, 1] == 8) | (X[:, 0, 0] == 4) & (X[:, 0, 1] == 4)  # 4 and 4 samples
    assert y[ties].tolist() == [CLASSES.index("Walking")] * 2
    X2, _, _ = make_windows(records, window=6, step=3, source="raw.txt")
    assert len(X2) == len(writer.expected_windows(6, 3))


def test_a_stretch_ends_at_a_gap_over_one_second_not_below() -> None:
    for pause, stretches in ((950_000_000, 1), (951_000_000, 2)):  # steps of 1.0 s and 1.001 s
        text = "".join(f"7,Walking,{t},1,2,3;\n" for t in (1, SAMPLE_NS + 1, 2 * SAMPLE_NS + 1 + pause))
        records, _ = parse_raw(text, "raw.txt")
        assert len(wisdm.stretches(records)[0]) == stretches


# --- loading: local copies, the cache, the download trusted on first use --------------------------------------


@pytest.fixture
def said(notices: list[str]) -> list[str]:
    """What the loader tells the user."""
    return notices


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("HARLAB_CACHE", str(folder))
    return folder


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(url: str, *args: object, **kwargs: object) -> str:
        raise HarlabError(f"{url}: download failed (network unreachable in tests)")

    monkeypatch.setattr(wisdm, "download", refuse)


LOCAL_LAYOUTS = {"archive": wisdm.ARCHIVE, "text": wisdm.RAW_MEMBER, "folder": f"{wisdm.FOLDER}/{wisdm.RAW_MEMBER}"}


@pytest.mark.parametrize("layout", LOCAL_LAYOUTS)
def test_a_local_copy_loads_through_load_dataset(layout: str, tmp_path: Path, cache: Path, said: list[str],
                                                 no_network: None) -> None:
    writer = training_writer()
    path = tmp_path / "data" / "wisdm" / LOCAL_LAYOUTS[layout]
    path.parent.mkdir(parents=True)
    path.write_bytes(official_archive(writer.text()) if layout == "archive" else writer.text().encode())
    ws = load_dataset("wisdm", data_dir=tmp_path / "data", window=80, step=40)
    check_windows(ws.X, ws.y, ws.subject, writer, 80, 40)
    assert ws.window == 80 and ws.step == 40 and ws.sampling_rate == 20.0
    assert ws.channels == ("acc_x", "acc_y", "acc_z") and ws.classes == CLASSES
    assert ws.test_subjects == tuple(range(29, 37))
    train, test = ws.split()
    assert set(train.subject.tolist()) == {1, 2, 3, 4, 5} and set(test.subject.tolist()) == {29, 30}
    p = ws.provenance
    assert (p.dataset, p.source, p.sha256) == ("wisdm", str(path), hashlib.sha256(path.read_bytes()).hexdigest())
    assert p.options["origin"] == "local" and p.options["skipped"] == {ZERO_TIMESTAMP: 1}
    assert p.options["format"] == ("archive" if layout == "archive" else "text")
    assert p.note.startswith("skipped 1 of ") and said == [f"wisdm: {p.note}"]
    # read in place: nothing extracted beside the copy, only the windows in the cache
    assert [f for f in (tmp_path / "data").rglob("*") if f.is_file()] == [path]
    assert [f.parent.name for f in cache.rglob("*") if f.is_file()] == ["windows"]
    again = load_dataset("wisdm", data_dir=tmp_path / "data")  # the defaults are 80 and 40: from the cache
    assert np.array_equal(again.X, ws.X) and again.provenance == p and len(said) == 1


def test_the_download_is_trusted_on_first_use_and_a_changed_archive_refused(cache: Path, said: list[str],
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    served = official_archive(training_writer().text())
    downloads = []

    def fake_download(url: str, dest: Path, expected_sha256: str | None = None, quiet: bool = False) -> str:
        assert url == wisdm.URL and expected_sha256 is None
        downloads.append(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(served)
        return hashlib.sha256(served).hexdigest()

    monkeypatch.setattr(wisdm, "download", fake_download)
    sha256 = hashlib.sha256(served).hexdigest()
    archive, record = cache / "wisdm" / wisdm.ARCHIVE, cache / "wisdm" / f"{wisdm.ARCHIVE}.sha256"
    ws = load_dataset("wisdm", quiet=True)
    assert downloads == [archive] and record.read_text().split()[0] == sha256
    assert ws.provenance.sha256 == sha256 and ws.provenance.options["origin"] == "official"
    assert ws.provenance.options["url"] == wisdm.URL
    assert len(load_dataset("wisdm", window=40, step=20)) > len(ws) and len(downloads) == 1  # the cached archive

    archive.write_bytes(official_archive(training_writer(samples=61).text()))  # altered since it was recorded
    with pytest.raises(DataError) as refused:
        load_dataset("wisdm")
    message = str(refused.value)
    assert str(archive) in message and str(record) in message and sha256 in message and "\n" not in message
    assert len(downloads) == 1

    record.unlink()  # an archive put in the cache by hand: trusted, and recorded, on first use
    assert load_dataset("wisdm").provenance.options["origin"] == "cache"
    assert record.read_text().split()[0] == hashlib.sha256(archive.read_bytes()).hexdigest()


def test_offline_without_a_copy_says_how_to_get_one(cache: Path, no_network: None) -> None:
    with pytest.raises(HarlabError, match="harlab data fetch wisdm"):
        load_dataset("wisdm", offline=True)
    with pytest.raises(HarlabError, match=r"wisdm could not be had: .*set data_dir=DIR"):
        load_dataset("wisdm")


# --- errors: one line naming the file, the line where there is one, and the fix -------------------------------


def write_local(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / "data" / "wisdm" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def one_line_error(tmp_path: Path, error: type[Exception] = DataError, **options: object) -> str:
    with pytest.raises(error) as info:
        load_dataset("wisdm", data_dir=tmp_path / "data", **options)
    text = str(info.value)
    assert "\n" not in text
    return text


def test_a_file_without_valid_records_is_refused(tmp_path: Path, cache: Path, no_network: None) -> None:
    path = write_local(tmp_path, wisdm.RAW_MEMBER, b"\nuser,activity,timestamp,x,y,z;\n1,Walking,0,1,2,3;\n")
    message = one_line_error(tmp_path)
    assert message.startswith(f"{path}:2: none of its 2 records is a valid") and "WISDM_ar_v1.1_raw.txt" in message
    write_local(tmp_path, wisdm.RAW_MEMBER, b"\n \n")
    assert one_line_error(tmp_path).startswith(f"{path}: no records")


def test_an_archive_without_the_raw_file_is_refused(tmp_path: Path, cache: Path, no_network: None) -> None:
    path = write_local(tmp_path, wisdm.ARCHIVE, tar_gz({"WISDM_ar_v1.1/readme.txt": "no data\n"}))
    assert one_line_error(tmp_path).startswith(f"{path}: no {wisdm.RAW_MEMBER} inside — use the official")
    path.write_bytes(official_archive(training_writer().text())[:200])
    assert "not a readable tar.gz archive" in one_line_error(tmp_path)


def test_a_window_longer_than_every_stretch_is_refused(tmp_path: Path, cache: Path, no_network: None) -> None:
    write_local(tmp_path, wisdm.RAW_MEMBER, training_writer(samples=10).text().encode())
    message = one_line_error(tmp_path, window=80)
    assert "no continuous stretch holds a window of 80 samples (the longest has 60)" in message
    assert message.endswith("lower the `window` setting")
    assert "window 1 and step 0" in one_line_error(tmp_path, HarlabError, window=1, step=0)
    assert "no option(s) ['transitions']" in one_line_error(tmp_path, HarlabError, transitions=True)


# --- the command line and training end to end -----------------------------------------------------------------


def test_data_info_shows_the_windows_and_the_split(tmp_path: Path, cache: Path, no_network: None) -> None:
    write_local(tmp_path, wisdm.ARCHIVE, official_archive(training_writer().text()))
    result = CliRunner().invoke(app, ["data", "info", "wisdm", "--data-dir", str(tmp_path / "data"),
                                      "--window", "40", "--step", "20"])
    assert result.exit_code == 0, result.output
    assert "20 Hz, windows of 40 samples every 20" in result.output
    assert "test subjects (2): 29 30" in result.output and "skipped 1 of" in result.output


def test_wisdm_cnn_trains_end_to_end(tmp_path: Path, cache: Path, no_network: None) -> None:
    write_local(tmp_path, wisdm.ARCHIVE, official_archive(training_writer().text()))
    data = load_dataset("wisdm", data_dir=tmp_path / "data", quiet=True)
    config = RepeatConfig(model="wisdm_cnn", repeats=1, epochs=2, batch_size=8, standardize=True, seed=3,
                          hyperparameters={"filters": 8, "late_filters": 8})
    results = run_training(ExperimentSpec(name="test", **config.model_dump()), data, tmp_path / "results")
    run = results.store.rows()[0]
    assert 0 <= run["accuracy"] <= 1 and len(run["validation_subjects"]) == 1  # 20 % of 5 training users
    assert set(run["validation_subjects"]) <= {1, 2, 3, 4, 5}
    assert list(run["per_class"]) == list(CLASSES)
    assert all(set(row) >= {"precision", "recall", "f1"} for row in run["per_class"].values())
    confusion = np.array(run["confusion"])
    assert confusion.shape == (6, 6) and confusion.sum() == int(np.isin(data.subject, [29, 30]).sum())
    dataset = results.store.dataset()
    assert dataset["provenance"]["dataset"] == "wisdm" and dataset["window"] == 80
