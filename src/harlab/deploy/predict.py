"""Activity timelines from long unlabeled recordings, with a trained bundle or its ONNX export.

A recording's samples (at the model's sampling rate) are cut into windows of the model's length every `step`
samples; each window gets class probabilities; the probabilities are smoothed over `smoothing` consecutive
windows (centered mean), or decoded with the hidden Markov model of how the training windows' activities
followed each other (`smoothing="hmm"`, harlab.deploy.hmm: Viterbi, and each window's forward-backward
posterior); consecutive windows with the same activity become one segment of the timeline. A stream predictor
does the same sample by sample, as a phone app would (a trailing mean, or the forward posterior).

Models trained on UCI HAR-style windows (total_acc, body_acc, body_gyro) take the raw recording (acc and gyro
axes) and apply the same filters and gravity split first: on the whole recording held in memory, on each block
of a recording file (read block by block in bounded memory, with a few windows of context on either side), and
on a sliding context of a few windows when streaming.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from harlab.data.blocks import Block, signal_blocks
from harlab.data.fetch import regular_file
from harlab.data.sensors import (
    CONVERSIONS,
    MS2_MAGNITUDES,
    SensorSettings,
    check_gravity,
    gravity_magnitude,
    is_sensor_recording,
    read_sensor_recording,
)
from harlab.data.signals import Recording, UciHarPipeline
from harlab.deploy.hmm import Transitions
from harlab.deploy.onnx_export import ONNX_METADATA
from harlab.deploy.pretrained import resolve
from harlab.errors import DataError, HarlabError

STREAM_CONTEXT_WINDOWS = 4  # filter context kept while streaming a UCI HAR-style model
RESAMPLING_CONTEXT = 100  # samples of context for the resampler's filter at a block's edges
Smoothing = int | Literal["hmm"]
AccUnits = Literal["g", "m/s2"]


@dataclass(frozen=True)
class WindowModel:
    """What prediction needs of a model, whether a bundle or an ONNX file: its input and a probability function
    of raw windows [n, window, channels] (standardization is inside)."""

    source: str
    channels: tuple[str, ...]
    classes: tuple[str, ...]
    window: int
    sampling_rate: float
    preprocessing: dict[str, Any]
    probabilities: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    transitions: Transitions | None = None

    def hidden_markov_model(self) -> Transitions:
        """How the training windows' activities followed each other; a one-line refusal for a model saved
        without it."""
        if self.transitions is None:
            raise DataError(self.source, "has no transition matrix of the training activities (saved by an older "
                            "harlab, or by HARClassifier, which does not see recordings in order)",
                            "save it again from its results (harlab experiment save), or smooth with a number "
                            "of windows")
        return self.transitions

    def input_columns(self, names: tuple[str, ...], where: str | Path) -> tuple[str, ...]:
        """The columns of a recording (named `names`) this model reads: its own channels where all are there,
        else the raw acc/gyro columns its UCI HAR pipeline starts from; a one-line error naming the columns
        needed and those found otherwise."""
        if all(c in names for c in self.channels):
            return self.channels
        raw = self.raw_channels()
        if raw and all(c in names for c in raw):
            return raw
        needed = raw or self.channels
        found = ", ".join(map(str, names[:12])) + (", …" if len(names) > 12 else "") or "none"
        yours = ",".join(map(str, names)) if len(names) == len(needed) else "COLUMN,COLUMN,…"
        raise DataError(where, f"missing column(s) {', '.join(c for c in needed if c not in names)}: the model needs "
                        f"{self.input_text()}; found {found}", f"rename them, or name yours in this order: set "
                        f"channels={yours}")

    def raw_channels(self) -> tuple[str, ...]:
        """The raw acc/gyro columns its UCI HAR pipeline starts from (none for a model without one)."""
        uci_har = self.preprocessing.get("pipeline") == "uci-har"
        return tuple(self.preprocessing.get("raw_channels", ())) if uci_har else ()

    def input_text(self) -> str:
        """`acc_x, acc_y, acc_z (accelerometer in g) at any rate`: the columns a recording must give it."""
        raw = self.raw_channels()
        if not raw:
            return f"{', '.join(self.channels)} at {self.sampling_rate:g} Hz"
        units = ["accelerometer in g", *(["gyroscope in rad/s"] if any("gyro" in c for c in raw) else [])]
        return f"{', '.join(raw)} ({', '.join(units)}) at any rate"

    def renamed(self, names: tuple[str, ...], channels: Sequence[str] | None, where: str | Path
                ) -> tuple[str, ...]:
        """A recording's column `names` with `channels` (the user's columns, in the order of the model's raw
        columns, or of its channels without a pipeline) renamed to the model's; a one-line error where their
        number differs or one is missing."""
        if channels is None:
            return names
        needed = self.raw_channels() or self.channels
        if len(channels) != len(needed):
            raise DataError(where, f"the `channels` setting names {len(channels)} column(s); the model needs "
                            f"{len(needed)}: {self.input_text()}",
                            "name one of the recording's columns for each, in that order")
        if missing := [c for c in channels if c not in names]:
            raise DataError(where, f"no column {', '.join(missing)} (found {', '.join(map(str, names[:12]))})",
                            "name the recording's own columns in channels")
        mapping = dict(zip(channels, needed, strict=True))
        return tuple(mapping.get(n, f"{n} (not used)" if n in needed else n) for n in names)

    def model_signals(self, signals: np.ndarray, names: tuple[str, ...], where: str) -> np.ndarray:
        """The recording's samples [n, len(names)] as this model's input channels [n, channels]: taken as they
        are when named like the model's, else made with the UCI HAR pipeline from raw acc/gyro columns."""
        columns = self.input_columns(names, where)
        picked = signals[:, [names.index(c) for c in columns]]
        if columns == self.channels:
            return picked
        recording = Recording(picked, columns, self.sampling_rate, [], 0,
                              accelerometer=tuple(columns.index(c) for c in self.preprocessing["accelerometer"]))
        filtered, filtered_names = UciHarPipeline(window=self.window).filter(recording)
        return filtered[:, [filtered_names.index(c) for c in self.channels]]

    def window_probabilities(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities [n, classes] of raw windows X [n, window, channels]; a one-line refusal where the
        model gives another shape or values that are not finite (damaged weights or standardization)."""
        probabilities = np.asarray(self.probabilities(X))
        if probabilities.shape != (len(X), len(self.classes)):
            raise DataError(self.source, f"the model gives outputs of shape {list(probabilities.shape)} for "
                            f"{len(X)} windows of {len(self.classes)} classes", "save or export the model again")
        if not np.isfinite(probabilities).all():
            raise DataError(self.source, "the model gives NaN or infinite probabilities", "its weights or "
                            "standardization are damaged; save or export the model again")
        return probabilities


def open_model(path: Path) -> WindowModel:
    """A bundle folder (PyTorch; `pretrained:NAME` for one shipped in the package) or an .onnx file written by
    `harlab export` (ONNX Runtime): a regular file of at most MAX_MODEL_BYTES whose harlab metadata is well-formed
    and fits the graph's input and output shapes."""
    from harlab.deploy.bundle import MAX_MODEL_BYTES, ModelInput, load_bundle, validated

    path = resolve(path)
    if path.is_dir():
        bundle = load_bundle(path)
        manifest = bundle.manifest

        def probabilities(X: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return torch.softmax(bundle.model(bundle.prepare(X)), dim=-1).numpy()

        table = manifest.get("transitions")
        return WindowModel(str(path), tuple(bundle.channels), tuple(bundle.classes), bundle.window,
                           float(manifest["sampling_rate"]), manifest.get("preprocessing") or {}, probabilities,
                           Transitions.from_dict(table) if table else None)
    fix = ("pass a bundle folder saved after training (the `save` setting) or an ONNX file exported from one "
           "(the `onnx` setting)")
    if path.suffix != ".onnx" or not (path.exists() or path.is_symlink()):
        raise DataError(path, "not a bundle folder or an .onnx file", fix)
    regular_file(path, fix, limit=MAX_MODEL_BYTES)
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        text = session.get_modelmeta().custom_metadata_map.get(ONNX_METADATA)
    except Exception as exc:  # onnxruntime's own exception types; the user needs one line
        raise DataError(path, f"not a readable ONNX model ({str(exc).strip().splitlines()[0]})",
                        "export it again") from None
    export = "export the model to ONNX again (the `onnx` setting)"
    if text is None:
        raise DataError(path, f"no harlab metadata (model property {ONNX_METADATA!r})", export)
    try:
        meta = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        meta = None
    if not isinstance(meta, dict):
        raise DataError(path, "its harlab metadata is not a JSON object", export)
    if meta.get("flat_input"):
        raise DataError(path, "exported with flat_input=true", "export it again with flat_input=false to predict here")
    spec = validated(ModelInput, meta, path, export)
    takes = ", ".join(f"{i.type} {list(i.shape[1:])}" for i in session.get_inputs()) or "nothing"
    gives = ", ".join(f"{o.type} {list(o.shape[1:])}" for o in session.get_outputs()) or "nothing"
    says = (f"tensor(float) {[spec.window, len(spec.channels)]}", f"tensor(float) {[len(spec.classes)]}")
    if (takes, gives) != says:
        raise DataError(path, f"its graph takes {takes} and gives {gives} per window; its harlab metadata says "
                        f"{says[0]} and {says[1]}", export)
    name = session.get_inputs()[0].name

    def onnx_probabilities(X: np.ndarray) -> np.ndarray:
        return session.run(None, {name: X.astype(np.float32)})[0]

    preprocessing = spec.preprocessing.model_dump() if spec.preprocessing else {}
    table = spec.transitions
    return WindowModel(str(path), tuple(spec.channels), tuple(spec.classes), spec.window, spec.sampling_rate,
                       preprocessing, onnx_probabilities, Transitions.from_dict(table.model_dump()) if table else None)


def smooth(probabilities: np.ndarray, windows: int) -> np.ndarray:
    """Centered moving average of [n, classes] probabilities over `windows` windows (shorter at the ends)."""
    if windows <= 1:
        return probabilities
    frame = pd.DataFrame(probabilities)
    return frame.rolling(windows, center=True, min_periods=1).mean().to_numpy()


def parse_smoothing(text: str) -> Smoothing:
    """`--smoothing`: a number of windows (at least 1) or hmm; a one-line refusal otherwise."""
    if text.strip().lower() == "hmm":
        return "hmm"
    if text.strip().isdigit() and int(text) >= 1:
        return int(text)
    raise HarlabError(f"--smoothing {text!r}: give a number of windows (1: none) or hmm")


def decode(model: WindowModel, probabilities: np.ndarray, step: int, smoothing: Smoothing
           ) -> tuple[np.ndarray, np.ndarray]:
    """(activity index per window, smoothed probabilities [n, classes]) of windows `step` samples apart."""
    if smoothing == "hmm":
        transitions = model.hidden_markov_model()
        return transitions.viterbi(probabilities, step), transitions.posteriors(probabilities, step)
    smoothed = smooth(probabilities, smoothing)
    return smoothed.argmax(1), smoothed


class _WindowStream:
    """Model-ready signals arriving block after block (at the model's rate, in order), cut into windows `step`
    samples apart from the first sample; each window's class probabilities are computed as it completes, so only
    the last window's samples are kept."""

    def __init__(self, model: WindowModel, step: int, batch_size: int = 256):
        self.model, self.step, self.batch_size = model, step, batch_size
        self.buffer: np.ndarray | None = None
        self.buffer_first = self.next_start = 0
        self.parts: list[np.ndarray] = []

    def add(self, signals: np.ndarray) -> None:
        self.buffer = signals if self.buffer is None else np.concatenate([self.buffer, signals])
        offset = self.next_start - self.buffer_first
        count = max(0, (len(self.buffer) - offset - self.model.window) // self.step + 1)
        index = offset + self.step * np.arange(count)[:, None] + np.arange(self.model.window)[None, :]
        self.parts += [self.model.window_probabilities(self.buffer[index[i:i + self.batch_size]].astype(np.float32))
                       for i in range(0, count, self.batch_size)]
        self.next_start += count * self.step
        self.buffer = self.buffer[self.next_start - self.buffer_first:]
        self.buffer_first = self.next_start

    def frame(self, smoothing: Smoothing) -> pd.DataFrame:
        """Per-window predictions: start and end (s), activity and confidence after smoothing (`decode`), and
        every class's smoothed probability."""
        model = self.model
        if not self.parts:
            samples = self.buffer_first + (0 if self.buffer is None else len(self.buffer))
            raise HarlabError(f"the recording has {samples} samples, fewer than one window ({model.window})")
        best, probabilities = decode(model, np.concatenate(self.parts), self.step, smoothing)
        starts = self.step * np.arange(len(best))
        frame = pd.DataFrame({"start": starts / model.sampling_rate,
                              "end": (starts + model.window) / model.sampling_rate,
                              "activity": np.array(model.classes)[best],
                              "confidence": probabilities[np.arange(len(best)), best]})
        for i, name in enumerate(model.classes):
            frame[f"p_{name}"] = probabilities[:, i]
        return frame


def predict_signals(model: WindowModel, signals: np.ndarray, step: int | None = None, smoothing: Smoothing = 1
                    ) -> pd.DataFrame:
    """Per-window predictions for model-ready signals [n, channels] at the model's rate: start and end (s),
    activity and confidence after smoothing (`decode`), and every class's smoothed probability."""
    windows = _WindowStream(model, step or model.window // 2)
    windows.add(signals)
    return windows.frame(smoothing)


def timeline(windows: pd.DataFrame) -> pd.DataFrame:
    """Consecutive windows with the same activity merged into segments: start, end, activity, mean confidence,
    windows. A segment ends where the next one's first window starts (overlapping windows share their time)."""
    change = windows["activity"].ne(windows["activity"].shift()).cumsum()
    segments = windows.groupby(change, sort=False).agg(start=("start", "first"), end=("end", "last"),
                                                       activity=("activity", "first"),
                                                       confidence=("confidence", "mean"),
                                                       windows=("activity", "size")).reset_index(drop=True)
    segments["end"] = np.minimum(segments["end"], segments["start"].shift(-1).fillna(np.inf))
    return segments


def predict(model: str | Path | WindowModel, recording: pd.DataFrame, *, rate: float | None = None,
            time_column: str | None = "time", step: int | None = None, smoothing: Smoothing = 1,
            channels: Sequence[str] | None = None) -> pd.DataFrame:
    """Per-window predictions (see `predict_signals`) for a recording as a DataFrame of samples (a time column
    and signal columns named like the model's inputs or its raw acc/gyro channels, or named by `channels` in
    their order). Samples must be at the model's rate; `rate` states the recording's own rate when there is no
    time column to check it by."""
    model = model if isinstance(model, WindowModel) else open_model(Path(model))
    given = tuple(c for c in recording.columns if c != time_column)
    names = model.renamed(given, channels, "recording")
    recording = recording.rename(columns=dict(zip(given, names, strict=True)))
    source_rate = rate
    if time_column is not None and time_column in recording:
        steps = np.diff(recording[time_column].to_numpy(dtype=np.float64))
        source_rate = 1 / float(np.median(steps)) if len(steps) else rate
    if source_rate is not None and abs(source_rate - model.sampling_rate) > 0.01 * model.sampling_rate:
        raise HarlabError(f"the recording is at {source_rate:.4g} Hz, the model at {model.sampling_rate:g} Hz; "
                          "resample it first (harlab predict does that for files)")
    columns = model.input_columns(names, "recording")
    numeric = recording[list(columns)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    if (bad := ~np.isfinite(numeric)).any():
        row, column = np.argwhere(bad)[0]
        raise HarlabError(f"recording: column {columns[column]} has a missing, non-numeric or infinite value in row "
                          f"{row + 1} ({int(bad.any(axis=1).sum())} rows in all); fill or drop those rows")
    return predict_signals(model, model.model_signals(numeric, columns, "recording"), step, smoothing)


def _file_columns(model: WindowModel, path: Path, time_column: str, channels: Sequence[str] | None
                  ) -> tuple[list[str], list[str]]:
    """(the recording file's columns `model` reads, the model's names for them)."""
    from harlab.data.tables import SUFFIXES, read_header

    if path.suffix.lower() not in SUFFIXES or not path.is_file():
        raise DataError(path, "not a CSV or Parquet file", "pass the recording's .csv or .parquet file")
    header = tuple(c for c in read_header(path) if c != time_column)
    names = model.renamed(header, channels, path)
    columns = model.input_columns(names, path)
    return [header[names.index(c)] for c in columns], list(columns)


def _blocks(model: WindowModel, path: Path, time_column: str, rate: float | None,
            on_rows: Callable[[int], None], acc_units: AccUnits = "g", channels: Sequence[str] | None = None
            ) -> tuple[list[str], Iterator[Block]]:
    """The columns `model` reads from a recording file (by the model's names) and the file's blocks at the
    model's rate, each with context enough for the model's pipeline (see harlab.data.blocks), raw accelerometer
    columns in g."""
    file_columns, names = _file_columns(model, path, time_column, channels)
    margin_s = (STREAM_CONTEXT_WINDOWS * model.window + RESAMPLING_CONTEXT) / model.sampling_rate
    blocks = signal_blocks(path, file_columns, model.sampling_rate, time_column=time_column, source_rate=rate,
                           margin_s=margin_s, on_rows=on_rows)
    acc = [names.index(c) for c in model.preprocessing.get("accelerometer", ()) if c in names]
    return names, (_in_g(blocks, names, acc, acc_units, path) if len(acc) == 3 and names != list(model.channels)
                   else blocks)


def _in_g(blocks: Iterator[Block], names: list[str], acc: list[int], acc_units: AccUnits, path: Path
          ) -> Iterator[Block]:
    """Blocks with accelerometer columns `acc` converted to g; the first block's gravity says whether the units
    are likely right (m/s² taken for g is refused in one line; other doubts are a warning)."""
    for number, block in enumerate(blocks):
        block.samples[:, acc] *= CONVERSIONS["acc"][acc_units]
        if number == 0:
            magnitude = gravity_magnitude(block.core_samples()[:, acc])
            if MS2_MAGNITUDES[0] <= magnitude <= MS2_MAGNITUDES[1]:
                raise DataError(path, f"columns {', '.join(names[i] for i in acc)}: median acceleration magnitude "
                                f"{magnitude:.3g}, which is gravity in m/s²; the model reads g",
                                "pass --acc-units m/s2 (acc_units='m/s2') or convert them to g")
            check_gravity(block.core_samples()[:, acc], path)
        yield block


def read_model_input(model: WindowModel, path: Path, *, time_column: str = "time",
                     rate: float | None = None, acc_units: AccUnits = "g", channels: Sequence[str] | None = None
                     ) -> pd.DataFrame:
    """The columns of a recording file (CSV or Parquet) that `model` reads — its channels, or the raw axes its
    pipeline starts from, or the file's `channels` in their order — resampled to the model's rate. The time
    column may hold seconds, milliseconds or date-times (see harlab.data.tables); without one, `rate` gives the
    recording's rate. Other columns (labels, subject) are ignored. The whole recording is in memory:
    `predict_file` needs only a block of it."""
    if is_sensor_recording(path, time_column):
        samples = _sensor_samples(model, path)
        return samples[list(model.input_columns(tuple(samples.columns), path))]
    names, blocks = _blocks(model, path, time_column, rate, lambda done: None, acc_units, channels)
    return pd.DataFrame(np.concatenate([block.core_samples() for block in blocks]), columns=names)


def _sensor_samples(model: WindowModel, path: Path) -> pd.DataFrame:
    """A per-sensor recording (a phone app's folder or zip, harlab.data.sensors) merged onto the model's grid, gaps
    bridged by interpolation as in a table."""
    merged = read_sensor_recording(path, SensorSettings(rate=model.sampling_rate, max_gap_s=float("inf")))
    return pd.DataFrame(merged.signals, columns=list(merged.channels))


def predict_file(model: WindowModel, path: Path, *, time_column: str = "time", rate: float | None = None,
                 step: int | None = None, smoothing: Smoothing = 1,
                 on_rows: Callable[[int], None] = lambda done: None, acc_units: AccUnits = "g",
                 channels: Sequence[str] | None = None) -> pd.DataFrame:
    """Per-window predictions (see `predict_signals`) for a recording file (see `read_model_input`), read block
    by block in bounded memory (harlab.data.blocks): a day at 50 Hz never sits in memory whole. `on_rows(done)`
    reports the rows read. A per-sensor recording (a folder or zip, as phone apps export them) is merged first.
    Raw accelerometer columns are in g, or `acc_units` m/s2 (converted); gravity in m/s² taken for g is refused."""
    if smoothing == "hmm":
        model.hidden_markov_model()  # refused before the recording is read
    if is_sensor_recording(path, time_column):
        return predict(model, _sensor_samples(model, path), rate=model.sampling_rate, time_column=None, step=step,
                       smoothing=smoothing)
    names, blocks = _blocks(model, path, time_column, rate, on_rows, acc_units, channels)
    windows = _WindowStream(model, step or model.window // 2)
    for block in blocks:
        windows.add(model.model_signals(block.samples, tuple(names), str(path))[
            block.core[0] - block.first:block.core[1] - block.first])
    return windows.frame(smoothing)


@dataclass
class StreamPrediction:
    """One completed window of a stream: its first and last sample (0-based, inclusive), activity, confidence
    and the smoothed probabilities."""

    first_sample: int
    last_sample: int
    activity: str
    confidence: float
    probabilities: np.ndarray


class StreamPredictor:
    """Consumes samples as they arrive and emits a prediction for every completed window (every `step` samples
    once the first window is full), smoothed over the last `smoothing` windows (trailing mean: a stream cannot
    look ahead) or, for "hmm", the forward posterior of the model's hidden Markov model."""

    def __init__(self, model: WindowModel, names: tuple[str, ...], step: int | None = None,
                 smoothing: Smoothing = 1):
        self.model, self.names = model, names
        self.step, self.smoothing = step or model.window // 2, smoothing
        self.transitions = model.hidden_markov_model() if smoothing == "hmm" else None
        self.belief: np.ndarray | None = None
        raw_only = not all(c in names for c in model.channels)
        self.context = model.window * (STREAM_CONTEXT_WINDOWS if raw_only else 1)
        self.buffer = np.empty((0, len(names)))
        self.seen = 0
        self.next_end = model.window
        self.recent: list[np.ndarray] = []

    def push(self, samples: np.ndarray) -> Iterator[StreamPrediction]:
        """Add samples [m, channels] (in `names` order); yield a prediction per window completed by them."""
        samples = np.atleast_2d(np.asarray(samples, dtype=np.float64))
        self.buffer = np.concatenate([self.buffer, samples])[-(self.context + len(samples)):]
        self.seen += len(samples)
        while self.next_end <= self.seen:
            offset = len(self.buffer) - (self.seen - self.next_end)
            context = self.buffer[max(0, offset - self.context):offset]
            signals = self.model.model_signals(context, self.names, "stream")
            window = signals[-self.model.window:][None].astype(np.float32)
            smoothed = self._smoothed(self.model.window_probabilities(window))
            yield StreamPrediction(self.next_end - self.model.window, self.next_end - 1,
                                   self.model.classes[int(smoothed.argmax())], float(smoothed.max()), smoothed)
            self.next_end += self.step


    def _smoothed(self, probabilities: np.ndarray) -> np.ndarray:
        if self.transitions is not None:
            self.belief = self.transitions.filtered(probabilities, self.step, self.belief)[0]
            return self.belief
        self.recent = [*self.recent, probabilities[0]][-int(self.smoothing):]
        return np.mean(self.recent, axis=0)


def timeline_agreement(segments: pd.DataFrame, labels: np.ndarray, sampling_rate: float,
                       classes: tuple[str, ...]) -> tuple[float, int]:
    """Share of labelled samples whose activity the timeline got right, and how many were compared: samples
    whose label is not one of the model's `classes` (transitions, unlabelled) or that no segment covers are
    left out."""
    times = np.arange(len(labels)) / sampling_rate
    predicted = np.full(len(labels), None, dtype=object)
    for start, end, activity in segments[["start", "end", "activity"]].itertuples(index=False):
        predicted[(times >= start) & (times < end)] = activity
    compared = (predicted != None) & np.isin(labels, classes)  # noqa: E711 — elementwise, not identity
    if not compared.any():
        return float("nan"), 0
    return float(np.mean(predicted[compared] == labels[compared])), int(compared.sum())
