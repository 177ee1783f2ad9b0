"""How far a linear read of the face sequences goes: scikit-learn's logistic regression (C = 1) on a few
summaries of each sequence, trained and tested on exactly the sequences the face LSTM gets in each fold
(`python -m train.run`'s folds, seed and features; gaze zeroed, as the LSTM has it). The first row is the
README's last-frame baseline; `--with-gaze` adds the gaze scores the LSTM does not get.

    python bench/face_linear.py

Why: on photo subjects the sequences are built from two photos (neutral → expressive), so what a sequence
model could add over the last frame is mostly the neutral face as a reference; this measures that ceiling.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("EMOTION_SHARED", ROOT.parent / "shared"))
FACE_MODEL = str(SHARED / "models" / "face_landmarker.task")

from train.face_model import sequence_read  # noqa: E402

READS = {
    "last frame (the baseline)": lambda x: x[:, -1],
    "mean of the last 5 frames": lambda x: x[:, -5:].mean(1),
    "last frame + last − first": lambda x: np.concatenate([x[:, -1], x[:, -1] - x[:, 0]], 1),
    "last frame + mean + max over time": lambda x: np.concatenate([x[:, -1], x.mean(1), x.max(1)], 1),
    "mean of the last 5 + its change since the first 5 (the shipped face model's frozen read)":
        lambda x: sequence_read(x, "change"),
}


def main() -> None:
    with_gaze = "--with-gaze" in sys.argv[1:]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore")
    from sklearn.linear_model import LogisticRegression

    from emotion.config import PipelineConfig
    from emotion.face import model_input
    from train import fit_face, run

    args = run.TrainConfig(shared=str(SHARED), cache=str(ROOT / "cache"), runs=str(ROOT / "cache" / "ablation-runs"),
                           no_plots=True)
    cfg = PipelineConfig(appearance_model=run.APPEARANCE_FILE)
    items, _, _ = run.load_datasets(args)
    run_dir = Path(args.runs)
    run_dir.mkdir(parents=True, exist_ok=True)
    fold_of, inner = run.make_folds(items, args, run_dir)
    feats = run.extract_features(items, fold_of, cfg, FACE_MODEL, args)
    folds = []
    for k in sorted(set(fold_of[i.path] for i in feats.face_items)):  # as fit_face.cross_fit_face builds them
        tr, _, test = fit_face.fold_sequences(feats.face_items, feats.face_data, fold_of, inner, cfg, k, args.seed,
                                              args.per_photo)
        if not with_gaze:
            tr.x, test.x = model_input(tr.x, cfg), model_input(test.x, cfg)  # what the LSTM reads: gaze zeroed
        folds.append((tr, test))
    for name, read in READS.items():
        scores = {"photo subjects": [], "MEAD clips": []}
        for tr, te in folds:
            keep = tr.y >= 0  # the neutral-face sequences are the LSTM's only
            pred = LogisticRegression(max_iter=3000, C=1.0).fit(read(tr.x[keep]), tr.y[keep]).predict(read(te.x))
            mead = np.array(te.dataset) == "mead"
            for part, m in (("photo subjects", ~mead), ("MEAD clips", mead)):
                if m.any():
                    scores[part].append(np.mean(pred[m] == te.y[m]))
        print(f"{name}: " + "  ".join(f"{p} {np.mean(s):.1%} ± {np.std(s):.1%}" for p, s in scores.items()))


if __name__ == "__main__":
    main()
