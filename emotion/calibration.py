"""Temperature scaling: the one place where a model's logits become calibrated probabilities.

Inference (emotion.pipeline, emotion.fusion) and training (train.calibration, which fits the
temperatures) both call `calibrate`, so what was measured is exactly what is served.
"""

from __future__ import annotations

import numpy as np


def calibrate(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """softmax(logits / temperature), row by row: T > 1 softens over-confident models, T < 1 sharpens."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    if z.size == 0:
        return z.astype(np.float32)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise log-probabilities of scores (the linear heads: the prosody regression, the face baseline)."""
    z = np.asarray(z, dtype=np.float32)
    z = z - z.max(axis=-1, keepdims=True)
    return (z - np.log(np.exp(z).sum(axis=-1, keepdims=True))).astype(np.float32)


def as_logits(probabilities: np.ndarray) -> np.ndarray:
    """Log-probabilities, for models that output probabilities (the face LSTM): calibrate(as_logits(p)) == p."""
    return np.log(np.clip(np.asarray(probabilities, dtype=np.float64), 1e-7, 1.0))
