"""Splits: the original nested stacking split (train/test, then subtrain/subtest), by speaker or at random.

Speaker mode (the default, and the one reported) keeps every speaker on one side of every split.
Splits are seeded and written to a JSON file so a run can be audited and repeated.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path

from .datasets import Item

SIDES = ("subtrain", "subtest", "test")
# RAVDESS actors 17-20 are the held-out speakers of the audio benchmark.
FIXED_TEST_SPEAKERS = {f"ravdess-{a:02d}" for a in (17, 18, 19, 20)}


def speaker_split(items: list[Item], test_frac: float = 0.2, subtest_frac: float = 0.2, seed: int = 0,
                  fixed_test: set[str] = FIXED_TEST_SPEAKERS) -> dict[str, str]:
    """{speaker: side}. Each dataset's speakers are shuffled and cut separately, so every side has some
    of each dataset; speakers in `fixed_test` always go to test."""
    by_dataset: dict[str, list[str]] = defaultdict(list)
    for it in items:
        if it.speaker not in by_dataset[it.dataset]:
            by_dataset[it.dataset].append(it.speaker)
    side: dict[str, str] = {}
    rng = random.Random(seed)
    for dataset in sorted(by_dataset):
        speakers = sorted(by_dataset[dataset])
        fixed = [s for s in speakers if s in fixed_test]
        rest = [s for s in speakers if s not in fixed_test]
        rng.shuffle(rest)
        n = len(speakers)
        n_test = max(0, round(n * test_frac) - len(fixed))
        n_sub = max(1, round(n * subtest_frac)) if n >= 3 else 0
        if n >= 2 and not fixed:
            n_test = max(1, n_test)
        for s in fixed:
            side[s] = "test"
        for i, s in enumerate(rest):
            side[s] = "test" if i < n_test else "subtest" if i < n_test + n_sub else "subtrain"
    return side


def random_split(items: list[Item], test_frac: float = 0.2, subtest_frac: float = 0.2, seed: int = 0) -> dict[str, str]:
    """{path: side}, stratified by dataset and emotion: the original write-up's split (speakers leak)."""
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for it in items:
        groups[(it.dataset, it.emotion)].append(it.path)
    rng = random.Random(seed)
    side = {}
    for key in sorted(groups):
        paths = sorted(groups[key])
        rng.shuffle(paths)
        n_test = round(len(paths) * test_frac)
        n_sub = round(len(paths) * subtest_frac)
        for i, p in enumerate(paths):
            side[p] = "test" if i < n_test else "subtest" if i < n_test + n_sub else "subtrain"
    return side


def assign(items: list[Item], mode: str = "speaker", seed: int = 0) -> dict[str, str]:
    """{item path: side} for every item."""
    if mode == "speaker":
        by_speaker = speaker_split(items, seed=seed)
        return {it.path: by_speaker[it.speaker] for it in items}
    if mode == "random":
        return random_split(items, seed=seed)
    raise ValueError(f"unknown split mode {mode!r}")


def write(path: str | Path, items: list[Item], sides: dict[str, str], mode: str, seed: int) -> None:
    rows = [{"path": it.path, "speaker": it.speaker, "dataset": it.dataset, "emotion": it.emotion,
             "side": sides[it.path]} for it in items]
    Path(path).write_text(json.dumps({"mode": mode, "seed": seed, "items": rows}, indent=1))
