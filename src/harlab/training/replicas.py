"""Several seeded runs of one configuration trained as one batched computation: the replicas' weights stacked
and their forward and backward passes vectorized over the stack (torch.func.vmap).

On a GPU one run's batch of 32 windows leaves the device mostly idle; R replicas give it R times the work per
kernel. Each replica keeps what makes it a separate run: its weights initialised from its own seed, its own
shuffling and augmentation (its own data generator) and its own dropout masks, drawn from its own generator in
the order a run trained alone draws them. A replica therefore ends where the run trained alone with its seed
ends, within float tolerance (tests/test_replicas.py). Adam, weight decay and a cosine schedule act
element by element or by step, so one optimizer over the stacked weights updates each replica as its own would.

What a replica cannot share with the others is refused by `replicas_refusal`: a validation set (each run
holds out its own subjects), a plateau schedule (each replica's learning rate would follow its own loss), an
ensemble's members, a self-fitting model, and a model whose layers vmap cannot batch (torch's LSTM kernel).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from harlab.models.contract import Contract
from harlab.models.layers import masks_from
from harlab.training.callbacks import Callback, FitState, History, call
from harlab.training.config import TrainConfig
from harlab.training.device import Precision, autocast, check_precision, gradient_scaler, resolve_device
from harlab.training.loop import Augment, check_classes, epoch_order, make_optimizer, make_scheduler, take_step
from harlab.training.seeding import seed_everything

Weights = dict[str, torch.Tensor]


def replicas_refusal(model: nn.Module, config: TrainConfig, example: torch.Tensor) -> str | None:
    """Why runs of `model` under `config` cannot train as replicas, or None when they can; `example` is one or
    more windows [n, channels, time] the model takes."""
    contract = Contract.of(model)
    if config.validation_split:
        return "each run holds out its own validation subjects (validation_split > 0)"
    if config.schedule == "plateau":
        return "a plateau schedule follows each run's own loss"
    if contract.self_fitting:
        return f"{type(model).__name__} fits itself in closed form"
    if contract.members > 1:
        return f"{type(model).__name__} is an ensemble of {contract.members} members"
    return _vmap_refusal(model, example[:1].cpu())


def _vmap_refusal(model: nn.Module, example: torch.Tensor) -> str | None:
    """Try the model's training forward, vectorized over two stacked copies of itself, on the CPU."""
    probe = copy.deepcopy(model).cpu().train()
    weights, buffers = stack_module_state([probe, probe])
    try:
        with torch.no_grad(), masks_from(lambda x, _: torch.ones_like(x)):
            batched = vmap(lambda w, b, x: functional_call(probe, (w, b), (x,)))
            batched(weights, buffers, example.expand(2, *example.shape))
    except RuntimeError as error:
        return f"vmap cannot batch {type(model).__name__}: {str(error).splitlines()[0]}"
    return None


class _DropoutMasks:
    """Each replica's dropout masks for one step, drawn from its own generator in the order its layers ask (as
    `dropout_mask` draws them for a run alone), stacked [replicas, ...] and handed to the layers, in that order,
    inside the vectorized forward."""

    def __init__(self, model: nn.Module, seeds: Sequence[int], device: torch.device, precision: Precision):
        self.model, self.device, self.precision = model, device, precision
        self.generators = [torch.Generator(device=device).manual_seed(seed) for seed in seeds]
        self._calls: dict[tuple[int, ...], list[tuple[torch.Size, torch.dtype, float]]] = {}

    def _calls_for(self, batch: torch.Tensor) -> list[tuple[torch.Size, torch.dtype, float]]:
        """The (shape, dtype, p) of each dropout call for one replica's batch, in order, found by one forward of
        the model's own weights that records them (no generator is touched)."""
        key = tuple(batch.shape)
        if key not in self._calls:
            calls: list[tuple[torch.Size, torch.dtype, float]] = []

            def record(x: torch.Tensor, p: float) -> torch.Tensor:
                calls.append((x.shape, x.dtype, p))
                return torch.ones_like(x)

            with torch.no_grad(), masks_from(record), autocast(self.device, self.precision):
                self.model(batch)
            self._calls[key] = calls
        return self._calls[key]

    def draw(self, batch: torch.Tensor) -> list[torch.Tensor]:
        """One step's masks, [replicas, *shape] per dropout call, for `batch` (one replica's windows)."""
        return [torch.stack([torch.rand(shape, generator=g, dtype=dtype, device=self.device)
                             for g in self.generators]).ge_(p).mul_(1 / (1 - p))
                for shape, dtype, p in self._calls_for(batch)]


class _WithPenalty(nn.Module):
    """The model's logits and its contract's penalty from one call, so that functional_call swaps the weights
    of both."""

    def __init__(self, model: nn.Module, contract: Contract):
        super().__init__()
        self.model, self.contract = model, contract

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        penalty = self.contract.penalty()
        return self.model(x), torch.zeros((), device=x.device) if penalty is None else penalty


class _Constrain(nn.Module):
    def __init__(self, model: nn.Module, contract: Contract):
        super().__init__()
        self.model, self.contract = model, contract

    def forward(self) -> None:
        self.contract.constrain()


def _replica_forward(model: nn.Module, contract: Contract) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """One replica's (logits, penalty) from its weights, buffers, batch and dropout masks; vmap batches it."""
    wrapper = _WithPenalty(model, contract)

    def forward(weights: Weights, buffers: Weights, x: torch.Tensor, masks: list[torch.Tensor]
                ) -> tuple[torch.Tensor, torch.Tensor]:
        pending = iter(masks)
        with masks_from(lambda _x, _p: next(pending)):
            return functional_call(wrapper, (_prefixed(weights), _prefixed(buffers)), (x,))

    return forward


def _prefixed(tensors: Weights) -> Weights:
    return {f"model.{name}": tensor for name, tensor in tensors.items()}


def fit_replicas(models: Sequence[nn.Module], X: torch.Tensor, y: torch.Tensor, config: TrainConfig,
                 seeds: Sequence[int], augment: Augment | None = None,
                 callbacks: Sequence[Sequence[Callback]] = (), device: torch.device | str | None = None,
                 class_weights: torch.Tensor | None = None) -> list[History]:
    """Train `models` (replica i built from seeds[i], all of one architecture) in place on the same X, y, as one
    batched computation on `device`; return each replica's history. Each equals `fit(models[i], X, y, config,
    seeds[i], augment=augment, class_weights=class_weights)` within float tolerance. `callbacks[i]` follow
    replica i (its fit state's model holds its final weights only at the end); each history's fit_seconds is its
    share, the batch's time / replicas. Refuses, with `replicas_refusal`'s reason, what cannot be batched."""
    if reason := replicas_refusal(models[0], config, X):
        raise ValueError(f"these runs cannot train as replicas: {reason}")
    check_classes(y)
    target = resolve_device(device)
    check_precision(config.precision, target)
    hooks = [list(c) for c in callbacks] or [[] for _ in models]
    states = [FitState(m, config.epochs, History(device=str(target), precision=config.precision)) for m in models]
    for replica_hooks, state in zip(hooks, states, strict=True):
        call(replica_hooks, "on_fit_start", state)
    start = time.perf_counter()
    replicas = _Replicas(models, seeds, config, target, steps_per_epoch=-(-len(X) // config.batch_size),
                         class_weights=class_weights)
    X, y = X.to(target), y.to(target)
    for epoch in range(1, config.epochs + 1):
        losses, accuracies = replicas.train_epoch(X, y, augment)
        for state, replica_hooks, loss, accuracy in zip(states, hooks, losses, accuracies, strict=True):
            state.history.loss.append(loss)
            state.history.accuracy.append(accuracy)
            state.epoch = epoch
            call(replica_hooks, "on_epoch_end", state)
    replicas.unstack(models)
    seconds = time.perf_counter() - start
    for replica_hooks, state in zip(hooks, states, strict=True):
        state.history.fit_seconds = seconds / len(models)  # its share of the batch, comparable with a run alone
        call(replica_hooks, "on_fit_end", state)
    return [state.history for state in states]


class _Replicas:
    """The replicas' stacked weights and buffers, their batched forward, one optimizer and schedule over the
    stack, each replica's data generator (shuffling, augmentation) and dropout masks."""

    def __init__(self, models: Sequence[nn.Module], seeds: Sequence[int], config: TrainConfig,
                 device: torch.device, steps_per_epoch: int, class_weights: torch.Tensor | None):
        self.config, self.device, self.count = config, device, len(models)
        self.generators = [seed_everything(seed) for seed in seeds]  # each run's own shuffling and augmentation
        self.template = models[0]
        for model in models:
            model.to(device).train()
        self.weights, self.buffers = stack_module_state(list(models))
        self.contract = Contract.of(self.template)
        self.masks = _DropoutMasks(self.template, seeds, device, config.precision)
        self.forward = vmap(_replica_forward(self.template, self.contract))
        self.optimizer = make_optimizer(self.weights.values(), config, device)
        self.scaler = gradient_scaler(device, config.precision)
        self.loss = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing, reduction="none")
        self.class_weights = None if class_weights is None else class_weights.to(device)
        self.scheduler = make_scheduler(self.optimizer, config, steps_per_epoch)

    def train_epoch(self, X: torch.Tensor, y: torch.Tensor, augment: Augment | None) -> tuple[list[float], list[float]]:
        """One epoch of every replica on its own shuffle of X, y; each replica's (loss, accuracy), read once."""
        batch_size = self.config.batch_size
        order = torch.stack([epoch_order(y, self.config, g) for g in self.generators]).to(self.device)
        X_epoch, y_epoch = X[order], y[order]  # [replicas, n, ...]: each replica's own shuffle, gathered once
        total_loss = torch.zeros(self.count, device=self.device)
        correct = torch.zeros(self.count, dtype=torch.long, device=self.device)
        for first in range(0, len(X), batch_size):
            xb, yb = X_epoch[:, first:first + batch_size], y_epoch[:, first:first + batch_size]
            if augment is not None:
                xb = torch.stack([augment(xb[i], g) for i, g in enumerate(self.generators)])
            losses, logits = self._step(xb, yb)
            total_loss += losses * yb.shape[1]
            correct += (logits.argmax(-1) == yb).sum(1)
        return (total_loss / len(X)).tolist(), (correct / len(X)).tolist()

    def _step(self, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.device, self.config.precision):
            logits, penalties = self.forward(self.weights, self.buffers, xb, self.masks.draw(xb[0]))
            losses = self._mean_loss(logits, yb) + penalties
        take_step(losses.sum(), self.optimizer, self.scaler)  # replica i's gradients: those of its own loss alone
        self._constrain()
        if isinstance(self.scheduler, torch.optim.lr_scheduler.CosineAnnealingLR):
            self.scheduler.step()
        return losses.detach(), logits.detach()

    def _mean_loss(self, logits: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        """Each replica's loss as a run alone computes it: the mean, weighted by class when weights are given."""
        per_window = self.loss(logits.flatten(0, 1), yb.flatten()).view(self.count, -1)
        if self.class_weights is None:
            return per_window.mean(1)
        weights = self.class_weights[yb]
        return (per_window * weights).sum(1) / weights.sum(1)

    @torch.no_grad()
    def _constrain(self) -> None:
        """Each replica's weight constraints, applied in place to its slice of the stack."""
        if not self.contract.constrained:
            return
        constrain = _Constrain(self.template, self.contract)
        for i in range(self.count):  # in place: the slices are views of the stacked weights
            functional_call(constrain, _prefixed({name: w[i] for name, w in self.weights.items()}), ())

    @torch.no_grad()
    def unstack(self, models: Sequence[nn.Module]) -> None:
        """Copy each replica's weights and buffers back into its model."""
        stacked = self.weights | self.buffers
        for i, model in enumerate(models):
            for name, tensor in (*model.named_parameters(), *model.named_buffers()):
                if name in stacked:
                    tensor.copy_(stacked[name][i])
