"""How activities follow each other, as a hidden Markov model over a recording's windows: the transition matrix
and class priors counted on the training windows' label sequences, stored in the bundle, and the decoders that
use them on a timeline's window probabilities.

The model's window probabilities p(class | window) divided by the class priors are the emission likelihoods
(the hybrid network/HMM rule, up to a factor that does not change the decoding). Offline, Viterbi gives the most
likely sequence of activities and forward-backward each window's posterior; a stream, which cannot look ahead,
gets the forward (filtering) posterior.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import fractional_matrix_power

PSEUDO_COUNT = 1.0  # added to every transition count: a transition never seen in training stays possible


@dataclass(frozen=True)
class Transitions:
    """Row-stochastic transition probabilities between consecutive windows `step` samples apart, and the class
    priors of the training windows."""

    step: int
    matrix: np.ndarray
    priors: np.ndarray

    @classmethod
    def count(cls, labels: np.ndarray, groups: np.ndarray, n_classes: int, step: int) -> Transitions:
        """Estimate from window labels in recording order; a transition is counted between consecutive windows
        of the same group (subject or recording), never across groups."""
        counts = np.full((n_classes, n_classes), PSEUDO_COUNT)
        same = groups[1:] == groups[:-1]
        np.add.at(counts, (labels[:-1][same], labels[1:][same]), 1)
        priors = np.bincount(labels, minlength=n_classes) + PSEUDO_COUNT
        return cls(step, counts / counts.sum(1, keepdims=True), priors / priors.sum())

    @classmethod
    def from_dict(cls, data: dict) -> Transitions:
        return cls(int(data["step"]), np.asarray(data["matrix"], dtype=np.float64),
                   np.asarray(data["priors"], dtype=np.float64))

    def to_dict(self) -> dict:
        return {"step": self.step, "matrix": self.matrix.round(6).tolist(), "priors": self.priors.round(6).tolist()}

    def at_step(self, step: int) -> np.ndarray:
        """The transition matrix between windows `step` samples apart (a fractional power of the stored one)."""
        if step == self.step:
            return self.matrix
        ratio = step / self.step
        power = (np.linalg.matrix_power(self.matrix, round(ratio)) if float(ratio).is_integer()
                 else np.real(fractional_matrix_power(self.matrix, ratio)))
        power = np.clip(power, 1e-12, None)
        return power / power.sum(1, keepdims=True)

    def emissions(self, probabilities: np.ndarray) -> np.ndarray:
        """Scaled likelihoods p(window | class) ∝ p(class | window) / p(class), [n, classes]."""
        return np.clip(probabilities, 1e-12, None) / self.priors

    def viterbi(self, probabilities: np.ndarray, step: int) -> np.ndarray:
        """The most likely class sequence for window probabilities [n, classes] of windows `step` apart."""
        log_transition = np.log(self.at_step(step))
        log_emission = np.log(self.emissions(probabilities))
        score = np.log(self.priors) + log_emission[0]
        back = np.zeros(probabilities.shape, dtype=np.int64)
        for t in range(1, len(probabilities)):
            candidates = score[:, None] + log_transition  # [from, to]
            back[t] = candidates.argmax(0)
            score = candidates.max(0) + log_emission[t]
        path = np.empty(len(probabilities), dtype=np.int64)
        path[-1] = score.argmax()
        for t in range(len(probabilities) - 1, 0, -1):
            path[t - 1] = back[t, path[t]]
        return path

    def posteriors(self, probabilities: np.ndarray, step: int) -> np.ndarray:
        """Each window's class posterior given the whole recording (forward-backward), [n, classes]."""
        transition = self.at_step(step)
        forward = self.filtered(probabilities, step)
        emission = self.emissions(probabilities)
        backward = np.ones_like(forward)
        for t in range(len(probabilities) - 2, -1, -1):
            message = transition @ (emission[t + 1] * backward[t + 1])
            backward[t] = message / message.sum()
        joint = forward * backward
        return joint / joint.sum(1, keepdims=True)

    def filtered(self, probabilities: np.ndarray, step: int, previous: np.ndarray | None = None) -> np.ndarray:
        """Each window's class posterior given the windows up to it (forward algorithm), [n, classes]; `previous`
        continues from the last posterior of an earlier call (a stream)."""
        transition = self.at_step(step)
        emission = self.emissions(probabilities)
        out = np.empty_like(emission)
        belief = self.priors if previous is None else previous @ transition
        for t in range(len(probabilities)):
            if t:
                belief = out[t - 1] @ transition
            unnormalized = belief * emission[t]
            out[t] = unnormalized / unnormalized.sum()
        return out
