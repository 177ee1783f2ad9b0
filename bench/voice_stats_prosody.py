"""Does the prosody vector (emotion.audio.prosody_features: mel-band levels, energy, pitch, its movement, rhythm)
carry the stats voice head to corpora it never heard? Speaker 5-fold CV and leave-one-corpus-out, the stats rows
alone and with prosody beside them (standardised on the training clips, times a weight), the shipped recipe
otherwise (layers 2-4, mean and sd, logistic regression, C 0.01, masked loss).

    python bench/voice_stats_prosody.py [--shared ../shared] [--cache cache]

Prints figures; ~2 min for the prosody (cached), ~1 min per variant.
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


def _prosody(path: str) -> tuple[str, np.ndarray | None]:
    from emotion.audio import prosody_features
    from emotion.media import load_audio

    cfg = PipelineConfig()
    wave = load_audio(path, cfg.sample_rate)
    return path, None if wave is None else prosody_features(wave, cfg)


def prosody(paths: list[str], cache: Path) -> dict[str, np.ndarray]:
    key = hashlib.sha256(repr(sorted(paths)).encode()).hexdigest()[:16]
    file = cache / "prosody" / f"{key}.npz"
    if file.is_file():
        with np.load(file) as z:
            return dict(zip(z["paths"], z["rows"]))
    from multiprocessing import get_context

    from tqdm import tqdm

    with get_context("spawn").Pool(2) as pool:
        out = {p: r for p, r in tqdm(pool.imap(_prosody, paths, chunksize=16), total=len(paths), desc="prosody")
               if r is not None}
    file.parent.mkdir(parents=True, exist_ok=True)
    np.savez(file, paths=np.array(list(out)), rows=np.stack(list(out.values())))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default="../shared")
    ap.add_argument("--cache", default="cache")
    ap.add_argument("--weights", type=float, nargs="+", default=[0.5, 1.0])
    o = ap.parse_args()
    shared = Path(o.shared)
    sources = {"ravdess": shared / "data" / "ravdess-speech-16k",
               **{c: shared / "data" / "speech-corpora" / c for c in ("nemo", "emovo", "emodb")}}
    items = [i for i in datasets.index(sources)[0] if i.kind == "audio"]
    feats = extract(items, PipelineConfig(encoder_layers=[3, 4]), o.cache)  # every layer's statistics, cached
    pros = prosody([i.path for i in items if i.path in feats], Path(o.cache))
    items = [i for i in items if i.path in feats and i.path in pros]
    x = np.stack([feats[i.path]["pooled"][np.array(LAYERS) - 1].reshape(-1) for i in items])
    n_mels = PipelineConfig().n_mels
    p_all = np.stack([pros[i.path] for i in items])
    variants = {"stats alone": None, "+ prosody, all": p_all, "+ prosody, no mel-band levels": p_all[:, 2 * n_mels:]}
    y = np.array([EMOTIONS.index(i.emotion) for i in items])
    corpus = np.array([i.dataset for i in items])
    has = {c: np.isin(np.arange(len(EMOTIONS)), y[corpus == c]).astype(np.float32) for c in CORPORA}
    present = np.stack([has[c] for c in corpus])
    fold_of = folds.assign(items, 5, "speaker", 0)
    fold = np.array([fold_of[i.path] for i in items])

    def fit_and_test(train: np.ndarray, test: np.ndarray, extra: np.ndarray | None, w: float) -> np.ndarray:
        rows = x
        if extra is not None:
            mu, sd = extra[train].mean(0), extra[train].std(0) + 1e-6
            rows = np.concatenate([x, w * (extra - mu) / sd], axis=1)
        head = fit_logistic([r[None] for r in rows[train]], y[train], present[train], len(EMOTIONS), 0.01,
                            list(corpus[train]))
        return head.logits([r[None] for r in rows[test]]).argmax(1)

    print(f"{len(items)} clips")
    for name, extra in variants.items():
        for w in ([1.0] if extra is None else o.weights):
            pred = np.zeros(len(items), np.int64)
            for k in range(5):
                pred[fold == k] = fit_and_test(fold != k, fold == k, extra, w)
            loco = {c: float(np.mean(fit_and_test(corpus != c, corpus == c, extra, w) == y[corpus == c]))
                    for c in CORPORA}
            print(f"{name}{'' if extra is None else f' (weight {w:g})'}: speaker CV {np.mean(pred == y):.1%} "
                  f"(RAVDESS {np.mean(pred[corpus == 'ravdess'] == y[corpus == 'ravdess']):.1%}); left out "
                  + " / ".join(f"{c} {loco[c]:.1%}" for c in CORPORA) + f"; mean {np.mean(list(loco.values())):.1%}",
                  flush=True)


if __name__ == "__main__":
    main()
