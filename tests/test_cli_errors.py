"""Whatever escapes a command reaches the user as one line with the file and the fix, never a traceback —
unless they ask for it with --debug."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harlab.cli import main, one_line_error


def harlab(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from harlab.cli import main; main()", *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})}, cwd=cwd)


def assert_one_line(result: subprocess.CompletedProcess, *expected: str) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    message = result.stderr.strip()
    assert message.startswith("error:") and len(message.splitlines()) == 1, message
    for text in expected:
        assert text in message, message


@pytest.mark.parametrize(("code", "fix"), [
    (errno.ENOSPC, "disk is full"), (errno.EACCES, "permission denied"), (errno.EROFS, "read-only"),
    (errno.EISDIR, "is a folder"), (errno.ENOTDIR, "not a folder"), (errno.ENOENT, "not found")])
def test_os_errors_name_the_file_and_the_fix(code: int, fix: str) -> None:
    text = one_line_error(OSError(code, os.strerror(code), "/data/results/runs.jsonl"))
    assert text.startswith("/data/results/runs.jsonl: ") and fix in text and "\n" not in text


def test_memory_recursion_and_foreign_errors_are_one_line() -> None:
    assert "out of memory" in one_line_error(MemoryError())
    assert "nested too deeply" in one_line_error(RecursionError("maximum recursion depth exceeded"))
    foreign = one_line_error(ValueError("Unable to parse string \"x\"\nat position 3"))
    assert foreign.startswith("unexpected ValueError (Unable to parse") and "--debug" in foreign
    assert "\n" not in foreign


def run_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["harlab", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return int(exit_info.value.code or 0), capsys.readouterr().err


def test_an_error_from_deep_inside_is_one_line_and_debug_shows_its_traceback(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from harlab.models import registry

    def disk_gone() -> list[str]:
        raise OSError(errno.EIO, "Input/output error", "/mnt/usb/models")

    monkeypatch.setattr(registry, "model_names", disk_gone)
    code, err = run_main(monkeypatch, capsys, "models", "list")
    assert code == 1 and err.strip().splitlines() == [err.strip()] and "Traceback" not in err
    assert err.startswith("error: /mnt/usb/models: Input/output error")
    monkeypatch.setattr(sys, "argv", ["harlab", "--debug", "models", "list"])
    with pytest.raises(OSError, match="Input/output error"):
        main()


def test_a_cache_that_is_a_file_is_one_line_naming_it(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("a file, not a folder")
    assert_one_line(harlab("data", "info", "hapt", env={"HARLAB_CACHE": str(not_a_folder)}),
                    f"{not_a_folder}: harlab's cache is not a folder — point HARLAB_CACHE at a folder")
