"""The documentation site builds: `mkdocs build --strict` (broken links, anchors and API references fail it) and
the API page is generated from the docstrings. A missing mkdocs is a failure, not a skip: it is in the test extra."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_docs_build_strict_with_api_reference(tmp_path: Path) -> None:
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        if importlib.util.find_spec(module) is None:
            pytest.fail(f"{module} is not installed: pip install -e '.[docs]' (the test extra has it too)")
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    assert 'id="harlab.deploy.predict.predict_file"' in api, "the API page lacks harlab.deploy.predict.predict_file"
    assert 'id="harlab.data.datasets.load_dataset"' in api, "the API page lacks harlab.data.datasets.load_dataset"
    for page in ("install", "datasets", "recordings", "models", "training", "experiments", "tune-track-scale",
                 "deploy", "robustness", "results"):
        assert (site / page / "index.html").is_file(), f"docs/{page}.md was not built"
