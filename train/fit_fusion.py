"""Fit the stacker MLP on held-out branch predictions, plus temperatures and the "not sure" threshold."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from emotion.fusion import FusionMLP, softmax, stacker_input


@dataclass
class Example:
    """One stacker example: calibrated branch probabilities (None = modality missing) and the label."""

    audio: np.ndarray | None
    face: np.ndarray | None
    label: int


def pair_by_emotion(audio: list[tuple[np.ndarray, int]], face: list[tuple[np.ndarray, int]], per_class: int,
                    rng: np.random.Generator, drop: float = 0.25) -> list[Example]:
    """Pair audio and face predictions of the same emotion (no paired audio-video data here), with
    modality dropout: a `drop` share of examples lose the audio, another `drop` share lose the face."""
    out = []
    n_classes = 1 + max([y for _, y in audio] + [y for _, y in face])
    for c in range(n_classes):
        a = [p for p, y in audio if y == c]
        f = [p for p, y in face if y == c]
        for _ in range(per_class):
            pa = a[rng.integers(len(a))] if a else None
            pf = f[rng.integers(len(f))] if f else None
            r = rng.random()
            if r < drop and pf is not None:
                pa = None
            elif r < 2 * drop and pa is not None:
                pf = None
            if pa is not None or pf is not None:
                out.append(Example(pa, pf, c))
    return out


def with_dropout(pairs: list[Example], rng: np.random.Generator, drop: float = 0.25) -> list[Example]:
    """True audio-video pairs (from --data), with the same modality dropout as pair_by_emotion."""
    out = []
    for ex in pairs:
        r = rng.random()
        out.append(Example(None if r < drop else ex.audio, None if drop <= r < 2 * drop else ex.face, ex.label))
    return out


def to_arrays(examples: list[Example], n_classes: int = 6) -> tuple[np.ndarray, np.ndarray]:
    x = np.stack([stacker_input(e.audio, e.face, n_classes) for e in examples])
    return x, np.array([e.label for e in examples], dtype=np.int64)


def fit_stacker(x: np.ndarray, y: np.ndarray, epochs: int = 150, seed: int = 0) -> tuple[FusionMLP, list[float]]:
    torch.manual_seed(seed)
    net = FusionMLP(n_classes=int(y.max()) + 1 if len(y) else 6)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    losses = []
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(len(xt), generator=g)
        total = 0.0
        for s in range(0, len(perm), 64):
            idx = perm[s:s + 64]
            loss = nn.functional.cross_entropy(net(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(xt))
    return net.eval(), losses


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood (a fine grid search: robust, no tuning)."""
    if len(y) == 0:
        return 1.0
    grid = np.exp(np.linspace(np.log(0.25), np.log(8.0), 200))
    nll = [-np.mean(np.log(softmax(logits, t)[np.arange(len(y)), y] + 1e-12)) for t in grid]
    return float(grid[int(np.argmin(nll))])


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    conf = probs.max(1)
    correct = probs.argmax(1) == y
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for a, b in zip(edges[:-1], edges[1:]):
        m = (conf > a) & (conf <= b)
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(ece)


def reliability(probs: np.ndarray, y: np.ndarray, bins: int = 10) -> dict[str, list[float]]:
    """Per confidence bin: mean confidence, accuracy and count (for the reliability diagram)."""
    conf = probs.max(1)
    correct = probs.argmax(1) == y
    edges = np.linspace(0, 1, bins + 1)
    out = {"confidence": [], "accuracy": [], "count": []}
    for a, b in zip(edges[:-1], edges[1:]):
        m = (conf > a) & (conf <= b)
        if m.any():
            out["confidence"].append(float(conf[m].mean()))
            out["accuracy"].append(float(correct[m].mean()))
            out["count"].append(int(m.sum()))
    return out


def not_sure_threshold(probs: np.ndarray, y: np.ndarray, target_precision: float = 0.8) -> float:
    """The lowest top-probability above which answers are right at least `target_precision` of the time
    on validation data (clamped to 0.35–0.7 so it stays meaningful on small sets)."""
    conf = probs.max(1)
    correct = probs.argmax(1) == y
    for t in np.arange(0.2, 0.95, 0.01):
        m = conf >= t
        if m.sum() >= 10 and correct[m].mean() >= target_precision:
            return float(np.clip(round(t, 2), 0.35, 0.7))
    return 0.7
