"""Does the prosody vector (emotion.audio.prosody_features: mel-band levels, energy, pitch, its movement, rhythm)
carry the stats voice head to corpora it never heard? Speaker 5-fold CV and leave-one-corpus-out, the stats rows
alone and with prosody beside them (standardised on the training clips, times a weight), the shipped recipe
otherwise (layers 2-4, mean and sd, logistic regression, C 0.01, masked loss).

    python bench/voice_stats_prosody.py [--shared ../shared] [--cache cache]

Prints figures; ~2 min for the prosody (cached), ~1 min per variant.
"""

from __future__ import annotations

import argparse

import numpy as np

from emotion.config import PipelineConfig
from voice_study import cached_rows, load, report


def _prosody(path: str) -> tuple[str, np.ndarray | None]:
    from emotion.audio import prosody_features
    from emotion.media import load_audio

    cfg = PipelineConfig()
    wave = load_audio(path, cfg.sample_rate)
    return path, None if wave is None else prosody_features(wave, cfg)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default="../shared")
    ap.add_argument("--cache", default="cache")
    ap.add_argument("--weights", type=float, nargs="+", default=[0.5, 1.0])
    o = ap.parse_args()
    study = load(o.shared, o.cache)
    pros = cached_rows("prosody", [i.path for i in study.items], _prosody, o.cache)
    p_all = np.stack([pros[i.path] for i in study.items])  # every clip the encoder read has a prosody vector
    n_mels = PipelineConfig().n_mels
    variants = {"stats alone": None, "+ prosody, all": p_all, "+ prosody, no mel-band levels": p_all[:, 2 * n_mels:]}
    print(f"{len(study.items)} clips")
    for name, extra in variants.items():
        for w in ([1.0] if extra is None else o.weights):
            def fit_and_test(train: np.ndarray, test: np.ndarray, extra=extra, w=w) -> np.ndarray:
                rows = study.x
                if extra is not None:
                    mu, sd = extra[train].mean(0), extra[train].std(0) + 1e-6
                    rows = np.concatenate([study.x, w * (extra - mu) / sd], axis=1)
                return study.answers(rows[train], train, rows[test])

            report(study, name if extra is None else f"{name} (weight {w:g})", fit_and_test)


if __name__ == "__main__":
    main()
