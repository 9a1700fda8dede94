"""`harlab serve`: the local web page for live streams and for reviewing recordings (harlab.serve)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harlab.cli.common import app
from harlab.errors import HarlabError


@app.command("serve")
def serve_command(
    model: Annotated[Path, typer.Argument(help="A bundle folder (harlab train --save), pretrained:NAME or an .onnx "
                                          "file.")] = Path("pretrained:hapt-resnet1d"),
    host: Annotated[str, typer.Option(help="Address to listen on; any but a loopback one needs --token.")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free one).")] = 8765,
    token: Annotated[str | None, typer.Option(envvar="HARLAB_SERVE_TOKEN", help="A secret of 16+ characters every "
                                              "request must carry (also $HARLAB_SERVE_TOKEN).")] = None,
    folder: Annotated[Path, typer.Option(file_okay=False, help="The recordings the review may open; uploads go to "
                                         "its uploads/ folder, labels beside each recording.")] = Path("."),
    replay: Annotated[Path | None, typer.Option(dir_okay=False, help="Stream this recording (CSV or Parquet) into "
                                                "the live view as stream `replay`.")] = None,
    speed: Annotated[float, typer.Option(help="Replay this many times faster than real time.")] = 1.0,
    smoothing: Annotated[str, typer.Option(help="Average probabilities over this many windows (live: the last ones; "
                                           "review: centred), or hmm.")] = "3",
    time_column: Annotated[str, typer.Option(help="The recordings' time column.")] = "time",
    max_batch_kb: Annotated[int, typer.Option(min=1, help="Largest batch (or label file) a request may send.")
                            ] = 1000,
    max_upload_mb: Annotated[int, typer.Option(min=1, help="Largest recording an upload may send.")] = 50,
    max_streams: Annotated[int, typer.Option(min=1, help="Live streams at once.")] = 32,
) -> None:
    """Serve a local web page: watch a phone's activities live, review and relabel recordings."""
    from harlab.deploy.predict import parse_smoothing

    try:
        from harlab.serve.app import ServeSettings, serve
    except ModuleNotFoundError as exc:
        raise HarlabError(f"harlab serve needs {exc.name}: pip install 'harlab[serve]'") from None
    settings = ServeSettings(model, host, port, token, folder, replay, speed, parse_smoothing(smoothing), time_column,
                             max_batch_kb * 1000, max_upload_mb * 1_000_000, max_streams)
    serve(settings, lambda url: print(f"harlab serve: {url} (live view and review; Ctrl-C stops)", flush=True))
