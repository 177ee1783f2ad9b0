"""The face branch alone, cross-fitted as `python -m train.run` does it (same folds, seed and features), with one
lever changed: what the README's face ablation figures come from.

    python bench/face_ablation.py                       # as shipped: blendshapes + appearance (probabilities)
    python bench/face_ablation.py --no-appearance       # blendshapes only
    python bench/face_ablation.py --as logprob          # appearance as log-probabilities
    python bench/face_ablation.py --no-frame-head       # the LSTM without the per-frame path

Prints, per dataset, the LSTM and the last-frame baseline (mean ± sd over folds, per-class recall), and how
sure the fold ensemble is on the three MEAD clips of a neutral face (not one of the six emotions).
`--seeds 0 1 2 3 4` repeats the cross-fit with other training seeds and prints the spread over them: with ~30
training subjects, one seed's figure is not enough to rank two recipes.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("EMOTION_SHARED", ROOT.parent / "shared"))
FACE_MODEL = str(SHARED / "models" / "face_landmarker.task")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--no-appearance", action="store_true")
    p.add_argument("--as", dest="as_", choices=["prob", "logprob"], default="prob")
    p.add_argument("--no-frame-head", action="store_true")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--standardise", action="store_true", help="standardise the input inside the model")
    p.add_argument("--tail", type=int, default=0, help="the last K frames' mean straight to the head")
    p.add_argument("--noise", type=float, default=0.03, help="training-only Gaussian noise on the input")
    p.add_argument("--wide", type=int, default=0, help="wide & deep: a linear read of the last K frames' mean")
    p.add_argument("--no-neutral", action="store_true", help="train without the neutral-face sequences")
    p.add_argument("--weight-decay", type=float, default=0.5, help="Adam's decoupled weight decay")
    p.add_argument("--linear-last", action="store_true",
                   help="diagnostic: the baseline's model (softmax regression on the last frame) trained as the LSTM is")
    p.add_argument("--prior", choices=["", "frozen", "trainable", "stacked"], default="",
                   help="start from the last-frame regression; the LSTM learns what to add to it")
    p.add_argument("--members", type=int, default=1, help="LSTMs per fold (other seeds), averaged")
    p.add_argument("--real-motion", action="store_true",
                   help="photo sequences talk with the movement of real training clips instead of hand-set movement")
    p.add_argument("--prior-read", choices=["last", "change", "change1"], default="last",
                   help="what --prior's regression reads: the last frame; the last 5 frames' mean and its change since "
                        "the first 5 (change1: of single frames)")
    p.add_argument("--lr", type=float, default=2e-3, help="Adam's learning rate")
    p.add_argument("--units", type=int, default=16, help="LSTM units")
    p.add_argument("--seeds", type=int, nargs="+", default=[0],
                   help="training seeds (sequences, initial weights, noise), each a full cross-fit: the spread")
    p.add_argument("--cache", default=str(ROOT / "cache"))
    o = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from emotion.config import PipelineConfig
    from emotion.face import FaceModel, video_blendshapes
    from emotion.media import probe
    from emotion.pipeline import split_windows
    from train import face_model, fit_face, run
    from train.evaluate import cv_summary

    if o.no_neutral:
        photo_set = fit_face.build_photo_set
        fit_face.build_photo_set = lambda *a, with_neutral=False: photo_set(*a, with_neutral=False)
    build = face_model.build_face_lstm
    fit_face.build_face_lstm = lambda *a, **k: build(*a, frame_head=not o.no_frame_head, tail=o.tail, wide=o.wide,
                                                         noise=o.noise, units=o.units, **k)
    if o.linear_last:
        def linear_last(n_frames, n_features, n_classes, scale=None, **_):
            import keras
            from keras import layers

            inputs = keras.Input((n_frames, n_features), name="blendshapes")
            x = inputs if scale is None else layers.Normalization(mean=scale[0], variance=scale[1])(inputs)
            last = layers.Flatten()(layers.Cropping1D((n_frames - 1, 0))(x))
            return keras.Model(inputs, layers.Dense(n_classes, activation="softmax", name="emotion")(last))
        fit_face.build_face_lstm = linear_last
    args = run.TrainConfig(shared=str(SHARED), cache=o.cache, runs=str(Path(o.cache) / "ablation-runs"), no_plots=True,
                           face_epochs=o.epochs, no_appearance=o.no_appearance)
    cfg = PipelineConfig(appearance_model="" if o.no_appearance else run.APPEARANCE_FILE, appearance_as=o.as_)
    items, _, _ = run.load_datasets(args)
    run_dir = Path(args.runs)
    run_dir.mkdir(parents=True, exist_ok=True)
    fold_of, inner = run.make_folds(items, args, run_dir)
    feats = run.extract_features(items, fold_of, cfg, FACE_MODEL, args)
    print(f"face branch: {vars(o)}")
    summary = {}
    recall = lambda s: " ".join(f"{e[:4]} {r['recall']:.0%}" for e, r in s["per_class"].items())  # noqa: E731
    for seed in o.seeds:  # the training sequences and the networks' initial weights and noise; folds stay
        face = fit_face.cross_fit_face(feats.face_items, feats.face_data, fold_of, inner, cfg, args.face_epochs,
                                       args.per_photo, seed, standardise=o.standardise,
                                       weight_decay=o.weight_decay, prior=o.prior,
                                       real_motion=o.real_motion, members=o.members, lr=o.lr,
                                       prior_read=o.prior_read)
        ex, pred = face.examples, face.logits.argmax(1)
        print(f"seed {seed}:")
        for d in sorted(set(ex.dataset)) + ["photos (taiwanese + jaffe)"]:
            m = np.array([x == d or (d.startswith("photos") and x != "mead") for x in ex.dataset])
            a = cv_summary(ex.y[m], pred[m], ex.fold[m], cfg.emotions)
            b = cv_summary(ex.y[m], face.baseline[m], ex.fold[m], cfg.emotions)
            print(f"  {d}: n={a['n']}  LSTM {a['accuracy_mean']:.1%} ± {a['accuracy_sd']:.1%} ({recall(a)})  |  "
                  f"baseline {b['accuracy_mean']:.1%} ± {b['accuracy_sd']:.1%} ({recall(b)})")
            summary.setdefault(d, []).append((a["accuracy_mean"], b["accuracy_mean"]))
    if len(o.seeds) > 1:
        print(f"over {len(o.seeds)} seeds (mean ± sd of the fold-mean accuracy; LSTM minus baseline per seed):")
        for d, rows in summary.items():
            lstm, base = np.array(rows).T
            print(f"  {d}: LSTM {lstm.mean():.1%} ± {lstm.std():.1%} (min {lstm.min():.1%}, max {lstm.max():.1%})  |  "
                  f"baseline {base.mean():.1%} ± {base.std():.1%}  |  LSTM above baseline in "
                  f"{int((lstm > base).sum())} of {len(lstm)}, by {(lstm - base).mean():+.1%} ± {(lstm - base).std():.1%}")
    # the last seed's LSTM and the last-frame regression as a product of experts, the weight chosen on the other folds
    from train.fit_audio import combine_out_of_fold

    combined, chosen = combine_out_of_fold(face.logits, face.baseline_log_probs, ex.y, ex.fold)
    both = combined.argmax(1)
    print(f"  weight of the last-frame regression per fold: {chosen}")
    for d in sorted(set(ex.dataset)) + ["photos (taiwanese + jaffe)"]:
        m = np.array([x == d or (d.startswith("photos") and x != "mead") for x in ex.dataset])
        c = cv_summary(ex.y[m], both[m], ex.fold[m], cfg.emotions)
        print(f"  {d}: LSTM × last-frame regression {c['accuracy_mean']:.1%} ± {c['accuracy_sd']:.1%}")
    fm = FaceModel(face_model.ensemble(face.models), cfg)
    appearance = None if o.no_appearance else run.appearance_source(args)
    for clip in sorted((SHARED / "data" / "mead-clips").glob("*_front_neutral_*.mp4")):
        w = video_blendshapes(clip, split_windows(probe(clip).duration_s, cfg), cfg, FACE_MODEL,
                              appearance_path=appearance)
        p = fm.probabilities(np.stack([w[0].sequence]))[0]
        print(f"  neutral face {clip.name}: top probability {p.max():.2f} ({cfg.emotions[int(p.argmax())]})")


if __name__ == "__main__":
    main()
