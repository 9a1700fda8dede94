"""Experiments: specs and their errors, the resumable store (a real kill mid-experiment), reproducible reruns,
statistics, the HTML report in a real headless browser, and `harlab reproduce --quick`."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harlab.errors import HarlabError
from harlab.evaluation.statistics import compare_all, describe, holm
from harlab.experiments.reproduce import tutorial_specs
from harlab.experiments.spec import load_spec, parse_spec
from harlab.experiments.store import ResultsStore

# --- specs -----------------------------------------------------------------------------------------------


def test_tutorial_specs_cover_the_eight_experiments() -> None:
    specs = tutorial_specs()
    assert [s.name for s in specs] == ["cnn", "standardize", "filters", "kernel-size", "multihead_cnn", "lstm",
                                       "cnn_lstm", "convlstm"]
    assert all(s.repeats == 10 for s in specs)
    sizes = {s.name: len(s.configurations()) for s in specs}
    assert sizes == {"cnn": 1, "standardize": 2, "filters": 6, "kernel-size": 5, "multihead_cnn": 1, "lstm": 1,
                     "cnn_lstm": 1, "convlstm": 1}
    assert sum(sizes.values()) * 10 == 180
    filters = next(s for s in specs if s.name == "filters").configurations()
    assert [c.config.hyperparameters["filters"] for c in filters] == [8, 16, 32, 64, 128, 256]
    reported = {label: value for s in specs for label, value in s.tutorial.accuracy.items()}
    assert reported == {"cnn": 90.9, "standardize=True": 91.5, "multihead_cnn": 91.6, "lstm": 89.7,
                        "cnn_lstm": 90.7, "convlstm": 90.8}


def test_quick_specs_are_small() -> None:
    assert all(s.repeats == 2 and s.epochs == 1 for s in tutorial_specs(quick=True))
    with pytest.raises(HarlabError, match="no tutorial experiment"):
        tutorial_specs(only=["resnet"])


def test_grid_product_and_labels() -> None:
    spec = parse_spec({"name": "x", "model": "cnn", "grid": {"standardize": [False, True], "filters": [8, 16]},
                       "hyperparameters": {"kernel_size": 5}, "epochs": 2}, "x.toml")
    configurations = spec.configurations()
    assert [c.label for c in configurations] == ["standardize=False, filters=8", "standardize=False, filters=16",
                                                 "standardize=True, filters=8", "standardize=True, filters=16"]
    last = configurations[-1].config
    assert last.standardize and last.hyperparameters["filters"] == 16 and last.hyperparameters["kernel_size"] == 5
    assert last.epochs == 2


def test_variants_follow_the_grid_with_their_own_hyperparameters() -> None:
    spec = parse_spec({"name": "x", "standardize": True, "grid": {"model": ["cnn", "lstm"]},
                       "variants": [{"model": "cnn", "filters": 8, "augment": ["jitter"]}]}, "x.yaml")
    labels = [c.label for c in spec.configurations()]
    assert labels == ["model=cnn", "model=lstm", "model=cnn, filters=8, augment=['jitter']"]
    variant = spec.configurations()[-1].config
    assert variant.standardize and variant.hyperparameters["filters"] == 8 and variant.augment == ("jitter",)
    assert [c.label for c in parse_spec({"name": "x", "variants": [{"epochs": 2}]}, "x").configurations()] == [
        "epochs=2"]
    assert "variants" not in parse_spec({"name": "x"}, "x").model_dump()  # stored specs of before still match
    with pytest.raises(HarlabError, match="configuration model=lstm, filters=8: model 'lstm' has no hyperpar"):
        parse_spec({"name": "x", "variants": [{"model": "lstm", "filters": 8}]}, "x.yaml").configurations()


def test_yaml_and_toml_specs_are_equivalent(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text('name = "a"\nmodel = "lstm"\nrepeats = 3\n[grid]\nunits = [50, 100]\n')
    (tmp_path / "a.yaml").write_text("name: a\nmodel: lstm\nrepeats: 3\ngrid:\n  units: [50, 100]\n")
    assert load_spec(tmp_path / "a.toml") == load_spec(tmp_path / "a.yaml")


@pytest.mark.parametrize(("text", "message"), [
    ('name = "x"\nmodel = "resnet"', "unknown model 'resnet'"),
    ('name = "x"\nmodle = "cnn"', "modle: Extra inputs are not permitted"),
    ('name = "x"\n[grid]\nfilterz = [8, 16]', "grid.filterz: model 'cnn' has no such hyperparameter"),
    ('name = "x"\n[grid]\nfilters = []', "grid.filters is empty"),
    ('name = "x"\nrepeats = 0', "repeats: Input should be greater than or equal to 1"),
    ('name = "x"\nrepeats = "ten"', "repeats: Input should be a valid integer"),
    ('name = "x"\n[grid]\nfilters = [8, "many"]', "configuration filters=many: model 'cnn': filters='many'"),
    ('name = "x"\n[grid]\npadding = ["valid", "full"]', "padding='full'"),
    ('name = "x"\nstandardize = "sometimes"', "standardize: Input should be a valid boolean"),
    ('name = "x"\nmodel = "cnn"\n[hyperparameters]\nunits = 3', "no hyperparameter(s) ['units']"),
    ('name = "x" = 3', "not valid TOML"),
    ('model = "cnn"', "name: Field required"),
])
def test_bad_specs_fail_with_one_line_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(HarlabError) as info:
        load_spec(path)
    assert message in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value)


def test_bad_spec_fails_before_any_training(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: x\nmodel: cnn\ngrid:\n  kernel_size: [3, 0]\n")
    result = subprocess.run([sys.executable, "-m", "harlab", "experiment", "run", str(spec), "--out",
                             str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "kernel_size=0: Input should be greater than 0" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


# --- statistics ------------------------------------------------------------------------------------------


def test_confidence_interval_of_the_mean() -> None:
    s = describe([0.90, 0.91, 0.92, 0.93])
    assert s.mean == pytest.approx(91.5) and s.std == pytest.approx(np.std([90, 91, 92, 93]))
    half = 3.182446305284263 * np.std([90, 91, 92, 93], ddof=1) / 2  # t(0.975, 3)
    assert (s.ci_low, s.ci_high) == (pytest.approx(91.5 - half), pytest.approx(91.5 + half))
    assert describe([0.9]).ci_low is None


def test_holm_correction() -> None:
    assert holm([0.01, 0.04, 0.03, math.nan]) == pytest.approx([0.03, 0.06, 0.06, math.nan], nan_ok=True)


def test_welch_finds_a_real_difference_and_not_a_fake_one() -> None:
    rng = np.random.default_rng(0)
    a = list(0.90 + 0.005 * rng.standard_normal(10))
    b = list(0.92 + 0.005 * rng.standard_normal(10))
    c = list(0.90 + 0.005 * rng.standard_normal(10))
    comparisons = {(x.a, x.b): x for x in compare_all({"a": a, "b": b, "c": c})}
    assert comparisons["a", "b"].verdict() == "b is better" and comparisons["a", "b"].difference > 1.5
    assert comparisons["b", "c"].verdict() == "b is better"
    assert comparisons["a", "c"].verdict() == "no significant difference"


# --- the store -------------------------------------------------------------------------------------------


def test_store_cuts_a_torn_last_line(tmp_path: Path) -> None:
    spec = parse_spec({"name": "x"}, "x")
    store = ResultsStore.open(tmp_path, spec, {"d": 1}, {})
    store.append({"key": "k", "repeat": 1, "accuracy": 0.9})
    with store.runs_path.open("a") as f:
        f.write('{"key": "k", "repeat": 2, "accu')  # killed mid-write
    assert store.finished() == {("k", "fixed", 1)}
    store = ResultsStore.open(tmp_path, spec, {"d": 1}, {})
    store.append({"key": "k", "repeat": 2, "accuracy": 0.8})
    assert [row["repeat"] for row in store.rows()] == [1, 2]


def test_store_refuses_another_experiment_or_other_data(tmp_path: Path) -> None:
    ResultsStore.open(tmp_path, parse_spec({"name": "x"}, "x"), {"d": 1}, {})
    ResultsStore.open(tmp_path, parse_spec({"name": "x", "repeats": 20}, "x"), {"d": 1}, {})  # more repeats: fine
    reopened = ResultsStore.open(tmp_path, parse_spec({"name": "x", "description": "d"}, "x"), {"d": 1}, {})
    assert reopened.spec()["description"] == "d"
    with pytest.raises(HarlabError, match="holds a different experiment"):
        ResultsStore.open(tmp_path, parse_spec({"name": "x", "model": "lstm"}, "x"), {"d": 1}, {})
    one = {"name": "x", "grid": {"model": ["cnn"]}, "variants": [{"model": "lstm"}]}
    ResultsStore.open(tmp_path / "v", parse_spec(one, "x"), {"d": 1}, {})
    two = {**one, "variants": [{"model": "lstm"}, {"model": "cnn", "epochs": 3}]}
    assert len(ResultsStore.open(tmp_path / "v", parse_spec(two, "x"), {"d": 1}, {}).spec()["variants"]) == 2
    reordered, regridded = {**one, "variants": [{"model": "cnn_lstm"}, {"model": "lstm"}]}, {**two, "grid": {}}
    for changed in (reordered, regridded):
        with pytest.raises(HarlabError, match="holds a different experiment"):
            ResultsStore.open(tmp_path / "v", parse_spec(changed, "x"), {"d": 1}, {})
    with pytest.raises(HarlabError, match="holds runs on other data"):
        ResultsStore.open(tmp_path, parse_spec({"name": "x"}, "x"), {"d": 2}, {})


# --- running, killing, resuming --------------------------------------------------------------------------

SPEC = """name = "kill-test"
model = "cnn"
epochs = 1
repeats = 3
dataset = "hapt"
hyperparameters = { filters = 8 }

[grid]
standardize = [false, true]
"""


def harlab(*args: str, **kwargs) -> subprocess.Popen:
    """harlab in a subprocess that reacts to Ctrl-C even when the tests run in the background (where a shell
    starts them with SIGINT ignored, which children inherit)."""
    return subprocess.Popen([sys.executable, "-m", "harlab", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **kwargs)


def runs_of(out: Path) -> list[dict]:
    path = out / "runs.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT])
def test_killed_experiment_resumes_without_losing_or_repeating_runs(
        how: signal.Signals, real_data: Path, tmp_path: Path) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    out = tmp_path / "out"
    args = ("experiment", "run", str(spec), "--out", str(out), "--data-dir", str(real_data))
    process = harlab(*args)
    deadline = time.monotonic() + 240
    while len(runs_of(out)) < 2:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no runs finished in time"
        time.sleep(0.2)
    process.send_signal(how)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0
    if how == signal.SIGINT:
        assert "interrupted: finished runs are kept" in stderr and "Traceback" not in stderr
    before = runs_of(out)
    assert 2 <= len(before) < 6

    resumed = harlab(*args)
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    after = runs_of(out)
    assert after[:len(before)] == before  # finished runs untouched
    assert sorted((r["label"], r["repeat"]) for r in after) == sorted(
        (f"standardize={s}", r) for s in (False, True) for r in (1, 2, 3))  # each exactly once
    assert len(re.findall(r"^>standardize=(False|True) #\d: \d+\.\d{3}$", stdout, re.M)) == 6 - len(before)
    assert f"resuming: {len(before)} of 6 runs already finished" in stderr
    assert re.search(r"^standardize=True: \d+\.\d{3}% \(\+/-\d+\.\d{3}\)  95% CI", stdout, re.M)
    assert (out / "report.html").is_file() and (out / "figures" / "kill-test-boxplot.svg").is_file()

    # the same spec and seed, run afresh without interruption, gives the same numbers
    fresh = tmp_path / "fresh"
    rerun = harlab("experiment", "run", str(spec), "--out", str(fresh), "--data-dir", str(real_data))
    assert rerun.wait(timeout=300) == 0
    accuracy = {(r["label"], r["repeat"]): r["accuracy"] for r in after}
    assert {(r["label"], r["repeat"]): r["accuracy"] for r in runs_of(fresh)} == accuracy


# --- the report in a real browser ------------------------------------------------------------------------


def chromium() -> str:
    """The headless browser (Debian's chromium package); CI installs it, and its absence fails the test."""
    found = os.environ.get("HARLAB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("chromium not found: install Debian's chromium package (.ci/run does) or set HARLAB_CHROMIUM")
    return found


def browser(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--virtual-time-budget=5000", *args], capture_output=True, text=True, timeout=120)


def test_reproduce_quick_report_renders_in_a_headless_browser(real_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "reproduce"
    result = subprocess.run([sys.executable, "-m", "harlab", "reproduce", "--quick", "--only", "cnn", "--only",
                             "standardize", "--out", str(out), "--data-dir", str(real_data)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^  standardize=True: \d+\.\d{3}% .*tutorial 91\.5%$", result.stdout, re.M)
    baseline = {r["repeat"]: r["accuracy"] for r in runs_of(out / "cnn")}
    shared = [r for r in runs_of(out / "standardize") if r["label"] == "standardize=False"]
    assert {r["repeat"]: r["accuracy"] for r in shared} == baseline and all(r["copied_from"] == "cnn" for r in shared)
    page = out / "report.html"
    text = page.read_text()
    assert "trained once and are shared" in text
    assert "http://" not in text.replace("http://www.w3.org", "") and "https://" not in text  # self-contained

    dom = browser("--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr
    ids = set(re.findall(r'id="([^"]+)"', dom.stdout))
    for experiment in ("cnn", "standardize"):
        for section in ("spec", "summary", "boxplot", "confusion", "per-class", "learning-curves"):
            assert f"{experiment}-{section}" in ids, f"section {experiment}-{section} missing"
    assert {"overview", "environment", "standardize-comparisons"} <= ids
    images = re.findall(r'<img [^>]*src="data:image/png;base64,', dom.stdout)
    assert len(images) == (1 + 1 + 1 + 1) + (1 + 1 + 2 + 2)  # per experiment: boxplot, channels, confusion, curves

    shot = tmp_path / "shot.png"
    taken = browser(f"--screenshot={shot}", "--window-size=1200,2000", page.as_uri())
    assert taken.returncode == 0 and shot.is_file(), taken.stderr
    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.shape == (2000, 1200)
    assert (pixels < 128).mean() > 0.01 and len(np.unique(pixels)) > 50  # text, tables and plots, not blank
