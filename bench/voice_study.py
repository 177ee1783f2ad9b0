"""What the voice studies over the four corpora share (bench/voice_stats_augment.py, bench/voice_stats_prosody.py):
the clips with the encoder's layer statistics, their folds by speaker, and the two figures every study prints —
speaker 5-fold CV and leave-one-corpus-out — for a `fit_and_test(train, test)` that answers the test clips.

Run alone, it studies what each clip's statistics could be turned into before the head (per clip, so a single
upload can have it too): the means or the spreads alone, each layer's mean vector centred and scaled within the
clip (what is left of the speaker's and the microphone's offset), and the whole vector at unit length.

    python bench/voice_study.py [--shared ../shared] [--cache cache]
"""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from emotion.config import PipelineConfig
from emotion.labels import EMOTIONS
from train import datasets, folds
from train.fit_voice_encoder import extract, fit_logistic

CORPORA = ("ravdess", "nemo", "emovo", "emodb")
LAYERS = [2, 3, 4]  # the shipped head's layers


@dataclass
class Study:
    items: list  # train.datasets.Item, one per clip the encoder read
    x: np.ndarray  # (clips, features): layers 2-4, mean and sd over time
    y: np.ndarray
    corpus: np.ndarray
    present: np.ndarray  # (clips, emotions): the classes each clip's corpus has (the loss is masked to them)
    fold: np.ndarray  # speaker folds, as training makes them

    def fit(self, rows: np.ndarray, idx: np.ndarray):
        """The shipped recipe (C 0.01, corpora and classes weighted equally, masked loss) on rows[idx]."""
        return fit_logistic([r[None] for r in rows], self.y[idx], self.present[idx], len(EMOTIONS), 0.01,
                            list(self.corpus[idx]))

    def answers(self, rows: np.ndarray, idx: np.ndarray, test_rows: np.ndarray) -> np.ndarray:
        """The classes the head fitted on rows[idx] gives `test_rows`."""
        return self.fit(rows, idx).logits([r[None] for r in test_rows]).argmax(1)


def load(shared: str | Path, cache: str | Path) -> Study:
    shared = Path(shared)
    sources = {"ravdess": shared / "data" / "ravdess-speech-16k",
               **{c: shared / "data" / "speech-corpora" / c for c in CORPORA[1:]}}
    items = [i for i in datasets.index(sources)[0] if i.kind == "audio"]
    feats = extract(items, PipelineConfig(encoder_layers=[3, 4]), cache)  # every layer's statistics, cached
    items = [i for i in items if i.path in feats]
    x = np.stack([feats[i.path]["pooled"][np.array(LAYERS) - 1].reshape(-1) for i in items])
    y = np.array([EMOTIONS.index(i.emotion) for i in items])
    corpus = np.array([i.dataset for i in items])
    has = {c: np.isin(np.arange(len(EMOTIONS)), y[corpus == c]).astype(np.float32) for c in CORPORA}
    fold_of = folds.assign(items, 5, "speaker", 0)
    return Study(items, x, y, corpus, np.stack([has[c] for c in corpus]), np.array([fold_of[i.path] for i in items]))


def cached_rows(name: str, jobs: list, worker: Callable, cache: str | Path, tag: object = None) -> dict:
    """{job: row} for each job whose `worker(job)` (a top-level function: it runs in 2 spawned processes) returned
    (job, row) with a row, worked out once and kept in cache/<name>/<hash of the jobs and `tag`>.npz."""
    key = hashlib.sha256(repr((sorted(jobs), tag)).encode()).hexdigest()[:16]
    file = Path(cache) / name / f"{key}.npz"
    if file.is_file():
        with np.load(file) as z:
            done = dict(zip(z["keys"], z["rows"]))
        return {j: done[repr(j)] for j in jobs if repr(j) in done}
    from multiprocessing import get_context

    from tqdm import tqdm

    with get_context("spawn").Pool(2) as pool:
        out = {j: r for j, r in tqdm(pool.imap(worker, jobs, chunksize=8), total=len(jobs), desc=name) if r is not None}
    file.parent.mkdir(parents=True, exist_ok=True)
    np.savez(file, keys=np.array([repr(j) for j in out]), rows=np.stack(list(out.values())))
    return out


def report(study: Study, name: str, fit_and_test: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
    """Print speaker CV (pooled, and RAVDESS in it) and each corpus left out, for boolean train/test masks."""
    y, corpus = study.y, study.corpus
    pred = np.zeros(len(y), np.int64)
    for k in range(5):
        pred[study.fold == k] = fit_and_test(study.fold != k, study.fold == k)
    loco = {c: float(np.mean(fit_and_test(corpus != c, corpus == c) == y[corpus == c])) for c in CORPORA}
    print(f"{name}: speaker CV {np.mean(pred == y):.1%} (RAVDESS {np.mean(pred[corpus == 'ravdess'] == y[corpus == 'ravdess']):.1%}); "
          "left out " + " / ".join(f"{c} {loco[c]:.1%}" for c in CORPORA) + f"; mean {np.mean(list(loco.values())):.1%}",
          flush=True)


def per_clip(x: np.ndarray, how: str) -> np.ndarray:
    """The (clips, layers x (mean, sd) x 512) rows turned per clip; `how` names the variant."""
    v = x.reshape(len(x), len(LAYERS), 2, -1)
    if how == "means only":
        return v[:, :, 0].reshape(len(x), -1)
    if how == "spreads only":
        return v[:, :, 1].reshape(len(x), -1)
    if how == "each layer's mean centred and scaled within the clip":
        m = v[:, :, :1]
        m = (m - m.mean(-1, keepdims=True)) / (m.std(-1, keepdims=True) + 1e-6)
        return np.concatenate([m, v[:, :, 1:]], axis=2).reshape(len(x), -1)
    if how == "unit length":
        return x / np.linalg.norm(x, axis=1, keepdims=True)
    return x


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default="../shared")
    ap.add_argument("--cache", default="cache")
    o = ap.parse_args()
    study = load(o.shared, o.cache)
    print(f"{len(study.items)} clips")
    for how in ("as shipped", "means only", "spreads only", "each layer's mean centred and scaled within the clip",
                "unit length"):
        rows = per_clip(study.x, how)

        def fit_and_test(train: np.ndarray, test: np.ndarray, rows=rows) -> np.ndarray:
            return study.answers(rows[train], train, rows[test])

        report(study, how, fit_and_test)


if __name__ == "__main__":
    main()
