"""The voice across corpora: Whisper-base encoder features + a head, on RAVDESS, nEMO, EMOVO and EmoDB, judged by
speaker (5-fold, pooled and per corpus) and by corpus (leave one corpus out: train on three, test on the fourth,
on the classes it has). Prints one table per head; the figures go to docs/results.md.

    python bench/voice_corpora.py [--shared ../shared] [--cache cache] [--heads linear conv stats]
                                  [--layers 2,3,4] [--c 0.01] [--unmasked]

linear and conv read layers 3-4 averaged frame by frame (the conv head shipped until 2026-12-04); stats reads
layers 2-4, each pooled to its mean and sd over time, through a logistic regression (shipped since).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from emotion.calibration import calibrate
from emotion.config import PipelineConfig
from emotion.labels import EMOTIONS
from train import datasets, folds
from train.calibration import expected_calibration_error as ece, fit_temperature
from train.fit_voice_encoder import HeadRecipe, extract, fit_head

CORPORA = ("ravdess", "nemo", "emovo", "emodb")
HEADS = {"linear": HeadRecipe(conv=0, epochs=40, lr=3e-3, weight_decay=1e-2),
         "conv": HeadRecipe(conv=64, epochs=20, lr=1e-3, weight_decay=1e-2),
         "stats": HeadRecipe(conv=0, c=0.01)}


def voice_items(shared: Path) -> list[datasets.Item]:
    sources = {"ravdess": shared / "data" / "ravdess-speech-16k",
               **{c: shared / "data" / "speech-corpora" / c for c in ("nemo", "emovo", "emodb")}}
    items, malformed = datasets.index(sources)
    assert not malformed, malformed[:3]
    return [i for i in items if i.kind == "audio"]


def report(logits: np.ndarray, y: np.ndarray, corpus: np.ndarray, temperature: float) -> dict:
    """Accuracy, calibration, recall per class and per corpus of answers as a user gets them: any of the emotions
    (a nEMO clip may be heard as disgust, which nEMO lacks), scaled by the temperature fitted out of fold."""
    p = calibrate(logits, temperature)
    pred = p.argmax(1)
    out = {"accuracy": float(np.mean(pred == y)), "ece": ece(p, y),
           "recall": {e: float(np.mean(pred[y == k] == k)) for k, e in enumerate(EMOTIONS) if (y == k).any()},
           "per_corpus": {}}
    for c in sorted(set(corpus), key=CORPORA.index):
        m = corpus == c
        top = np.bincount(pred[m], minlength=len(EMOTIONS))
        out["per_corpus"][c] = {"accuracy": float(np.mean(pred[m] == y[m])), "n": int(m.sum()),
                                "top_answer_share": float(top.max() / m.sum()), "ece": ece(p[m], y[m])}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default="../shared")
    ap.add_argument("--cache", default="cache")
    ap.add_argument("--heads", nargs="+", default=list(HEADS))
    ap.add_argument("--layers", type=lambda v: [int(x) for x in v.split(",")], default=[2, 3, 4],
                    help="the layers the stats head reads (each layer's mean and sd over time)")
    ap.add_argument("--c", type=float, default=0.01, help="the stats head's inverse L2 strength")
    ap.add_argument("--unmasked", action="store_true", help="no loss masking to each corpus' classes (a lesion)")
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    o = ap.parse_args()
    HEADS["stats"] = HeadRecipe(conv=0, c=o.c)
    cfg = PipelineConfig(encoder_layers=[3, 4])  # the frames the linear and conv heads read
    items = voice_items(Path(o.shared))
    feats = extract(items, cfg, o.cache)
    items = [i for i in items if i.path in feats]
    y = np.array([EMOTIONS.index(i.emotion) for i in items])
    corpus = np.array([i.dataset for i in items])
    has = {c: np.isin(np.arange(len(EMOTIONS)), y[corpus == c]).astype(np.float32) for c in CORPORA}
    present = np.ones((len(items), len(EMOTIONS)), np.float32) if o.unmasked else np.stack([has[c] for c in corpus])
    fold_of = folds.assign(items, 5, "speaker", 0)
    fold = np.array([fold_of[i.path] for i in items])
    frames = [feats[i.path]["frames"] for i in items]
    stats = [feats[i.path]["pooled"][np.array(o.layers) - 1].reshape(1, -1) for i in items]
    print(f"{len(items)} clips, {len({i.speaker for i in items})} speakers:",
          {c: int((corpus == c).sum()) for c in CORPORA})
    results = {}
    for head in o.heads:
        recipe, x = HEADS[head], stats if head == "stats" else frames
        oof = np.zeros((len(items), len(EMOTIONS)), np.float32)
        fold_acc = []
        for k in range(5):
            tr, te = fold != k, fold == k
            fitted = fit_head([x[i] for i in np.flatnonzero(tr)], y[tr], present[tr], len(EMOTIONS), recipe,
                              groups=list(corpus[tr]))
            oof[te] = fitted.logits([x[i] for i in np.flatnonzero(te)])
            fold_acc.append(float(np.mean(oof[te].argmax(1) == y[te])))
        t = fit_temperature(oof, y)
        cv = report(oof, y, corpus, t)
        cv["fold_accuracy"] = fold_acc
        loco = {}
        for c in CORPORA:
            tr, te = corpus != c, corpus == c
            fitted = fit_head([x[i] for i in np.flatnonzero(tr)], y[tr], present[tr], len(EMOTIONS), recipe,
                              groups=list(corpus[tr]))
            logits = fitted.logits([x[i] for i in np.flatnonzero(te)])
            loco[c] = report(logits, y[te], corpus[te], t)["per_corpus"][c]
        results[head] = {"speaker_cv": cv, "leave_one_corpus_out": loco, "temperature": t}
        print(f"\n== head: {head} ==")
        print(f"speaker 5-fold CV, pooled: {cv['accuracy']:.1%} (folds {', '.join(f'{a:.0%}' for a in fold_acc)}), "
              f"ECE {cv['ece']:.3f}; recall " + ", ".join(f"{e} {r:.0%}" for e, r in cv["recall"].items()))
        print("| corpus | speaker CV | top answer | ECE | left out (LOCO) | top answer | ECE |")
        for c in CORPORA:
            a, b = cv["per_corpus"][c], loco[c]
            print(f"| {c} | {a['accuracy']:.1%} | {a['top_answer_share']:.0%} | {a['ece']:.3f} | "
                  f"{b['accuracy']:.1%} | {b['top_answer_share']:.0%} | {b['ece']:.3f} |")
        print(f"LOCO mean {np.mean([loco[c]['accuracy'] for c in CORPORA]):.1%}")
    if o.out:
        Path(o.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
