"""harlab: human activity recognition from raw wearable and smartphone sensor signals."""

from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("harlab")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"


def predict(model: Any, recording: Any, **options: Any) -> Any:
    """Per-window activity predictions as a DataFrame: `model` a bundle folder, an .onnx file or a loaded model,
    `recording` a DataFrame of samples or a CSV/Parquet file (see harlab.deploy.predict)."""
    from pathlib import Path

    from harlab.deploy.predict import open_model, predict_file
    from harlab.deploy.predict import predict as predict_frame

    loaded = open_model(Path(model)) if isinstance(model, str | Path) else model
    if isinstance(recording, str | Path):
        return predict_file(loaded, Path(recording), **options)
    return predict_frame(loaded, recording, **options)
