"""`as_flags`: the library's messages name settings as fields (`name=VALUE`, the `name` setting); the command
line shows its flags instead."""

from __future__ import annotations

import pytest

from harlab.cli.flags import FLAGS, as_flags


@pytest.mark.parametrize(("message", "expected"), [
    ("results.json: 1 training subject — at least 2 are needed; set validation_split=0",
     "results.json: 1 training subject — at least 2 are needed; pass --validation-split 0"),
    ("a.csv: column 'time': rate 20 Hz is too low for pipeline uci-har — set rate=50 or pipeline=none",
     "a.csv: column 'time': rate 20 Hz is too low for pipeline uci-har — pass --rate 50 or --pipeline none"),
    ("hapt could not be had: offline — put a copy in DIR/hapt/ and set data_dir=DIR",
     "hapt could not be had: offline — put a copy in DIR/hapt/ and pass --data-dir DIR"),
    ("x.csv: median step 2 s is not shorter than max_gap_s 0.5 — raise the `max_gap_s` setting or check the time unit",
     "x.csv: median step 2 s is not shorter than max_gap_s 0.5 — raise --max-gap or check the time unit"),
    ("windows gives 6.8 MB (limit 1 MB); raise the `step` setting or lower the `window` setting, or set "
     "HARLAB_MAX_MEMORY=6.9e6 to allow it",
     "windows gives 6.8 MB (limit 1 MB); raise --step or lower --window, or set HARLAB_MAX_MEMORY=6.9e6 to allow it"),
    ("no windows could be cut; check the labels, lower the `window` or `purity` setting",
     "no windows could be cut; check the labels, lower --window or --purity"),
    ("a.csv: column 'x' not found — pass its name (`time_column`, `label_column`, `channels`, ...)",
     "a.csv: column 'x' not found — pass its name (--time-column, --label-column, --channels, ...)"),
    ("a.csv: column 'time' holds durations, not timestamps — set time_unit=auto",
     "a.csv: column 'time' holds durations, not timestamps — pass --time-unit auto"),
    ("/r/.lock: exists and is not a folder — choose another out folder",
     "/r/.lock: exists and is not a folder — choose another --out folder"),
    ("m.onnx: exported with flat_input=true — export it again with flat_input=false to predict here",
     "m.onnx: exported with --flat-input — export it again with --no-flat-input to predict here"),
    ("set `split=kfold` and `folds=3`.", "pass --cv kfold and --folds 3."),
])
def test_field_references_become_flags(message: str, expected: str) -> None:
    assert as_flags(message) == expected
    assert as_flags(expected) == expected  # translating twice changes nothing


@pytest.mark.parametrize("message", [
    "HARLAB_MAX_MEMORY=8e9 is not a number of bytes; set it to a positive number such as 2e9",
    "model cnn: filters=0: Input should be greater than 0",  # a hyperparameter: no flag of its own
    "set beta1=0.9 or lower the `momentum` setting",  # settings without a flag stay as written
    "run `harlab data fetch wisdm` where the network is reachable",
    "/data/runs/window=80/out folder/r.json: not found",  # inside a path: not a setting
    "the windows: window 128 and step 64",
])
def test_text_that_names_no_flagged_setting_is_left_alone(message: str) -> None:
    assert as_flags(message) == message


def test_every_flag_in_the_table_is_an_option_of_the_command_line() -> None:
    import click
    import typer

    from harlab.cli import app

    def options(command: click.Command) -> set[str]:
        found = {name for param in command.params for name in [*param.opts, *param.secondary_opts]}
        for sub in getattr(command, "commands", {}).values():
            found |= options(sub)
        return found

    offered = options(typer.main.get_command(app))
    assert sorted(set(FLAGS.values()) - offered) == []
    assert "--no-flat-input" in offered  # as_flags writes flat_input=false as this
