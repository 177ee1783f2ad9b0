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
from emotion.labels import EMOTIONS
from train import datasets, folds
from train.fit_voice_encoder import extract, fit_logistic

CORPORA = ("ravdess", "nemo", "emovo", "emodb")
LAYERS = [2, 3, 4]


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
    shared = Path(o.shared)
    sources = {"ravdess": shared / "data" / "ravdess-speech-16k",
               **{c: shared / "data" / "speech-corpora" / c for c in ("nemo", "emovo", "emodb")}}
    items = [i for i in datasets.index(sources)[0] if i.kind == "audio"]
    feats = extract(items, PipelineConfig(encoder_layers=[3, 4]), o.cache)  # every layer's statistics, cached
    items = [i for i in items if i.path in feats]
    copies = degraded([i.path for i in items], o.copies, Path(o.cache))
    x = [feats[i.path]["pooled"][np.array(LAYERS) - 1].reshape(1, -1) for i in items]
    y = np.array([EMOTIONS.index(i.emotion) for i in items])
    corpus = np.array([i.dataset for i in items])
    has = {c: np.isin(np.arange(len(EMOTIONS)), y[corpus == c]).astype(np.float32) for c in CORPORA}
    present = np.stack([has[c] for c in corpus])
    fold_of = folds.assign(items, 5, "speaker", 0)
    fold = np.array([fold_of[i.path] for i in items])

    def fit_and_test(train: np.ndarray, test: np.ndarray, augment: bool) -> np.ndarray:
        idx = list(np.flatnonzero(train))
        rows = [x[i] for i in idx]
        if augment:
            extra = [(i, copies[(items[i].path, c)]) for i in idx for c in range(o.copies)
                     if (items[i].path, c) in copies]
            idx += [i for i, _ in extra]
            rows += [r for _, r in extra]
        head = fit_logistic(rows, y[idx], present[idx], len(EMOTIONS), 0.01, list(corpus[idx]))
        return head.logits([x[i] for i in np.flatnonzero(test)]).argmax(1)

    print(f"{len(items)} clips, {len(copies)} degraded copies")
    for augment in (False, True):
        pred = np.zeros(len(items), np.int64)
        for k in range(5):
            pred[fold == k] = fit_and_test(fold != k, fold == k, augment)
        loco = {}
        for c in CORPORA:
            loco[c] = float(np.mean(fit_and_test(corpus != c, corpus == c, augment) == y[corpus == c]))
        print(f"{'with' if augment else 'without'} degraded copies: speaker CV {np.mean(pred == y):.1%} "
              f"(RAVDESS {np.mean(pred[corpus == 'ravdess'] == y[corpus == 'ravdess']):.1%}); left out "
              + " / ".join(f"{c} {loco[c]:.1%}" for c in CORPORA) + f"; mean {np.mean(list(loco.values())):.1%}",
              flush=True)


if __name__ == "__main__":
    main()
