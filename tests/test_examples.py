"""The notebooks in examples/ run from top to bottom, in tiny mode, on the real HAPT recordings.

Each notebook is executed by nbclient in a fresh kernel of this interpreter (a kernelspec written to a temporary
JUPYTER_PATH, so the venv's Python and its harlab run it), with HARLAB_EXAMPLES_TINY=1 (one epoch, one or two
repeats, a few subjects), its results in a temporary folder, the real data from the `real_data` fixture and one
temporary harlab cache shared by the notebooks (the first one builds the windows, the others read them). Any
error in any cell fails the test, as does a cell running past its timeout; none is skipped. The notebooks are
stored without outputs, which the last tests check.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
# The tutorials the examples walk through; a notebook missing from examples/ fails its test (never skips).
EXPECTED = ("01-cnn.ipynb", "02-lstm.ipynb", "03-wisdm-phone.ipynb", "04-own-recordings.ipynb",
            "05-modern-models.ipynb")
NOTEBOOKS = sorted({p.name for p in EXAMPLES.glob("*.ipynb")} | set(EXPECTED))
KERNEL = "harlab-examples-test"
CELL_TIMEOUT_S = 600  # tiny cells take seconds; this only catches a hang on a busy machine
TINY_LINE = 'TINY = os.environ.get("HARLAB_EXAMPLES_TINY") == "1"'


@pytest.fixture(scope="module")
def jupyter_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A JUPYTER_PATH holding one kernelspec that starts this interpreter's ipykernel."""
    if importlib.util.find_spec("ipykernel") is None:
        pytest.fail(f"ipykernel is not installed in {sys.executable}: pip install -e '.[test]'", pytrace=False)
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "harlab examples (tests)", "language": "python"}))
    return root


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One harlab cache for every notebook of this module: the hapt windows are built once."""
    return tmp_path_factory.mktemp("examples-cache")


def read(name: str) -> nbformat.NotebookNode:
    path = EXAMPLES / name
    assert path.is_file(), (f"{path} is missing: every tutorial has a notebook in examples/ (is examples/ "
                            "ignored by git in this checkout?)")
    return nbformat.read(path, as_version=4)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_tiny_mode(name: str, jupyter_path: Path, shared_cache: Path, real_data: Path,
                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = read(name)
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter_path))
    monkeypatch.setenv("HARLAB_EXAMPLES_TINY", "1")
    monkeypatch.setenv("HARLAB_EXAMPLES_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("HARLAB_DATA_DIR", str(real_data))
    monkeypatch.setenv("HARLAB_CACHE", str(shared_cache))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend draws the figures
    if "OMP_NUM_THREADS" not in os.environ:
        # One torch thread per kernel: on a 2-core machine shared with other work, two spinning threads per
        # tiny fit cost many times more than they gain.
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
    client = NotebookClient(notebook, kernel_name=KERNEL, timeout=CELL_TIMEOUT_S, startup_timeout=120,
                            allow_errors=False, resources={"metadata": {"path": str(tmp_path)}})
    started = time.perf_counter()
    client.execute()  # raises CellExecutionError (naming the cell and its traceback) on any error
    seconds = time.perf_counter() - started
    print(f"{name}: {seconds:.1f} s in tiny mode")
    errors = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
              if output.output_type == "error"]
    assert not errors, errors
    assert (tmp_path / "out").is_dir(), "the notebook wrote no results under HARLAB_EXAMPLES_OUT"


def test_every_tutorial_has_a_notebook() -> None:
    found = sorted(p.name for p in EXAMPLES.glob("*.ipynb"))
    assert set(EXPECTED) <= set(found), f"missing from {EXAMPLES}: {sorted(set(EXPECTED) - set(found))}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_stored_clean(name: str) -> None:
    """Valid nbformat 4, no outputs or execution counts, and the TINY switch in the first code cell."""
    notebook = read(name)
    nbformat.validate(notebook)
    assert notebook.nbformat == 4
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    dirty = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code" and (
        cell.outputs or cell.execution_count is not None)]
    assert not dirty, f"{name}: cells {dirty} hold outputs; clear them before committing"
    assert code and TINY_LINE in code[0].source, f"{name}: the first code cell must read {TINY_LINE}"
