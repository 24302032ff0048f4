"""Reference fixtures for weight converters: random weights regenerated from a seed.

A fixture stores, from a run of the publisher's own code (the committed ``make_*.py`` script
beside it), the key names, shapes and dtypes of its state dict, the seeds, and the reference
outputs for a seeded input batch. Tests regenerate the very same weights with
:func:`random_state`, write them in the publisher's file layout, convert and compare outputs
to the stored ones. The weights themselves are never committed, so fixtures stay a few KB
even for full-width models.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np


def random_state(spec: Sequence[tuple[str, Sequence[int], str]], seed: int,
                 scales: dict[str, float] | None = None, gain: float = 1.0) -> dict[str, np.ndarray]:
    """Deterministic random tensors for ``spec`` rows ``(key, shape, dtype)``.

    Scales keep a deep random network's activations finite: conv/linear weights He-normal,
    BatchNorm scale and variance in [0.5, 1.5], shifts and means small, integer counters 0.
    ``scales`` multiplies named tensors afterwards: random BatchNorm statistics do not
    normalise, so a fixture scales its classifier to bring logits near 1, where a 1e-4
    absolute comparison is meaningful in float32 and softmax is not saturated. ``gain``
    multiplies every conv/linear weight (multi-branch blocks that add their branches grow
    activations by each block; a gain below 1 keeps them near unit scale).
    """
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for key, shape, dtype in spec:
        shape = tuple(int(s) for s in shape)
        if not np.issubdtype(np.dtype(dtype), np.floating):
            out[key] = np.zeros(shape, dtype=dtype)
            continue
        leaf = key.rsplit(".", 1)[-1]
        if leaf in ("running_var", "_variance") or (len(shape) == 1 and leaf == "weight"):
            value = rng.uniform(0.5, 1.5, shape)
        elif len(shape) <= 1:
            value = rng.normal(0.0, 0.1, shape)
        else:
            fan_in = int(np.prod(shape[1:]))
            value = rng.normal(0.0, gain * np.sqrt(2.0 / max(1, fan_in)), shape)
        out[key] = (value * (scales or {}).get(key, 1.0)).astype(dtype)
    return out


def input_batch(seed: int, shape: Sequence[int] = (2, 3, 64, 64)) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 1.0, tuple(shape)).astype("float32")


def save_fixture(path: str, *, spec: Sequence[tuple[str, Sequence[int], str]], weight_seed: int,
                 input_seed: int, input_shape: Sequence[int], outputs: np.ndarray, made_by: str,
                 extra: dict | None = None) -> None:
    """Write a fixture as ``.npz``: outputs as an array, everything else as JSON text."""
    meta = {
        "spec": [[k, list(map(int, s)), str(d)] for k, s, d in spec],
        "weight_seed": int(weight_seed),
        "input_seed": int(input_seed),
        "input_shape": list(map(int, input_shape)),
        "made_by": made_by,
        **(extra or {}),
    }
    np.savez_compressed(path, outputs=np.asarray(outputs, dtype="float32"), meta=np.array(json.dumps(meta)))


def load_fixture(path: str) -> tuple[dict, np.ndarray]:
    """(meta, reference outputs) of a fixture written by :func:`save_fixture`."""
    with np.load(path) as data:
        return json.loads(str(data["meta"])), data["outputs"]
