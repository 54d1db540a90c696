"""The Backend interface: a Problem in, Gradients out, nothing printed."""

from __future__ import annotations

from abc import ABC, abstractmethod

from ..problem import AnyProblem, Gradients


class Backend(ABC):
    """One independent way of computing dLoss/dParams."""

    name: str = ""
    kind: str = "builtin"
    description: str = ""

    @abstractmethod
    def gradients(self, problem: AnyProblem) -> Gradients:
        """Compute the loss and its gradients in `problem.dtype` (an MLP Problem, or a
        LayeredProblem: then Gradients.named, keyed by state_dict name)."""
