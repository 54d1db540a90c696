"""Regenerate the bundled default problem: the exercise's 4-6-6-6-1 ReLU network.

Run from the repository root:  python data/make_exercise_problem.py

X and T are standard normal (20 samples), weights are normal with standard
deviation 1/sqrt(fan_in), biases are small non-zero normals (std 0.1). The
seed is the first one, counting up from SEED_START, for which no hidden
pre-activation lies within MIN_MARGIN of zero, so finite differences never
cross a ReLU kink at the default point.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

LAYERS = (4, 6, 6, 6, 1)
SAMPLES = 20
SEED_START = 2022
MIN_MARGIN = 1e-3
OUTPUT = Path(__file__).resolve().parents[1] / "gradcheck_cli" / "data" / "exercise.npz"


def make(seed: int) -> dict[str, np.ndarray]:
    """Draw one candidate problem from `seed`."""
    rng = np.random.default_rng(seed)
    arrays = {
        "X": rng.standard_normal((SAMPLES, LAYERS[0])),
        "T": rng.standard_normal((SAMPLES, LAYERS[-1])),
    }
    for i, (fan_in, fan_out) in enumerate(zip(LAYERS[:-1], LAYERS[1:])):
        arrays[f"W{i}"] = rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)
        arrays[f"B{i}"] = 0.1 * rng.standard_normal(fan_out)
    return arrays


def smallest_margin(arrays: dict[str, np.ndarray]) -> float:
    """Smallest |pre-activation| over all hidden units and samples."""
    a = arrays["X"]
    margin = np.inf
    for i in range(len(LAYERS) - 2):
        z = a @ arrays[f"W{i}"] + arrays[f"B{i}"]
        margin = min(margin, float(np.abs(z).min()))
        a = np.maximum(z, 0.0)
    return margin


def main() -> None:
    seed = SEED_START
    while smallest_margin(make(seed)) < MIN_MARGIN:
        seed += 1
    arrays = make(seed)
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez(OUTPUT, **arrays)
    print(f"seed {seed}: smallest margin {smallest_margin(arrays):.3g}; wrote {OUTPUT}")


if __name__ == "__main__":
    main()
