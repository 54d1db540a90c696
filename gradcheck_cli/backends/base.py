"""The Backend interface: a Problem in, Gradients out, nothing printed."""

from __future__ import annotations

from abc import ABC, abstractmethod

from ..problem import Gradients, Problem


class Backend(ABC):
    """One independent way of computing dLoss/dParams."""

    name: str = ""
    kind: str = "builtin"
    description: str = ""

    @abstractmethod
    def gradients(self, problem: Problem) -> Gradients:
        """Compute the loss and its gradients in `problem.dtype`."""
