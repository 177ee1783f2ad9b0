"""Fit the stacker MLP on out-of-fold branch predictions, and measure it by an outer loop over the folds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from emotion.fusion import FusionMLP, stacker_input


@dataclass
class Example:
    """One stacker example: calibrated branch probabilities (None = modality missing) and the label."""

    audio: np.ndarray | None
    face: np.ndarray | None
    label: int
    fold: int = 0


def pair_by_emotion(audio: list[tuple[np.ndarray, int]], face: list[tuple[np.ndarray, int]], n_classes: int,
                    per_class: int, rng: np.random.Generator, drop: float = 0.25, fold: int = 0) -> list[Example]:
    """Pair audio and face predictions of the same emotion (no paired audio-video data here), with
    modality dropout: a `drop` share of examples lose the audio, another `drop` share lose the face."""
    out = []
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
                out.append(Example(pa, pf, c, fold))
    return out


def with_dropout(pairs: list[Example], rng: np.random.Generator, drop: float = 0.25) -> list[Example]:
    """True audio-video pairs (from --data), with the same modality dropout as pair_by_emotion."""
    out = []
    for ex in pairs:
        r = rng.random()
        out.append(Example(None if r < drop else ex.audio, None if drop <= r < 2 * drop else ex.face, ex.label, ex.fold))
    return out


def to_arrays(examples: list[Example], n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.stack([stacker_input(e.audio, e.face, n_classes) for e in examples])
    return x, np.array([e.label for e in examples], dtype=np.int64)


def fit_stacker(x: np.ndarray, y: np.ndarray, n_classes: int, epochs: int = 150, seed: int = 0
                ) -> tuple[FusionMLP, list[float]]:
    torch.manual_seed(seed)
    net = FusionMLP(n_classes=n_classes)
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


def cross_fit_stacker(examples: list[Example], n_classes: int, seed: int = 0
                      ) -> tuple[FusionMLP, np.ndarray, list[float], dict[int, FusionMLP]]:
    """The stacker that ships (fitted on every example) and, for its figures, each example's stacker logits
    from a stacker fitted on the other folds' examples only; those fold stackers too (fold → stacker), to ask
    about new pairs of a fold's speakers."""
    x, y = to_arrays(examples, n_classes)
    folds = np.array([e.fold for e in examples])
    oof = np.zeros((len(y), n_classes), np.float32)
    nets = {}
    for k in np.unique(folds):
        here = folds == k
        if (~here).any():
            nets[int(k)], _ = fit_stacker(x[~here], y[~here], n_classes, seed=seed + int(k))
            oof[here] = nets[int(k)].logits(x[here])
    stacker, losses = fit_stacker(x, y, n_classes, seed=seed)
    return stacker, oof, losses, nets
