"""`harlab models`: the registered models and their layers."""

from __future__ import annotations

import typing
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harlab.cli.common import Param, models_app, parse_input, parse_params


@models_app.command("list")
def models_list(pretrained: Annotated[bool, typer.Option(help="List the pretrained models shipped with harlab "
                                                         "instead: use them as pretrained:NAME.")] = False) -> None:
    """Names, architectures, tutorial training settings and hyperparameters (with defaults)."""
    if pretrained:
        _list_pretrained()
        return
    from harlab.models.layers import ConvOptions
    from harlab.models.registry import get_entry, model_names
    from harlab.training.config import describe
    from harlab.training.settings import defaults_of

    table = Table("name", "architecture", "training", "hyperparameters")
    for name in model_names():
        e = get_entry(name)
        grouped = {field for group in e.groups.values() for field in group.model_fields}
        own = ", ".join(f"{k}={v}" for k, v in e.hyperparameters.items() if k not in grouped)
        table.add_row(name, e.summary, describe(defaults_of(name)), own + (" + Conv1D options" if grouped else ""))
    out = Console(highlight=False, soft_wrap=True)
    out.print(table)
    out.print("Conv1D options (Keras's, applied to every convolution; --param NAME=VALUE):")
    for field, info in ConvOptions.model_fields.items():
        out.print(escape(f"  {field}={info.default}  {_describe_type(info.annotation)}"
                         + (f"  {info.description}" if info.description else "")))


def _list_pretrained() -> None:
    from harlab.deploy.pretrained import pretrained_models

    for model in pretrained_models():
        print(f"pretrained:{model.name}  {model.description}")
        print(f"  input: {model.input_text()}")
        print(f"  classes: {', '.join(model.classes)}")
        print(f"  accuracy on people it never saw: {model.accuracy_text()}")


def _describe_type(annotation: Any) -> str:
    choices = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Literal:
        return " | ".join(map(str, choices))
    return " | ".join(getattr(t, "__name__", str(t)) for t in choices) if choices else annotation.__name__


@models_app.command("summary")
def models_summary(
    name: str,
    input_shape: Annotated[str, typer.Option("--input", help="Window as TIMESTEPSxCHANNELS.")] = "128x9",
    classes: Annotated[int, typer.Option(min=2, help="Number of classes.")] = 6,
    param: Param = None,
) -> None:
    """A layer table like Keras's model.summary(): layer, output shape, parameters, total."""
    from harlab.models.registry import count_parameters, create_model
    from harlab.models.summary import layer_table

    steps, channels = parse_input(input_shape)
    model = create_model(name, channels, steps, classes, **parse_params(param))
    table = Table("layer", "type", "output shape", "params")
    for row in layer_table(model, channels, steps):
        table.add_row(row.name, row.kind, row.output_shape, f"{row.parameters:,}")
    out = Console(highlight=False, soft_wrap=True)
    out.print(escape(f"{name} on windows of {steps} steps × {channels} channels; shapes are [batch, channels, time], "
                     "None·k means k items per window"))
    out.print(table)
    frozen = sum(b.numel() for b in model.buffers())
    out.print(f"Total params: {count_parameters(model):,}" + (f" (and {frozen:,} fixed values)" if frozen else ""))

