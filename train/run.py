"""One command: index the datasets, cache features, split, train the three models, evaluate, write weights/.

    python -m train.run --shared ../shared --out weights          # the shipped weights (stand-in data)
    python -m train.run --data /data/emotion --out weights        # RAVDESS audio-video, RML, CREMA-D, ...
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from emotion.config import PipelineConfig
from emotion.fusion import fuse, softmax
from emotion.labels import EMOTIONS

from . import datasets, features, splits
from .evaluate import audio_baseline, classification_metrics, face_baseline
from .face_sequences import build_photo_set, clip_sequence
from .fit_audio import fit_audio
from .fit_face import fit_face
from .fit_fusion import (Example, expected_calibration_error, fit_stacker, fit_temperature, not_sure_threshold,
                         pair_by_emotion, reliability, to_arrays, with_dropout)

Y = {e: i for i, e in enumerate(EMOTIONS)}
NEUTRAL = -1  # face training only: neutral sequences, trained towards the uniform distribution


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m train.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", default="../shared", help="folder with the stand-in datasets (default ../shared)")
    p.add_argument("--data", help="folder with real datasets in sub-folders named RAVDESS, RML, CREMA-D, MEAD ...")
    p.add_argument("--out", default="weights", help="where the weights are written")
    p.add_argument("--runs", default="runs", help="where per-run reports (plots, splits) go")
    p.add_argument("--cache", default="cache", help="feature cache folder")
    p.add_argument("--face-model", help="face_landmarker.task (default: $EMOTION_FACE_MODEL or download)")
    p.add_argument("--split", choices=["speaker", "random"], default="speaker",
                   help="speaker: no speaker on two sides (reported); random: the original write-up's split")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--audio-epochs", type=int, default=40)
    p.add_argument("--audio-seeds", type=int, default=3, help="CNNs in the audio ensemble")
    p.add_argument("--face-epochs", type=int, default=15)
    p.add_argument("--face-seeds", type=int, default=3, help="LSTMs in the face ensemble")
    p.add_argument("--per-photo", type=int, default=3, help="sequences built per expressive photo")
    p.add_argument("--posed-labels", action="store_true",
                   help="keep Taiwanese photos whose observers saw another emotion than the posed one")
    p.add_argument("--limit", type=int, default=0, help="keep at most N items per dataset and emotion (quick runs)")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--no-plots", action="store_true", help="skip the HTML/PNG figures")
    return p.parse_args(argv)


def limit_items(items: list[datasets.Item], n: int) -> list[datasets.Item]:
    if n <= 0:
        return items
    import random

    shuffled = list(items)
    random.Random(0).shuffle(shuffled)  # so a small subset still spans many speakers
    seen: Counter = Counter()
    out = []
    for it in shuffled:
        key = (it.dataset, it.emotion)
        if seen[key] < n:
            out.append(it)
            seen[key] += 1
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.time()
    from emotion.errors import EmotionError
    from emotion.face import resolve_face_model

    cfg = PipelineConfig()
    sources = datasets.detect_sources(args.data) if args.data else datasets.shared_sources(args.shared)
    items, malformed = datasets.index(sources)
    if not args.posed_labels:
        before = len(items)
        items = datasets.observers_agree(items, sources)
        print(f"{before - len(items)} Taiwanese photos dropped: observers saw another emotion than the posed one")
    items = limit_items(items, args.limit)
    print(f"{len(items)} items from {', '.join(sources)}; {len(malformed)} file names did not parse")
    for m in malformed[:20]:
        print(f"  malformed name: {m}")
    try:
        face_model = str(resolve_face_model(args.face_model))
    except EmotionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    run_dir = Path(args.runs) / time.strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    sides = splits.assign(items, args.split, args.seed)
    splits.write(run_dir / "splits.json", items, sides, args.split, args.seed)

    audio_items = [i for i in items if i.kind in ("audio", "video")]
    face_items = [i for i in items if i.kind in ("photo", "video", "video_only")]
    t = time.time()
    audio_cache, fail_a = features.extract_all(audio_items, cfg, args.cache, "audio", workers=args.workers)
    face_cache, fail_f = features.extract_all(face_items, cfg, args.cache, "face", face_model, workers=args.workers)
    for f in fail_a + fail_f:
        print(f"  feature extraction failed: {f}")
    timing = {"features_s": round(time.time() - t, 1)}

    # ---- audio --------------------------------------------------------------------------------
    t = time.time()
    audio_by_side: dict[str, tuple[np.ndarray, np.ndarray, list[datasets.Item]]] = {}
    for side in splits.SIDES:
        its = [i for i in audio_items if sides[i.path] == side and i.path in audio_cache]
        mf = [(features.load_audio_cache(audio_cache[i.path]), i) for i in its]
        mf = [(m, i) for m, i in mf if m is not None]
        audio_by_side[side] = (np.stack([m for m, _ in mf]) if mf else np.zeros((0, cfg.n_mfcc, 1), np.float32),
                               np.array([Y[i.emotion] for _, i in mf], dtype=np.int64), [i for _, i in mf])
    xa, ya, _ = audio_by_side["subtrain"]
    xv, yv, _ = audio_by_side["subtest"]
    xt, yt, _ = audio_by_side["test"]
    print(f"audio: subtrain {len(ya)}, subtest {len(yv)}, test {len(yt)}")
    audio_model, audio_hist = fit_audio(xa, ya, xv, yv, cfg, epochs=args.audio_epochs,
                                        seeds=tuple(range(args.seed, args.seed + args.audio_seeds)))
    audio_logits = {s: audio_model.logits(audio_by_side[s][0]) if len(audio_by_side[s][1]) else np.zeros((0, 6))
                    for s in ("subtest", "test")}
    audio_base = audio_baseline(xa, ya, xt) if len(yt) else np.zeros(0, int)
    timing["audio_s"] = round(time.time() - t, 1)

    # ---- face ---------------------------------------------------------------------------------
    t = time.time()
    rng = np.random.default_rng(args.seed)
    face_data = {i.path: features.load_face_cache(face_cache[i.path]) for i in face_items if i.path in face_cache}

    def face_sets(side: str, train: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Sequences of one side: photo-built, and real clip windows (augmented windows when training)."""
        photos = [(face_data[i.path]["blendshapes"], i.emotion, i.speaker) for i in face_items
                  if sides[i.path] == side and i.kind == "photo" and face_data.get(i.path, {}).get("blendshapes") is not None]
        xp, yp, _ = build_photo_set(photos, args.per_photo if train else 1, cfg.frames_per_window, rng,
                                    with_neutral=train)
        xs, ys = [], []
        for i in face_items:
            if sides[i.path] != side or i.kind == "photo" or i.path not in face_data:
                continue
            d = face_data[i.path]
            wins = d["windows"] + (d["augmented"] if train else [])
            for w in wins:
                if w["detected"].mean() >= cfg.min_face_coverage:
                    reps = 3 if train else 1
                    for _ in range(reps):
                        xs.append(clip_sequence(w["sequence"], rng) if train else w["sequence"])
                        ys.append(Y[i.emotion])
        empty = np.zeros((0, cfg.frames_per_window, len(cfg.blendshape_names)), np.float32)
        return {"photos": (xp if len(xp) else empty, np.array([Y.get(e, NEUTRAL) for e in yp], dtype=np.int64)),
                "clips": (np.stack(xs) if xs else empty, np.array(ys, dtype=np.int64))}

    def joined(sets: dict) -> tuple[np.ndarray, np.ndarray]:
        return (np.concatenate([sets["photos"][0], sets["clips"][0]]),
                np.concatenate([sets["photos"][1], sets["clips"][1]]))

    f_train, f_val, f_test = face_sets("subtrain", True), face_sets("subtest", False), face_sets("test", False)
    xf, yf = joined(f_train)
    xfv, yfv = joined(f_val)
    print(f"face: subtrain {len(yf)} sequences, subtest {len(yfv)}, test photos {len(f_test['photos'][1])}, "
          f"test clips {len(f_test['clips'][1])}")
    face_model, face_hist = fit_face(xf, yf, xfv, yfv, cfg, epochs=args.face_epochs,
                                     seeds=tuple(range(args.seed, args.seed + args.face_seeds)))
    face_logp = lambda x: np.log(np.clip(face_model.probabilities(x), 1e-7, 1)) if len(x) else np.zeros((0, 6))
    face_logits = {"subtest": face_logp(xfv), "test_photos": face_logp(f_test["photos"][0]),
                   "test_clips": face_logp(f_test["clips"][0])}
    expressive = yf != NEUTRAL
    face_base = face_baseline(xf[expressive], yf[expressive], [f_test["photos"][0], f_test["clips"][0]])
    timing["face_s"] = round(time.time() - t, 1)

    # ---- calibration and stacker ---------------------------------------------------------------
    t = time.time()
    cfg.temperature_audio = fit_temperature(audio_logits["subtest"], yv)
    cfg.temperature_face = fit_temperature(face_logits["subtest"], yfv)
    cal = lambda logits, temp: softmax(logits, temp) if len(logits) else logits

    def branch_preds(side_audio: str, face_keys: list[str], ys_face: list[np.ndarray]):
        a = [(p, int(y)) for p, y in zip(cal(audio_logits[side_audio], cfg.temperature_audio), audio_by_side[side_audio][1])]
        f = [(p, int(y)) for k, yy in zip(face_keys, ys_face) for p, y in zip(cal(face_logits[k], cfg.temperature_face), yy)]
        return a, f

    a_sub, f_sub = branch_preds("subtest", ["subtest"], [yfv])
    a_test, f_test_preds = branch_preds("test", ["test_photos", "test_clips"], [f_test["photos"][1], f_test["clips"][1]])
    pair_rng = np.random.default_rng(args.seed + 1)
    # With real audio-video clips (--data RAVDESS/RML) the stacker learns from true pairs; with the
    # stand-in corpora (a handful of MEAD clips have both) it learns from predictions paired by emotion.
    sub_pairs = paired_examples(audio_items, sides, "subtest", audio_model, face_model, audio_cache, face_data, cfg)
    true_pairs = len(sub_pairs) >= 60
    # The stacker and its temperature / "not sure" threshold are fitted on disjoint halves of the subtest
    # predictions (70/30), so the calibration never sees what the stacker learned from.
    def halves(seq: list) -> tuple[list, list]:
        order = pair_rng.permutation(len(seq))
        cut = int(0.7 * len(seq))
        return [seq[i] for i in order[:cut]], [seq[i] for i in order[cut:]]

    if true_pairs:
        fit_part, cal_part = halves(sub_pairs)
        fit_examples, cal_examples = with_dropout(fit_part, pair_rng), with_dropout(cal_part, pair_rng)
    else:
        (a_fit, a_cal), (f_fit, f_cal) = halves(a_sub), halves(f_sub)
        fit_examples = pair_by_emotion(a_fit, f_fit, per_class=400, rng=pair_rng)
        cal_examples = pair_by_emotion(a_cal, f_cal, per_class=150, rng=pair_rng)
    xs_fit, ys_fit = to_arrays(fit_examples)
    stacker, stacker_loss = fit_stacker(xs_fit, ys_fit, seed=args.seed)
    cal_both = [e for e in cal_examples if e.audio is not None and e.face is not None]
    if cal_both:
        xb, yb = to_arrays(cal_both)
        cfg.temperature_fused = fit_temperature(stacker.logits(xb), yb)
    cal_probs = np.stack(fuse(stacker, [e.audio for e in cal_examples], [e.face for e in cal_examples],
                              cfg.temperature_fused))
    cfg.not_sure_top_p = not_sure_threshold(cal_probs, np.array([e.label for e in cal_examples]))
    test_examples = (pair_by_emotion(a_test, f_test_preds, per_class=200, rng=np.random.default_rng(args.seed + 2))
                     if not true_pairs else paired_examples(audio_items, sides, "test", audio_model, face_model,
                                                            audio_cache, face_data, cfg))
    timing["fusion_s"] = round(time.time() - t, 1)

    # ---- metrics ------------------------------------------------------------------------------
    def fused_metrics(exs: list[Example]) -> dict:
        out = {}
        for name, keep in (("both", lambda e: e.audio is not None and e.face is not None),
                           ("audio_only", lambda e: e.audio is not None and e.face is None),
                           ("face_only", lambda e: e.audio is None and e.face is not None)):
            sub = [e for e in exs if keep(e)]
            if not sub and name != "both":
                sub = [Example(e.audio if name == "audio_only" else None, e.face if name == "face_only" else None,
                               e.label) for e in exs]
            if sub:
                probs = np.stack(fuse(stacker, [e.audio for e in sub], [e.face for e in sub], cfg.temperature_fused))
                out[name] = classification_metrics(np.array([e.label for e in sub]), probs.argmax(1))
        return out

    test_both = [e for e in test_examples if e.audio is not None and e.face is not None] or test_examples
    xt_f, yt_f = to_arrays(test_both)
    y_all = np.array([e.label for e in test_examples])
    cal_fused = np.stack(fuse(stacker, [e.audio for e in test_examples], [e.face for e in test_examples],
                              cfg.temperature_fused))
    conf_ok = cal_fused.max(1) >= cfg.not_sure_top_p

    def calib(logits: np.ndarray, y: np.ndarray, temp: float) -> dict:
        if len(y) == 0:
            return {}
        before, after = softmax(logits, 1.0), softmax(logits, temp)
        return {"temperature": round(temp, 3), "ece_before": round(expected_calibration_error(before, y), 4),
                "ece_after": round(expected_calibration_error(after, y), 4),
                "reliability_before": reliability(before, y), "reliability_after": reliability(after, y)}

    face_test_x = np.concatenate([face_logits["test_photos"], face_logits["test_clips"]])
    face_test_y = np.concatenate([f_test["photos"][1], f_test["clips"][1]])
    metrics = {
        "protocol": {
            "split": args.split, "seed": args.seed,
            "held_out_speakers": sorted({i.speaker for i in items if sides[i.path] == "test"}),
            "subtest_speakers": sorted({i.speaker for i in items if sides[i.path] == "subtest"}),
            "datasets": sorted(sources), "true_audio_video_pairs": true_pairs,
            "photo_labels": "posed" if args.posed_labels else "posed, kept where observers agree (Taiwanese)",
            "note": ("Base models train on subtrain speakers; best epoch and temperatures are chosen on subtest "
                     "speakers; the stacker trains on subtest predictions; test speakers are used only here."),
        },
        "audio": {"cnn": classification_metrics(yt, audio_logits["test"].argmax(1)) if len(yt) else {},
                  "baseline_mfcc_stats_logreg": classification_metrics(yt, audio_base) if len(yt) else {},
                  "best_epochs": [h.best_epoch for h in audio_hist]},
        "face": {"lstm_photo_sequences": classification_metrics(f_test["photos"][1], face_logits["test_photos"].argmax(1)),
                 "lstm_real_clips": classification_metrics(f_test["clips"][1], face_logits["test_clips"].argmax(1)),
                 "baseline_last_frame_photo_sequences": classification_metrics(f_test["photos"][1], face_base[0]),
                 "baseline_last_frame_real_clips": classification_metrics(f_test["clips"][1], face_base[1]),
                 "best_epochs": [h.best_epoch for h in face_hist]},
        "fused": fused_metrics(test_examples),
        "calibration": {"audio": calib(audio_logits["test"], yt, cfg.temperature_audio),
                        "face": calib(face_test_x, face_test_y, cfg.temperature_face),
                        "fused": calib(stacker.logits(xt_f), yt_f, cfg.temperature_fused),
                        "not_sure_top_p": cfg.not_sure_top_p,
                        "answered_share": round(float(conf_ok.mean()), 4),
                        "accuracy_when_answered": round(float((cal_fused.argmax(1) == y_all)[conf_ok].mean()), 4)
                        if conf_ok.any() else None},
        "counts": {"audio": {s: int(len(audio_by_side[s][1])) for s in splits.SIDES},
                   "face_train_sequences": int(len(yf)), "face_subtest": int(len(yfv)),
                   "face_test_photos": int(len(f_test["photos"][1])), "face_test_clips": int(len(f_test["clips"][1])),
                   "malformed_names": len(malformed)},
        "timing": timing,
        "history": {"audio": [h.__dict__ for h in audio_hist], "face": [h.__dict__ for h in face_hist],
                    "stacker_loss": stacker_loss},
    }

    # ---- write weights ------------------------------------------------------------------------
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg.to_json(out / "config.json")
    audio_model.save(str(out / "audio_cnn.safetensors"))
    face_model.save(str(out / "face_lstm.keras"))
    stacker.save(str(out / "fusion_mlp.safetensors"))
    timing["total_s"] = round(time.time() - started, 1)
    public = {k: v for k, v in metrics.items() if k != "history"}
    (out / "metrics.json").write_text(json.dumps(public, indent=1) + "\n")
    (run_dir / "metrics_full.json").write_text(json.dumps(metrics, indent=1) + "\n")
    from .card import write_card

    write_card(out, public, cfg)
    if not args.no_plots:
        from .report import write_report

        write_report(run_dir, metrics)
    print(json.dumps({"audio_test_acc": metrics["audio"]["cnn"].get("accuracy"),
                      "audio_baseline_acc": metrics["audio"]["baseline_mfcc_stats_logreg"].get("accuracy"),
                      "face_photo_acc": metrics["face"]["lstm_photo_sequences"].get("accuracy"),
                      "face_clip_acc": metrics["face"]["lstm_real_clips"].get("accuracy"),
                      "fused_both_acc": metrics["fused"].get("both", {}).get("accuracy"),
                      "timing": timing, "run_dir": str(run_dir)}, indent=1))
    return 0


def paired_examples(audio_items, sides, side, audio_model, face_model, audio_cache, face_data, cfg) -> list[Example]:
    """True audio-video pairs: both branches' calibrated predictions on the same clip (RAVDESS AV, RML...)."""
    out = []
    for i in audio_items:
        if sides[i.path] != side or i.kind != "video" or i.path not in audio_cache:
            continue
        mfcc = features.load_audio_cache(audio_cache[i.path])
        pa = softmax(audio_model.logits(mfcc[None]), cfg.temperature_audio)[0] if mfcc is not None else None
        pf = None
        wins = [w for w in face_data.get(i.path, {}).get("windows", []) if w["detected"].mean() >= cfg.min_face_coverage]
        if wins:
            probs = face_model.probabilities(np.stack([w["sequence"] for w in wins])).mean(0)
            pf = softmax(np.log(np.clip(probs, 1e-7, 1))[None], cfg.temperature_face)[0]
        if pa is not None or pf is not None:
            out.append(Example(pa, pf, Y[i.emotion]))
    return out


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
