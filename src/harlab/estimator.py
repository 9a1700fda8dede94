"""`HARClassifier`: any registered model as a scikit-learn classifier, trained by harlab's one training core.

It follows scikit-learn's estimator conventions: `__init__` only stores its parameters (the model's name, every
training setting of harlab.training.config.TrainConfig, the model's hyperparameters and `random_state`),
learned state lives in attributes ending in `_`, and `fit`/`predict`/`predict_proba`/`score` take windows X
[n, time, channels] with labels y, or a WindowSet. So it works with `clone`, `cross_val_score(...,
groups=subjects, cv=GroupKFold(k))` and `GridSearchCV`. `save` writes a bundle that `harlab predict` and
`harlab export` take; `HARClassifier.load` reads one back.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pydantic
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from harlab.data.windowset import Provenance, WindowSet
from harlab.deploy.bundle import bundle_model, load_bundle, preprocessing_of, save_bundle, starting_point
from harlab.errors import HarlabError, field_problems
from harlab.models.registry import validate_hyperparameters
from harlab.training.config import SETTING_NAMES, TrainOverrides
from harlab.training.device import resolve_device
from harlab.training.loop import logits_of, to_tensor
from harlab.training.run import fit_run, prepare
from harlab.training.settings import MAX_SEED, RepeatConfig


class HARClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """A registered model (`model`, see `harlab.list_models()`; None: cnn) as a scikit-learn classifier.

    Every training setting (epochs, batch_size, learning_rate, validation_split, patience, schedule,
    weight_decay, label_smoothing, augment, standardize, precision, class_weight, sampler) defaults to None,
    meaning the model's own (its tutorial's, or the modern recipe); `hyperparameters` are the model's (e.g.
    {"filters": 128}); an integer `random_state` is the run's seed (the same numbers as `harlab train --seed` on
    the same windows), None draws one from NumPy's global generator. `device` is where it trains and predicts
    (auto, cpu, cuda, cuda:N, mps; None: auto); `precision` fp32, bf16 or fp16 (see harlab.training.device).
    `callbacks` watch the fit (harlab.training.callbacks). `init` fine-tunes a trained model instead (a bundle's
    folder or "pretrained:NAME"; `model` None then trains the bundle's own), with `freeze`, `new_head` and
    `head_learning_rate` (see harlab.training.config.TrainConfig): the windows' channels are picked by name, its
    standardizer is kept.
    """

    def __init__(self, model: str | None = None, **params: Any):
        self.model = model
        for name in _PARAMETERS:
            setattr(self, name, params.pop(name, _DEFAULTS[name]))
        if params:
            raise TypeError(f"HARClassifier got unknown parameter(s) {sorted(params)}; it takes {_PARAMETERS}")

    # -- fitting --------------------------------------------------------------------------------------------

    def _config(self) -> RepeatConfig:
        settings = {name: getattr(self, name) for name in SETTING_NAMES}
        model, hyperparameters = self.model or "cnn", self.hyperparameters or {}
        if self.model is None and self.init is not None:
            model, hyperparameters = bundle_model(self.init, hyperparameters)
        try:
            return RepeatConfig(model=model, hyperparameters=hyperparameters, repeats=1,
                                **{k: v for k, v in settings.items() if v is not None})
        except pydantic.ValidationError as exc:
            problems = field_problems(exc)
            raise HarlabError(f"HARClassifier: {problems}") from None

    def fit(self, X: WindowSet | np.ndarray, y: np.ndarray | None = None, *, subjects: np.ndarray | None = None,
            channels: tuple[str, ...] | None = None, sampling_rate: float = 50.0) -> HARClassifier:
        """Train on a WindowSet, or on windows X [n, time, channels] with labels y (any labels; each window's
        `subjects` are needed only to hold out validation subjects; `channels` names let rotation augmentation
        find the 3-axis groups). Returns self."""
        data = self._windows(X, y, subjects, channels, sampling_rate, fitting=True)
        config = self._config()
        train_config = config.train_config()
        seed = self._seed()
        start = starting_point(train_config.init) if train_config.init is not None else None
        prepared = prepare(data, train_config, seed, start=start)
        fitted = fit_run(prepared, config.model, config.hyperparameters, train_config, seed,
                         (data.X.shape[2], data.window, len(data.classes)), self.callbacks or (),
                         resolve_device(self.device), start)
        self.model_, self.standardizer_, self.history_ = fitted.model.eval(), prepared.standardizer, fitted.history
        self.config_, self.seed_, self.validation_subjects_ = config, seed, prepared.validation_subjects
        self.channels_, self.window_, self.step_ = prepared.fit_windows.channels, data.window, data.step
        self.sampling_rate_, self.provenance_ = data.sampling_rate, data.provenance
        self.preprocessing_ = preprocessing_of(data) if start is None else start.preprocessing
        self.n_features_in_ = data.X.shape[2]
        return self

    def _seed(self) -> int:
        if self.random_state is None:
            return int(np.random.randint(0, MAX_SEED))
        if isinstance(self.random_state, bool) or not isinstance(self.random_state, int | np.integer) or not (
                0 <= self.random_state <= MAX_SEED):
            raise HarlabError(f"HARClassifier: random_state={self.random_state!r}: give a seed 0 … {MAX_SEED} "
                              "(an integer) or None")
        return int(self.random_state)

    def _windows(self, X: WindowSet | np.ndarray, y: np.ndarray | None, subjects: np.ndarray | None,
                 channels: tuple[str, ...] | None, sampling_rate: float, fitting: bool) -> WindowSet:
        """X as a WindowSet; when fitting, also learn `classes_` (a WindowSet's class names, or y's values)."""
        if isinstance(X, WindowSet):
            if y is not None:
                raise HarlabError("HARClassifier: a WindowSet carries its labels; pass y only with an array X")
            if fitting:
                self.classes_ = np.asarray(X.classes)
            return X
        if y is None:
            raise HarlabError("HARClassifier.fit: y is missing; give labels for the windows X (or a WindowSet)")
        y = np.asarray(y)
        if len(y) != len(X):
            raise HarlabError(f"HARClassifier.fit: X has {len(X)} windows but y has {len(y)} labels")
        if fitting:
            self.classes_ = np.unique(y)
        codes = np.searchsorted(self.classes_, y)
        return WindowSet.from_arrays(X, codes, subjects, channels, tuple(map(str, self.classes_)), sampling_rate)

    # -- predicting -----------------------------------------------------------------------------------------

    def _inputs(self, X: WindowSet | np.ndarray) -> torch.Tensor:
        check_is_fitted(self, "model_")
        windows = X.channels_named(self.channels_).X if isinstance(X, WindowSet) else np.asarray(X, dtype=np.float32)
        if windows.ndim != 3 or windows.shape[1:] != (self.window_, len(self.channels_)):
            raise HarlabError(f"HARClassifier: X has shape {windows.shape}; this model takes windows "
                              f"[n, {self.window_}, {len(self.channels_)}] ({', '.join(self.channels_)})")
        return to_tensor(windows, self.standardizer_)

    @torch.no_grad()
    def predict_proba(self, X: WindowSet | np.ndarray) -> np.ndarray:
        """Class probabilities [n, classes] in the order of `classes_`."""
        return logits_of(self.model_, self._inputs(X)).softmax(-1).cpu().numpy()

    def predict(self, X: WindowSet | np.ndarray) -> np.ndarray:
        """The most probable class of every window."""
        return self.classes_[self.predict_proba(X).argmax(1)]

    def score(self, X: WindowSet | np.ndarray, y: np.ndarray | None = None,
              sample_weight: np.ndarray | None = None) -> float:
        """Accuracy on a WindowSet (its own labels) or on windows X with labels y."""
        if isinstance(X, WindowSet):
            if list(X.classes) != [str(c) for c in self.classes_]:
                raise HarlabError(f"HARClassifier.score: the windows' classes {list(X.classes)} are not the "
                                  f"model's {list(self.classes_)}")
            return super().score(X, self.classes_[X.y], sample_weight)
        return super().score(X, y, sample_weight)

    # -- bundles --------------------------------------------------------------------------------------------

    def save(self, folder: str | Path) -> Path:
        """Write a bundle (safetensors weights + JSON manifest) that `harlab predict`, `harlab export` and
        `HARClassifier.load` read."""
        check_is_fitted(self, "model_")
        return save_bundle(Path(folder), self.model_, model_name=self.config_.model,
                           hyperparameters=self.config_.hyperparameters, channels=list(self.channels_),
                           window=self.window_, step=self.step_, sampling_rate=self.sampling_rate_,
                           classes=[str(c) for c in self.classes_], standardizer=self.standardizer_,
                           metrics={"seed": self.seed_}, provenance=asdict(self.provenance_),
                           training=self.config_.model_dump(mode="json"), preprocessing=self.preprocessing_)

    @classmethod
    def load(cls, folder: str | Path) -> HARClassifier:
        """A fitted classifier from a bundle folder (its classes are the bundle's class names)."""
        bundle = load_bundle(Path(folder))
        manifest = bundle.manifest
        training = {k: v for k, v in manifest.get("training", {}).items() if k in TrainOverrides.model_fields}
        seed = manifest.get("metrics", {}).get("seed")
        clf = cls(manifest["model"], random_state=seed if isinstance(seed, int) else None,
                  hyperparameters=validate_hyperparameters(manifest["model"], manifest["hyperparameters"]), **training)
        clf.config_, clf.seed_ = clf._config(), seed
        clf.model_, clf.standardizer_ = bundle.model.eval(), bundle.standardizer
        clf.classes_ = np.asarray(bundle.classes)
        clf.channels_, clf.window_, clf.step_ = tuple(bundle.channels), bundle.window, manifest["step"]
        clf.sampling_rate_, clf.preprocessing_ = manifest["sampling_rate"], manifest.get("preprocessing")
        clf.provenance_ = Provenance(**manifest["provenance"])
        clf.n_features_in_ = len(bundle.channels)
        return clf


_PARAMETERS = (*TrainOverrides.model_fields, "hyperparameters", "random_state", "device", "callbacks")
_DEFAULTS: dict[str, Any] = {**{name: f.default for name, f in TrainOverrides.model_fields.items()},
                             "hyperparameters": None, "random_state": None, "device": None, "callbacks": None}
# scikit-learn reads an estimator's parameters from its __init__ signature: declare them from TrainConfig's fields.
HARClassifier.__init__.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
     inspect.Parameter("model", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None),
     *(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=_DEFAULTS[name]) for name in _PARAMETERS)])
