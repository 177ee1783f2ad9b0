"""Does the stats voice head carry better to corpora it never heard when it also learns from degraded copies of its
training clips (train.augment.random_degradation: speed or pitch, room, microphone band, noise, level)? Speaker
5-fold CV and leave-one-corpus-out, with and without the copies (only training clips are copied; every test clip is
an original), the shipped recipe otherwise (layers 2-4, mean and sd, logistic regression, C 0.01, masked loss).

    python bench/voice_stats_augment.py [--shared ../shared] [--cache cache] [--copies 1]

Prints figures; ~4 min per copy to encode on 2 cores (cached), then ~1 min.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

from emotion.config import PipelineConfig
from voice_study import LAYERS, load, report


def _degraded_stats(job: tuple[str, int]) -> tuple[str, int, np.ndarray | None]:
    import torch

    from emotion import speech_encoder as se
    from emotion.media import load_audio
    from train.augment import random_degradation

    torch.set_num_threads(1)
    path, copy = job
    wave = load_audio(path, se.SAMPLE_RATE)
    piece = None if wave is None else se.speech_piece(wave, PipelineConfig(), gate=False)
    if piece is None or piece.size < se.HOP * 4:
        return path, copy, None
    seed = int(hashlib.sha256(f"{path}:{copy}".encode()).hexdigest()[:8], 16)
    degraded = random_degradation(piece, se.SAMPLE_RATE, np.random.default_rng(seed))
    stats = se.layer_stats(se.encode([degraded], max(LAYERS))[0])
    return path, copy, stats[np.array(LAYERS) - 1].reshape(1, -1)


def degraded(paths: list[str], copies: int, cache: Path) -> dict[tuple[str, int], np.ndarray]:
    key = hashlib.sha256(repr((sorted(paths), copies, LAYERS)).encode()).hexdigest()[:16]
    file = cache / "encoder_degraded" / f"{key}.npz"
    if file.is_file():
        with np.load(file) as z:
            return {(p, int(c)): r for p, c, r in zip(z["paths"], z["copies"], z["rows"])}
    from multiprocessing import get_context

    from tqdm import tqdm

    jobs = [(p, c) for p in paths for c in range(copies)]
    out = {}
    with get_context("spawn").Pool(2) as pool:
        for path, copy, row in tqdm(pool.imap(_degraded_stats, jobs, chunksize=8), total=len(jobs), desc="degraded"):
            if row is not None:
                out[(path, copy)] = row
    file.parent.mkdir(parents=True, exist_ok=True)
    keys = list(out)
    np.savez(file, paths=np.array([k[0] for k in keys]), copies=np.array([k[1] for k in keys]),
             rows=np.stack([out[k] for k in keys]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default="../shared")
    ap.add_argument("--cache", default="cache")
    ap.add_argument("--copies", type=int, default=1)
    o = ap.parse_args()
    study = load(o.shared, o.cache)
    paths = [i.path for i in study.items]
    copies = degraded(paths, o.copies, Path(o.cache))
    print(f"{len(paths)} clips, {len(copies)} degraded copies")
    for augment in (False, True):
        def fit_and_test(train: np.ndarray, test: np.ndarray, augment=augment) -> np.ndarray:
            idx = list(np.flatnonzero(train))
            rows = [study.x[i] for i in idx]
            if augment:  # only training clips are copied; every test clip is an original
                extra = [(i, copies[(paths[i], c)].reshape(-1)) for i in np.flatnonzero(train)
                         for c in range(o.copies) if (paths[i], c) in copies]
                idx += [i for i, _ in extra]
                rows += [r for _, r in extra]
            return study.fit(np.stack(rows), np.array(idx)).logits([r[None] for r in study.x[test]]).argmax(1)

        report(study, f"{'with' if augment else 'without'} degraded copies", fit_and_test)


if __name__ == "__main__":
    main()
