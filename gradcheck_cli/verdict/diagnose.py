"""Explain a gradient mismatch: test the classic backprop mistakes against the data.

Each candidate mistake is a *model* of what a wrong function would return (the reference
transposed, scaled by a named factor, another layer's gradient, backprop with the activation
derivative missing, ...). A model explains a gradient only when the relative residual
``||g - model|| / ||model||`` over the usable entries is within ``HINT_TOLERANCE_FACTOR * rtol``;
the hint states that residual. A gradient that agrees with the reference gets no hint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..problem import AnyProblem, Gradients, LayeredProblem
from .layer_mistakes import layered_variants
from .mistakes import activation_variants, fit_factor, name_factor, relative_residual

# A model explains the data when its relative residual is within this many times the check's
# rtol: loose enough for the reference's own error (finite differences, float32 backends),
# tight enough that a model with the wrong structure is off by orders of magnitude more.
HINT_TOLERANCE_FACTOR = 10.0
# Name at most this many wrong entries one by one; beyond it the mistake is not "a few entries".
MAX_NAMED_ENTRIES = 4


@dataclass(frozen=True)
class Explanation:
    """The best explanation of one parameter's mismatch."""

    kind: str  # zeros | transposed | factor | wrong-layer | activation | unsummed-bias | partial
    message: str
    residual: float
    factor: float | None = None


# (kind, description, model array, its usable entries): one candidate explanation.
Model = tuple[str, str, np.ndarray, np.ndarray]


def _index_text(name: str, index: tuple[int, ...]) -> str:
    return f"{name}[{', '.join(str(i) for i in index)}]"


def wrong_entries(name: str, bad: np.ndarray, usable: np.ndarray) -> str | None:
    """Name the wrong entries when they are a few whole columns/rows or a few entries (`W1[:, 2]`).

    A column counts as wrong when most of its usable entries are: entries whose reference is
    zero (e.g. behind a dead ReLU) can be right by accident even in a wrong column.
    """
    bad = bad & usable
    count, total = int(bad.sum()), int(usable.sum())
    if count == 0 or count == total:
        return None
    if bad.ndim == 2 and count > 1:
        for axis, pattern in ((0, "{name}[:, {j}]"), (1, "{name}[{j}, :]")):
            lines = np.flatnonzero(bad.any(axis=axis))
            n_lines = bad.shape[1 - axis]
            per_line_bad = bad.sum(axis=axis)[lines]
            per_line_usable = usable.sum(axis=axis)[lines]
            if (
                bad.shape[axis] > 1
                and len(lines) <= n_lines // 2
                and np.all(2 * per_line_bad > per_line_usable)
            ):
                return ", ".join(pattern.format(name=name, j=j) for j in lines)
    if count <= MAX_NAMED_ENTRIES:
        indices = [tuple(int(i) for i in idx) for idx in np.argwhere(bad)]
        return ", ".join(_index_text(name, idx) for idx in indices)
    return None


class Diagnoser:
    """Explains mismatches of one backend's gradients against a reference, for one problem."""

    def __init__(
        self,
        problem: AnyProblem,
        reference: Mapping[str, np.ndarray],
        usable: Mapping[str, np.ndarray] | None = None,
        rtol: float = 1e-5,
    ) -> None:
        self.problem = problem
        self.reference = {n: np.asarray(r, dtype=np.float64) for n, r in reference.items()}
        self.usable = {
            n: (
                np.asarray(usable[n], dtype=bool)
                if usable and n in usable
                else np.ones(r.shape, bool)
            )
            & np.isfinite(r)
            for n, r in self.reference.items()
        }
        self.tolerance = HINT_TOLERANCE_FACTOR * rtol
        self._variants: dict[str, Gradients] | None = None

    def variants(self) -> dict[str, Gradients]:
        """The activation-mistake variants, computed once on first use."""
        if self._variants is None:
            if isinstance(self.problem, LayeredProblem):
                self._variants = layered_variants(self.problem)
            else:
                self._variants = activation_variants(self.problem)
        return self._variants

    def _models(self, name: str, shape: tuple[int, ...]) -> list[Model]:
        """(kind, description, model, usable entries) candidates for the gradient of `name`."""
        ref, usable = self.reference[name], self.usable[name]
        models: list[Model] = []
        if ref.ndim == 2 and ref.T.shape == shape:
            text = "transposed: it matches the reference's transpose"
            models.append(("transposed", text, ref.T, usable.T))
        for other, oref in self.reference.items():
            if other == name:
                continue
            ousable = self.usable[other]
            candidates = [(oref, ousable, "")]
            if oref.ndim == 2:
                candidates.append((oref.T, ousable.T, " transposed"))
            for candidate, cusable, how in candidates:
                if candidate.shape == shape:
                    text = (
                        f"it matches the gradient of {other}{how}: gradients of the wrong "
                        "layer (returned in the wrong order, or off by one)"
                    )
                    models.append(("wrong-layer", text, candidate, cusable))
        for text, grads in self.variants().items():
            model = grads.by_name()[name]
            # A variant equal to the truth here (e.g. the last layer) explains nothing.
            if model.shape == shape and relative_residual(model, ref, usable) > self.tolerance:
                models.append(("activation", text, model, np.ones(shape, dtype=bool)))
        return models

    def _fits(
        self, g: np.ndarray, model: np.ndarray, mask: np.ndarray
    ) -> tuple[float, float, str | None] | None:
        """(residual, factor, its meaning) when `model`, maybe times a named factor, fits."""
        residual = relative_residual(g, model, mask)
        if residual <= self.tolerance:
            return residual, 1.0, None
        c = fit_factor(g, model, mask)
        if c is None:
            return None
        meaning = name_factor(c, self.problem, self.tolerance)
        residual = relative_residual(g, c * model, mask)
        if meaning is not None and residual <= self.tolerance:
            return residual, c, meaning
        return None

    def explain(
        self, name: str, g: np.ndarray, bad: np.ndarray | None = None
    ) -> Explanation | None:
        """The best explanation of why gradient `g` of parameter `name` disagrees, or None."""
        g = np.asarray(g, dtype=np.float64)
        ref = self.reference.get(name)
        if ref is None or g.shape != ref.shape:
            return None
        mask = self.usable[name]
        if not mask.any() or (bad is None and relative_residual(g, ref, mask) <= self.tolerance):
            return None
        ref_norm = float(np.linalg.norm(ref[mask]))
        if not np.any(g[mask]) and ref_norm > 0:
            return Explanation(
                "zeros",
                f"all entries are zero but the reference is not, ‖ref‖ = {ref_norm:.3g} "
                "(residual 0.0e+00)",
                0.0,
            )
        found: list[Explanation] = []
        c = fit_factor(g, ref, mask)
        if c is not None and not np.isclose(c, 1.0, rtol=self.tolerance):
            residual = relative_residual(g, c * ref, mask)
            meaning = name_factor(c, self.problem, self.tolerance)
            # One entry always fits some factor: only a named one means anything there.
            if residual <= self.tolerance and (meaning is not None or int(mask.sum()) > 1):
                text = f"off by a constant factor {c:.6g}" + (f": {meaning}" if meaning else "")
                found.append(Explanation("factor", text, residual, c))
        for kind, text, model, usable in self._models(name, g.shape):
            fit = self._fits(g, model, usable)
            if fit is None:
                continue
            residual, factor, meaning = fit
            if meaning is not None:
                text = f"{text}, and off by a factor {factor:.6g}: {meaning}"
            found.append(Explanation(kind, text, residual, factor))
        if found:
            best = min(found, key=lambda e: e.residual)
            return Explanation(
                best.kind,
                f"{best.message} (residual {best.residual:.1e})",
                best.residual,
                best.factor,
            )
        if bad is not None:
            where = wrong_entries(name, bad, mask)
            if where is not None:
                good = mask & ~bad
                rest = relative_residual(g, ref, good)
                plural = "is" if where.count("[") == 1 else "are"
                return Explanation(
                    "partial",
                    f"only {where} {plural} wrong; the other {int(good.sum())} entries match "
                    f"(residual {rest:.1e})",
                    rest,
                )
        return None

    def explain_shape(self, label: str, name: str, g: np.ndarray) -> str | None:
        """Explain an array whose shape differs from parameter `name`'s, e.g. DB[0] of (N, out)."""
        g = np.asarray(g, dtype=np.float64)
        ref = self.reference.get(name)
        if ref is None:
            return None
        shape = tuple(g.shape)
        mask = self.usable[name]
        found: list[tuple[float, str]] = []
        if ref.ndim == 1 and g.ndim == 2 and g.shape[1:] == ref.shape and g.shape[0] > 1:
            fit = self._fits(g.sum(axis=0), ref, mask)
            if fit is not None:
                residual, factor, meaning = fit
                extra = f", and off by a factor {factor:.6g}: {meaning}" if meaning else ""
                found.append(
                    (
                        residual,
                        f"{label} has shape {shape}: the bias gradient is not summed over the "
                        f"batch; its sum over the {shape[0]} samples matches the reference{extra}",
                    )
                )
        if g.size == ref.size and g.shape != ref.shape and g.ndim != ref.ndim:
            fit = self._fits(g.reshape(ref.shape), ref, mask)
            if fit is not None and fit[2] is None:
                found.append(
                    (
                        fit[0],
                        f"{label} has shape {shape}; its values match, return shape {ref.shape}",
                    )
                )
        for kind, text, model, usable in self._models(name, shape):
            if kind == "activation":
                continue
            fit = self._fits(g, model, usable)
            if fit is not None:
                residual, factor, meaning = fit
                extra = f", and off by a factor {factor:.6g}: {meaning}" if meaning else ""
                found.append((residual, f"{label} has shape {shape}; {text}{extra}"))
        if not found:
            return None
        residual, text = min(found)
        return f"{text} (residual {residual:.1e})"

    def rejected_hints(self, grads: Gradients) -> list[str]:
        """Hints for gradients that failed validation (wrong shapes): what each array looks like."""
        hints: list[str] = []
        if grads.named is not None:
            return self._rejected_named(grads.named)
        for label, arrays, prefix in (("DW", grads.dW, "W"), ("DB", grads.dB, "B")):
            for i, g in enumerate(arrays or ()):
                name = f"{prefix}{i}"
                try:
                    array = np.asarray(g, dtype=np.float64)
                except (TypeError, ValueError):
                    continue
                ref = self.reference.get(name)
                if ref is None:
                    # Beyond the last layer: it can still be another layer's gradient.
                    ref_name = next(iter(self.reference), None)
                    if ref_name is None:
                        continue
                    hint = self.explain_shape(f"{label}[{i}]", ref_name, array)
                elif array.shape == ref.shape:
                    if not np.all(np.isfinite(array)):
                        continue
                    explanation = self.explain(name, array)
                    hint = f"{name}: {explanation.message}" if explanation else None
                else:
                    hint = self.explain_shape(f"{label}[{i}]", name, array)
                if hint:
                    hints.append(hint)
        return hints

    def _rejected_named(self, named: Mapping[str, np.ndarray]) -> list[str]:
        """rejected_hints for gradients keyed by name: what each array of a wrong shape is."""
        hints = []
        for name, g in named.items():
            try:
                array = np.asarray(g, dtype=np.float64)
            except (TypeError, ValueError):
                continue
            ref = self.reference.get(name)
            if ref is None:
                continue
            if array.shape != ref.shape:
                hint = self.explain_shape(name, name, array)
            elif np.all(np.isfinite(array)):
                explanation = self.explain(name, array)
                hint = f"{name}: {explanation.message}" if explanation else None
            else:
                hint = None
            if hint:
                hints.append(hint)
        return hints

    def summary(self, explanations: Mapping[str, Explanation]) -> list[str]:
        """A backend-level hint when every failing parameter has the same named factor."""
        factors = [e.factor for e in explanations.values() if e.kind == "factor"]
        if len(explanations) < 2 or len(factors) != len(explanations) or factors[0] is None:
            return []
        first = factors[0]
        if all(f is not None and np.isclose(f, first, rtol=self.tolerance) for f in factors):
            meaning = name_factor(first, self.problem, self.tolerance)
            if meaning:
                return [f"every failing parameter is off by the same factor {first:.6g}: {meaning}"]
        return []
