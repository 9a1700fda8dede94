"""Every dataset by name: locate it (local copy, cache, download, mirror), load it into a WindowSet,
and keep a compact binary copy so the second load takes well under a second."""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harlab.data import hapt, uci_har, wisdm
from harlab.data.fetch import cache_dir, check_recorded_sha256, local_data_dir
from harlab.data.recordings import load_recordings_dataset
from harlab.data.signals import UciHarPipeline
from harlab.data.tree import FileTree
from harlab.data.windowset import Provenance, UnusableWindows, WindowSet, load_windowset, save_windowset
from harlab.errors import DataError, HarlabError
from harlab.files import WriteError

logger = logging.getLogger(__name__)

TUTORIAL_DATASET = uci_har.NAME
FALLBACK_DATASET = hapt.NAME


def _cached(name: str, identity: str, options: dict[str, Any], build: Callable[[], WindowSet]) -> WindowSet:
    """The windows from the cache where a file for this key is there and intact, else built and cached. A cache
    file that cannot be used (damaged, altered, not a regular file) is rebuilt with a note; a cache that cannot
    be written is skipped with one."""
    key = {"dataset": name, "identity": identity, **options}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / "windows" / f"{name}-{digest}.npz"
    try:
        if (cached := load_windowset(path, key)) is not None:
            return cached
    except UnusableWindows as exc:
        logger.warning(f"note: {path}: cache {exc.problem}; rebuilding")
    windows = build()
    try:
        save_windowset(windows, path, key)
    except (OSError, WriteError) as exc:  # a full disk too: the windows are there, only their copy is not
        reason = exc.problem if isinstance(exc, WriteError) else exc.strerror or exc
        logger.warning(f"note: {path}: cannot write the cache ({reason}); continuing without it")
    return windows


def _report(differences: list[str], where: Path, strict: bool) -> str:
    if not differences:
        return ""
    text = "; ".join(differences)
    if strict:
        raise DataError(where, f"does not match the published dataset ({text})",
                        "the copy is incomplete or altered; delete it and fetch it again")
    logger.warning(f"note: {where} differs from the published dataset ({text})")
    return f"differs from the published dataset: {text}"


def load_uci_har(data_dir: Path | None = None, offline: bool = False, quiet: bool = False) -> WindowSet:
    """UCI HAR's official windows from a local copy, the cache, or the official archive."""
    local = uci_har.find_local(data_dir / uci_har.NAME) if data_dir else None
    origin = "local"
    if local is None:
        local, origin = uci_har.find_local(cache_dir() / uci_har.NAME), "cache"
    if local is None:
        if offline:
            raise HarlabError(f"uci-har: no local copy and nothing cached in {cache_dir() / uci_har.NAME}")
        local, origin = uci_har.fetch(quiet=quiet), "official"
    tree = FileTree.open(local)
    if origin == "cache" and local.is_file():
        check_recorded_sha256(local, tree.identity, uci_har.NAME)

    def build() -> WindowSet:
        X, y, subjects, classes, test_subjects, differences = uci_har.read(tree)
        note = _report(differences, local, strict=origin != "local")
        provenance = Provenance(uci_har.NAME, str(local), tree.identity,
                                {"origin": origin, "url": uci_har.URL}, note)
        return WindowSet(X, y, subjects, uci_har.CHANNELS, classes, uci_har.SAMPLING_RATE, uci_har.STEP,
                         test_subjects, provenance)

    return _cached(uci_har.NAME, tree.identity, {}, build)


def load_hapt(data_dir: Path | None = None, window: int = 128, step: int = 64, transitions: bool = False,
              offline: bool = False, quiet: bool = False) -> WindowSet:
    """HAPT's raw recordings cut into UCI HAR-style windows (6 classes, or 12 with `transitions`)."""
    if window < 2 or not step >= 1:
        raise HarlabError(f"hapt: window {window} and step {step} must be positive (window ≥ 2)")
    source = hapt.locate(data_dir, offline=offline, quiet=quiet)
    pipeline = UciHarPipeline(window=window, step=step)
    n_classes = len(hapt.ACTIVITIES) if transitions else 6
    options = {"window": window, "step": step, "classes": n_classes, "pipeline": repr(pipeline)}
    identity = hapt.source_identity(source)

    def build() -> WindowSet:
        recordings, names = hapt.read_recordings(source)
        differences = hapt.check_complete(recordings)
        note = _report(differences, source.path, strict=source.origin != "local")
        X, y, subjects, channels = hapt.build_windows(recordings, pipeline, n_classes)
        provenance = Provenance(hapt.NAME, str(source.path), identity,
                                {"origin": source.origin, "format": source.kind, **options}, note)
        return WindowSet(X, y, subjects, channels, names[:n_classes], hapt.SAMPLING_RATE, step,
                         hapt.UCI_HAR_TEST_SUBJECTS, provenance)

    return _cached(hapt.NAME, identity, options, build)


def load_wisdm(data_dir: Path | None = None, window: int = 80, step: int = 40, offline: bool = False,
               quiet: bool = False) -> WindowSet:
    """WISDM v1.1's raw accelerometer records cut into windows inside continuous stretches (6 classes)."""
    if window < 2 or step < 1:
        raise HarlabError(f"wisdm: window {window} and step {step} must be positive (window ≥ 2)")
    source = wisdm.locate(data_dir, offline=offline, quiet=quiet)
    options = {"window": window, "step": step, "max_gap_ns": wisdm.MAX_GAP_NS}
    return _cached(wisdm.NAME, source.sha256, options, lambda: wisdm.build_windowset(source, window, step, options))


DATASETS = {uci_har.NAME: load_uci_har, hapt.NAME: load_hapt, wisdm.NAME: load_wisdm}


def load_dataset(name: str, data_dir: str | Path | None = None, quiet: bool = False, **options: Any) -> WindowSet:
    """Load a dataset by name, or a folder written by `harlab data import`; `options` are the dataset's own
    (e.g. window, step, transitions for hapt)."""
    if name not in DATASETS and Path(name).is_dir():
        if options:
            raise HarlabError(f"{name}: an imported dataset takes no options ({sorted(options)}); import the "
                              "recordings again with other ones")
        return load_recordings_dataset(name)
    if name not in DATASETS:
        raise HarlabError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}, or the folder of a "
                          "`harlab data import`")
    loader = DATASETS[name]
    accepted = set(inspect.signature(loader).parameters) - {"data_dir", "quiet"}
    if unknown := sorted(set(options) - accepted):
        raise HarlabError(f"dataset {name!r} has no option(s) {unknown}; it takes {sorted(accepted) or 'none'}")
    windows = loader(local_data_dir(data_dir), quiet=quiet, **options)
    if not len(windows):
        raise HarlabError(f"{name}: no windows of {windows.window} samples fit inside its labelled recordings; "
                          "lower the `window` setting")
    return windows


def load_tutorial_dataset(name: str | None, data_dir: str | Path | None = None, quiet: bool = False,
                          **options: Any) -> WindowSet:
    """The requested dataset; with none requested, UCI HAR, or the hapt windows when it cannot be had."""
    if name is not None:
        return load_dataset(name, data_dir, quiet=quiet, **options)
    try:
        return load_dataset(TUTORIAL_DATASET, data_dir, quiet=quiet)
    except HarlabError as exc:
        logger.warning(f"uci-har is not available ({exc}); using the hapt windows cut from its raw recordings "
                       "instead")
        return load_dataset(FALLBACK_DATASET, data_dir, quiet=quiet, **options)
