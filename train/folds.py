"""Folds for cross-fitting: K groups of speakers (the reported protocol) or of clips (random, for comparison).

Every item gets a fold number. A fold's models train on the other folds and predict this one, so
every item gets an out-of-fold (OOF) prediction from models that never heard or saw its speaker.
Inside the training folds a few more speakers are held back to pick the best epoch (`inner_validation`),
so no choice is ever made on the fold being predicted. Folds are seeded and written to JSON.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .datasets import Item

INNER_SHARE = 0.15  # share of a fold's training speakers held back for the best epoch


def speaker_folds(items: list[Item], k: int, seed: int = 0) -> dict[str, int]:
    """{item path: fold}. Each dataset's speakers are shuffled and dealt to the fold with the fewest of that
    dataset's items so far, so every fold holds a share of every dataset and no speaker is in two folds."""
    count_of: dict[str, Counter] = defaultdict(Counter)
    for it in items:
        count_of[it.dataset][it.speaker] += 1
    rng = random.Random(seed)
    fold_of_speaker: dict[str, int] = {}
    for dataset in sorted(count_of):
        speakers = sorted(count_of[dataset])
        rng.shuffle(speakers)
        load = [0] * k
        for s in sorted(speakers, key=lambda s: -count_of[dataset][s]):  # big speakers first: even folds
            fold = min(range(k), key=lambda f: (load[f], f))
            fold_of_speaker[s] = fold
            load[fold] += count_of[dataset][s]
    return {it.path: fold_of_speaker[it.speaker] for it in items}


def random_folds(items: list[Item], k: int, seed: int = 0) -> dict[str, int]:
    """{item path: fold}, stratified by dataset and emotion, speakers ignored: the original write-up's kind
    of split, in which the same actors are on both sides (it measures memory of the actors)."""
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for it in items:
        groups[(it.dataset, it.emotion)].append(it.path)
    rng = random.Random(seed)
    fold = {}
    offset = 0
    for key in sorted(groups):
        paths = sorted(groups[key])
        rng.shuffle(paths)
        for i, p in enumerate(paths):
            fold[p] = (i + offset) % k
        offset += len(paths)
    return fold


def assign(items: list[Item], k: int, mode: str = "speaker", seed: int = 0) -> dict[str, int]:
    if k < 2:
        raise ValueError("cross-fitting needs at least 2 folds")
    if mode == "speaker":
        return speaker_folds(items, k, seed)
    if mode == "random":
        return random_folds(items, k, seed)
    raise ValueError(f"unknown split mode {mode!r}")


def inner_validation(items: list[Item], fold_of: dict[str, int], fold: int, mode: str = "speaker", seed: int = 0,
                     share: float = INNER_SHARE) -> set[str]:
    """Paths of the training folds' items (not `fold`) held back to pick the best epoch. By speaker: a
    `share` of each dataset's training speakers (at least one where a dataset has three or more), so the
    choice is made on voices and faces the model did not train on; in random mode, a `share` of the items."""
    rng = random.Random(seed * 1000 + fold)
    training = [it for it in items if fold_of[it.path] != fold]
    if mode == "random":
        paths = sorted(it.path for it in training)
        rng.shuffle(paths)
        return set(paths[:round(share * len(paths))])
    by_dataset: dict[str, set[str]] = defaultdict(set)
    for it in training:
        by_dataset[it.dataset].add(it.speaker)
    held: set[str] = set()
    for dataset in sorted(by_dataset):
        speakers = sorted(by_dataset[dataset])
        if len(speakers) < 3:
            continue
        rng.shuffle(speakers)
        held.update(speakers[:max(1, round(share * len(speakers)))])
    return {it.path for it in training if it.speaker in held}


def write(path: str | Path, items: list[Item], fold_of: dict[str, int], mode: str, seed: int, k: int) -> None:
    rows = [{"path": it.path, "speaker": it.speaker, "dataset": it.dataset, "emotion": it.emotion,
             "fold": fold_of[it.path]} for it in items]
    Path(path).write_text(json.dumps({"mode": mode, "seed": seed, "folds": k, "items": rows}, indent=1))


@dataclass
class Examples:
    """One branch's examples (inputs and labels) and where each comes from."""

    x: np.ndarray
    y: np.ndarray
    fold: np.ndarray
    speaker: list[str]
    dataset: list[str]
    path: list[str]

    def __len__(self) -> int:
        return len(self.y)

    def take(self, mask: np.ndarray) -> "Examples":
        idx = np.flatnonzero(mask)
        return Examples(self.x[idx], self.y[idx], self.fold[idx], [self.speaker[i] for i in idx],
                        [self.dataset[i] for i in idx], [self.path[i] for i in idx])

    @staticmethod
    def concat(parts: list["Examples"], empty_shape: tuple[int, ...]) -> "Examples":
        parts = [p for p in parts if len(p)]
        if not parts:
            return Examples(np.zeros((0, *empty_shape), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64),
                            [], [], [])
        return Examples(np.concatenate([p.x for p in parts]), np.concatenate([p.y for p in parts]),
                        np.concatenate([p.fold for p in parts]), sum((p.speaker for p in parts), []),
                        sum((p.dataset for p in parts), []), sum((p.path for p in parts), []))


@dataclass
class CrossFit:
    """Out-of-fold results of one branch: each example's logits come from the fold model that never
    trained on (nor chose its epoch on) that example's speaker; the baseline's OOF classes beside them."""

    examples: Examples  # the predicted examples, with their folds
    logits: np.ndarray  # (n, classes)
    baseline: np.ndarray  # (n,) classes predicted by the simple baseline trained on the same folds
    models: list  # one per fold: together they are the shipped ensemble
    histories: list  # one training History per fold
    trained_speakers: list[set[str]]  # per fold: speakers the fold model trained or chose its epoch on
    head: object | None = None  # voice: the prosody regression shipped beside the models (emotion.audio.ProsodyHead)
    head_info: dict | None = None  # what was chosen for it, and each part's out-of-fold accuracy
    baseline_log_probs: np.ndarray | None = None  # (n, classes) the baseline's out-of-fold log-probabilities
