"""Does prosody (openSMILE eGeMAPS functionals) add to the voice CNN? Measured on the voice ablation's folds.

    pip install opensmile==2.6.0          # not a dependency of the project: only this study uses it
    python bench/voice_prosody.py         # after bench/voice_ablation.py (it reuses the best row's cross-fit)

Per outer fold: a logistic regression on the 88 standardised eGeMAPS functionals, trained on the other folds'
actors; then the CNN's out-of-fold logits plus w × the regression's log-probabilities, with w chosen on the
*other* folds' out-of-fold predictions (never on the fold it is scored on) — exactly what train.fit_audio does
with the shipped prosody vector. Prints accuracy mean ± sd over the
5 folds for eGeMAPS alone, the CNN alone and both, the time eGeMAPS takes per clip, and writes
bench/results/voice_prosody.json.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("EMOTION_SHARED", ROOT.parent / "shared"))


def egemaps(paths: list[str], cache: Path) -> tuple[np.ndarray, float]:
    """(clips × 88) eGeMAPS v02 functionals of each whole clip (16 kHz mono), cached; and seconds per clip."""
    import opensmile

    from emotion.media import load_audio

    out = cache / "egemaps_v02.npz"
    if out.exists():
        saved = np.load(out, allow_pickle=False)
        if list(saved["paths"]) == paths:
            return saved["x"], float(saved["seconds"])
    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                            feature_level=opensmile.FeatureLevel.Functionals)
    rows, spent = [], 0.0
    for p in paths:
        wave = load_audio(p, 16000)
        t = time.perf_counter()
        rows.append(smile.process_signal(wave, 16000).to_numpy()[0])
        spent += time.perf_counter() - t
    x = np.stack(rows).astype(np.float32)
    np.savez(out, x=x, paths=np.array(paths), seconds=spent / len(paths))
    return x, spent / len(paths)


def main() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from bench.voice_ablation import RESULTS, best_row
    from emotion.config import PipelineConfig
    from train import folds, run
    from train.evaluate import cv_summary
    from train.fit_audio import Recipe, cached_cross_fit_audio, combine_out_of_fold, out_of_fold_log_probs

    ablation = json.loads(RESULTS.read_text())
    best = best_row(ablation)
    cfg = replace(PipelineConfig(), **ablation[best]["config"])
    cache = ROOT / "cache"
    args = run.TrainConfig(shared=str(SHARED), cache=str(cache), no_plots=True)
    items, _, _ = run.load_datasets(args)
    fold_of = folds.assign(items, args.folds, args.split, args.seed)
    inner = {k: folds.inner_validation(items, fold_of, k, args.split, args.seed) for k in range(args.folds)}
    data, _ = run.audio_examples([i for i in items if i.kind in ("audio", "video")], fold_of, cfg, cache)
    recipe = {k: v for k, v in ablation[best]["recipe"].items() if k != "prosody"}  # the CNN alone
    cnn = cached_cross_fit_audio(cache, data, inner, cfg, seed=args.seed, recipe=Recipe(**recipe))
    x, seconds = egemaps(list(data.path), cache)
    y, fold = data.y, data.fold
    # the same regression, fold discipline and weight choice as the shipped prosody vector (train.fit_audio)
    prosody = out_of_fold_log_probs(x, y, fold, cnn.logits.shape[1])
    combined, chosen = combine_out_of_fold(cnn.logits, prosody, y, fold)
    both = combined.argmax(1)
    rows = {"egemaps_logreg": prosody.argmax(1), f"cnn alone (row {best})": cnn.logits.argmax(1), "cnn + egemaps": both}
    report = {"clips": len(y), "egemaps_seconds_per_clip": round(seconds, 4), "weights_chosen": chosen}
    for name, pred in rows.items():
        s = cv_summary(y, pred, fold, cfg.emotions)
        report[name] = {"accuracy_mean": s["accuracy_mean"], "accuracy_sd": s["accuracy_sd"],
                        "recall": {e: r["recall"] for e, r in s["per_class"].items()}}
        print(f"{name}: {s['accuracy_mean']:.1%} ± {s['accuracy_sd']:.1%}  "
              + " ".join(f"{e[:4]} {r['recall']:.0%}" for e, r in s["per_class"].items()))
    print(f"eGeMAPS: {seconds * 1000:.0f} ms per clip; weights chosen per fold {chosen}")
    (ROOT / "bench" / "results" / "voice_prosody.json").write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
