"""The voice branch alone, cross-fitted as `python -m train.run` does it (same folds by actor, seed, inner
validation), one row per recipe: what the README's voice ablation table comes from.

    python bench/voice_ablation.py                      # every row (about 10 min each on 2 cores)
    python bench/voice_ablation.py --rows first,utterance_norm

Each row adds one lever to the best row so far (its `base`), so a lever that does not help is not kept. Results go to bench/results/voice_ablation.json as
each row finishes (a finished row is not run again unless --again), and a Markdown table is printed:
accuracy mean ± sd over the 5 folds and over the 20 actors, per-class recall, ECE before/after temperature.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("EMOTION_SHARED", ROOT.parent / "shared"))
RESULTS = ROOT / "bench" / "results" / "voice_ablation.json"

# Levers, tried in this order. "first" is the recipe before this study; every later lever is added to the best
# row so far (by mean CV accuracy) and kept only if it beats it: the choice is made by cross-validation.
LEVERS = {
    "first": ("first recipe: MFCC, global normalisation, loudness trim, SpecAugment, 40 epochs",
              dict(voice_features="mfcc", voice_norm="global", voice_vad=False), dict(epochs=40)),
    "utterance_norm": ("+ per-utterance normalisation", dict(voice_norm="utterance"), dict()),
    "logmel": ("+ log-mel with deltas instead of MFCC", dict(voice_features="logmel"), dict()),
    "vad": ("+ speech only (Silero VAD) instead of loudness trim", dict(voice_vad=True), dict()),
    "degrade": ("+ degraded copies (speed/pitch, room, band, noise, gain; half the examples each epoch)",
                dict(), dict(augmented_share=0.5)),
    "mixup": ("+ mixup (Beta 0.4)", dict(), dict(mixup=0.4)),
    "longer": ("+ a longer schedule: 60 epochs instead of 40", dict(), dict(epochs=60)),
    "ema": ("+ weight averaging (EMA 0.99 per step; the averaged weights are validated and kept)", dict(),
            dict(ema=0.99)),
    "prosody": ("+ prosody beside the CNN (band levels, energy, YIN pitch and ZCR functionals → logistic "
                "regression; log-probabilities added to the CNN's logits, weight chosen on the other folds)",
                dict(), dict(prosody=True)),
}


def best_row(results: dict) -> str | None:
    return max(results, key=lambda n: results[n]["accuracy_mean"]) if results else None


def row_config(name: str, results: dict) -> tuple[dict, dict, str | None]:
    """The lever's changes on top of the best row so far: (config fields, recipe fields, base row)."""
    _, cfg, recipe = LEVERS[name]
    base = best_row({k: v for k, v in results.items() if k != name})
    if base is None:
        return dict(cfg), dict(recipe), None
    return {**results[base]["config"], **cfg}, {**results[base]["recipe"], **recipe}, base


def evaluate(audio, cfg_fields: dict, recipe: dict, base: str | None, seconds: float) -> dict:
    from train.calibration import temperature_report
    from train.evaluate import cv_summary

    from emotion.config import PipelineConfig

    emotions = replace(PipelineConfig(), **cfg_fields).emotions
    ex = audio.examples
    pred = audio.logits.argmax(1)
    s = cv_summary(ex.y, pred, ex.fold, emotions)
    baseline = cv_summary(ex.y, audio.baseline, ex.fold, emotions)
    actors = sorted(set(ex.speaker))
    per_actor = [float(np.mean(pred[np.array(ex.speaker) == a] == ex.y[np.array(ex.speaker) == a])) for a in actors]
    cal, _ = temperature_report(audio.logits, ex.y, ex.fold)
    return {"config": cfg_fields, "recipe": recipe, "base": base, "n": s["n"],
            "accuracy_mean": s["accuracy_mean"], "accuracy_sd_folds": s["accuracy_sd"],
            "accuracy_per_fold": s["accuracy_per_fold"],
            "actor_accuracy_mean": round(float(np.mean(per_actor)), 4),
            "actor_accuracy_sd": round(float(np.std(per_actor)), 4),
            "recall": {e: r["recall"] for e, r in s["per_class"].items()},
            "macro_f1": s["macro_f1"], "confusion_matrix": s["confusion_matrix"],
            "ece_before": cal["ece_before"], "ece_after": cal["ece_after"], "temperature": cal["temperature"],
            "baseline_accuracy_mean": baseline["accuracy_mean"], "minutes": round(seconds / 60, 1)}


def table(results: dict) -> str:
    from emotion.labels import EMOTIONS

    lines = ["| recipe | CV accuracy (folds) | by actor | " + " | ".join(EMOTIONS) + " | ECE → after T |",
             "|---|---|---|" + "---|" * 6 + "---|"]
    best = best_row(results)
    for name, r in results.items():
        what = (LEVERS[name][0] if name in LEVERS else name) + (" (to " + r["base"] + ")" if r.get("base") else "")
        what = f"**{what}** (best)" if name == best else what
        rec = " | ".join(f"{v:.0%}" for v in r["recall"].values())
        lines.append(f"| {what} | {r['accuracy_mean']:.1%} ± {r['accuracy_sd_folds']:.1%} | "
                     f"{r['actor_accuracy_mean']:.1%} ± {r['actor_accuracy_sd']:.1%} | {rec} | "
                     f"{r['ece_before']:.3f} → {r['ece_after']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", default=",".join(LEVERS))
    p.add_argument("--again", action="store_true", help="run rows already in the results file again")
    p.add_argument("--cache", default=str(ROOT / "cache"))
    p.add_argument("--results", default=str(RESULTS))
    p.add_argument("--workers", type=int, default=None)
    o = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from emotion.config import PipelineConfig
    from train import folds, run
    from train.fit_audio import Recipe, add_prosody, cached_cross_fit_audio

    results_path = Path(o.results)
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    args = run.TrainConfig(shared=str(SHARED), cache=o.cache, no_plots=True)
    items, _, _ = run.load_datasets(args)
    fold_of = folds.assign(items, args.folds, args.split, args.seed)  # the folds train.run makes
    inner = {k: folds.inner_validation(items, fold_of, k, args.split, args.seed) for k in range(args.folds)}
    voice_items = [i for i in items if i.kind in ("audio", "video")]
    for name in o.rows.split(","):
        if name in results and not o.again:
            continue
        cfg_fields, recipe, base = row_config(name, results)
        cfg = replace(PipelineConfig(), **cfg_fields)
        started = time.time()
        data, augmented = run.audio_examples(voice_items, fold_of, cfg, o.cache,
                                             augment=recipe.get("augmented_share", 0) > 0, workers=o.workers)
        print(f"{name} (on {base}): {cfg_fields} {recipe}; {len(data)} clips, features {data.x.shape[1:]} ({time.time() - started:.0f} s)", flush=True)
        t = time.time()
        training = {k: v for k, v in recipe.items() if k != "prosody"}  # the prosody regression is not the CNN's
        audio = cached_cross_fit_audio(o.cache, data, inner, cfg, seed=args.seed, augmented=augmented,
                                       recipe=Recipe(**training),
                                       progress=lambda k: print(f"  fold {k} done ({time.time() - t:.0f} s)", flush=True))
        if recipe.get("prosody"):
            audio = add_prosody(audio, run.prosody_inputs(voice_items, list(data.path), cfg, o.cache, o.workers))
        results[name] = evaluate(audio, cfg_fields, recipe, base, time.time() - t)
        if audio.head_info:
            results[name]["prosody"] = audio.head_info
        r = results[name]
        print(f"{name}: {r['accuracy_mean']:.1%} ± {r['accuracy_sd_folds']:.1%} (by actor {r['actor_accuracy_mean']:.1%}"
              f" ± {r['actor_accuracy_sd']:.1%}), recall {r['recall']}, ECE {r['ece_before']} → {r['ece_after']}",
              flush=True)
        results_path.parent.mkdir(parents=True, exist_ok=True)
        results_path.write_text(json.dumps(results, indent=1) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
