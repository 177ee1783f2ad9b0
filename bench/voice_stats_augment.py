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

import numpy as np

from emotion.config import PipelineConfig
from voice_study import LAYERS, cached_rows, load, report


def _degraded_stats(job: tuple[str, int]) -> tuple[tuple[str, int], np.ndarray | None]:
    import torch

    from emotion import speech_encoder as se
    from emotion.media import load_audio
    from train.augment import random_degradation

    torch.set_num_threads(1)
    path, copy = job
    wave = load_audio(path, se.SAMPLE_RATE)
    piece = None if wave is None else se.speech_piece(wave, PipelineConfig(), gate=False)
    if piece is None or piece.size < se.HOP * 4:
        return job, None
    seed = int(hashlib.sha256(f"{path}:{copy}".encode()).hexdigest()[:8], 16)
    degraded = random_degradation(piece, se.SAMPLE_RATE, np.random.default_rng(seed))
    stats = se.layer_stats(se.encode([degraded], max(LAYERS))[0])
    return job, stats[np.array(LAYERS) - 1].reshape(-1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default="../shared")
    ap.add_argument("--cache", default="cache")
    ap.add_argument("--copies", type=int, default=1)
    o = ap.parse_args()
    study = load(o.shared, o.cache)
    paths = [i.path for i in study.items]
    copies = cached_rows("encoder_degraded", [(p, c) for p in paths for c in range(o.copies)], _degraded_stats,
                         o.cache, LAYERS)
    print(f"{len(paths)} clips, {len(copies)} degraded copies")
    for augment in (False, True):
        def fit_and_test(train: np.ndarray, test: np.ndarray, augment=augment) -> np.ndarray:
            idx = list(np.flatnonzero(train))
            rows = [study.x[i] for i in idx]
            if augment:  # only training clips are copied; every test clip is an original
                extra = [(i, copies[(paths[i], c)]) for i in np.flatnonzero(train)
                         for c in range(o.copies) if (paths[i], c) in copies]
                idx += [i for i, _ in extra]
                rows += [r for _, r in extra]
            return study.answers(np.stack(rows), np.array(idx), study.x[test])

        report(study, f"{'with' if augment else 'without'} degraded copies", fit_and_test)


if __name__ == "__main__":
    main()
