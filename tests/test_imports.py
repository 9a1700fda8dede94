"""Importing harlab changes nothing a notebook would notice: matplotlib's backend and rcParams stay as they were,
logging is left unconfigured, and nothing is printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Runs in a fresh interpreter: argv[1] is "unset" (no backend chosen) or a backend the user chose before importing
# harlab; argv[2] the file the outcome goes to, so that stdout and stderr hold only what the imports printed.
SCRIPT = r"""
import importlib, json, logging, pkgutil, sys

import matplotlib

if sys.argv[1] != "unset":
    matplotlib.use(sys.argv[1])
    chosen = matplotlib.get_backend()
# dict's own view: reading rcParams["backend"] would resolve (and so set) the backend itself
before = dict(dict.items(matplotlib.rcParams))
root = list(logging.getLogger().handlers)

import harlab

names = sorted(m.name for m in pkgutil.walk_packages(harlab.__path__, "harlab.") if m.name != "harlab.__main__")
for name in names:
    importlib.import_module(name)
after = dict(dict.items(matplotlib.rcParams))
outcome = {
    "modules": len(names),
    "pyplot_figures": (sys.modules["matplotlib.pyplot"].get_fignums() if "matplotlib.pyplot" in sys.modules else []),
    "changed_rcparams": sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k)),
    "harlab_logger": [repr(h) for h in logging.getLogger("harlab").handlers] + [logging.getLogger("harlab").level],
    "root_logger_changed": logging.getLogger().handlers != root,
}
if sys.argv[1] != "unset":
    outcome["backend"] = [chosen, matplotlib.get_backend()]
with open(sys.argv[2], "w") as handle:
    json.dump(outcome, handle)
"""


@pytest.mark.parametrize("backend", ["unset", "svg"])
def test_importing_every_module_leaves_matplotlib_logging_and_the_console_alone(backend: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    result = subprocess.run([sys.executable, "-c", SCRIPT, backend, str(tmp_path / "outcome.json")],
                            capture_output=True, text=True, env=env, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == ("", ""), "importing harlab printed something"
    outcome = json.loads((tmp_path / "outcome.json").read_text())
    assert outcome["modules"] > 20
    assert outcome["changed_rcparams"] == [] and outcome["pyplot_figures"] == []
    assert outcome["harlab_logger"] == [0] and not outcome["root_logger_changed"]
    if backend != "unset":
        chosen, after = outcome["backend"]
        assert chosen == after == backend
