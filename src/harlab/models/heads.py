"""A model's classification head: the layer that maps its features to one logit per class.

Every registered model ends in an `nn.Linear` with one output per class (a Dense layer in Keras's words), so the
head is found without knowing the architecture: the last `nn.Linear` registered with `n_classes` outputs. The rest
of the model is its backbone. Fine-tuning (harlab.training.transfer) keeps the backbone's weights and keeps, picks
or replaces the head's rows.
"""

from __future__ import annotations

from torch import nn

from harlab.errors import HarlabError


def head_name(model: nn.Module, n_classes: int) -> str:
    """The dotted name of `model`'s classification head (its last nn.Linear with `n_classes` outputs)."""
    names = [name for name, layer in model.named_modules()
             if isinstance(layer, nn.Linear) and layer.out_features == n_classes]
    if not names:
        raise HarlabError(f"{type(model).__name__} has no nn.Linear layer with {n_classes} outputs (one per class) to "
                          "serve as its classification head; fine-tuning needs one")
    return names[-1]


def backbone_parameters(model: nn.Module, n_classes: int) -> list[nn.Parameter]:
    """Every parameter of `model` but its head's."""
    head = head_name(model, n_classes) + "."
    return [p for name, p in model.named_parameters() if not name.startswith(head)]


def head_of(model: nn.Module, n_classes: int) -> nn.Linear:
    """`model`'s classification head."""
    head: nn.Linear = model.get_submodule(head_name(model, n_classes))
    return head


def replace_head(model: nn.Module, n_classes: int, head: nn.Linear) -> None:
    """Put `head` in place of `model`'s classification head (of `n_classes` outputs)."""
    parent_name, _, attribute = head_name(model, n_classes).rpartition(".")
    setattr(model.get_submodule(parent_name), attribute, head)
