"""The face branch on real clips read as a new user's clips come (#28's checks): from the clip's start, from 1 s and
2 s in (a clip that starts mid-expression), and darkened (a dim room: luma × 0.3). The face alone (sound removed),
the shipped weights, the MEAD clips in ../shared.

    python bench/face_midclip.py [--weights weights]
    python bench/face_midclip.py --out-of-fold      # each clip read by a face model that never saw its subject

The shipped face model learnt from these clips (out-of-fold by subject during training, then all of them), so its
accuracies are optimistic, most of all from the start: those are the very windows it trained on. `--out-of-fold`
cross-fits the face as `python -m train.run` does (same folds, recipe, one member a fold) and reads each clip with
its fold's model: the honest figure for a new face. Prints figures; not a test.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("EMOTION_SHARED", ROOT.parent / "shared"))
FACE_MODEL = SHARED / "models" / "face_landmarker.task"
VARIANTS = {"from the start": [], "from 1 s in": ["-ss", "1"], "from 2 s in": ["-ss", "2"],
            "darkened (luma x 0.3)": ["-vf", "lutyuv=y=val*0.3"]}


def variant(clip: Path, args: list[str], out: Path) -> Path:
    from emotion.media import ffmpeg_exe

    seek = args[:2] if args[:1] == ["-ss"] else []
    rest = args[2:] if seek else args
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *seek, "-i", str(clip), "-an", *rest, "-c:v", "libx264",
                    "-preset", "veryfast", "-crf", "18", str(out)], check=True)
    return out


def fold_models(pipe, cache: str, members: int) -> tuple[dict[str, int], list]:
    """The face cross-fitted as train.run does it on ../shared (same folds and recipe): each item's fold, and each
    fold's model."""
    from train import fit_face, run

    args = run.TrainConfig(shared=str(SHARED), cache=cache, runs=str(Path(cache) / "midclip-runs"), no_plots=True,
                           face_members=members)
    items, _, _ = run.load_datasets(args)
    run_dir = Path(args.runs)
    run_dir.mkdir(parents=True, exist_ok=True)
    fold_of, inner = run.make_folds(items, args, run_dir)
    faces = [i for i in items if i.kind in ("photo", "video", "video_only")]
    feats = run.extract_features(faces, fold_of, pipe.cfg, str(FACE_MODEL), args)
    face = fit_face.cross_fit_face(feats.face_items, feats.face_data, fold_of, inner, pipe.cfg, seed=args.seed,
                                   **run.face_recipe(args))
    return fold_of, face.models


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--weights", default=str(ROOT / "weights"))
    p.add_argument("--out-of-fold", action="store_true", help="read each clip with a model that never saw its subject")
    p.add_argument("--members", type=int, default=1, help="with --out-of-fold: LSTMs per fold")
    p.add_argument("--cache", default=str(ROOT / "cache"))
    args = p.parse_args()
    from emotion.errors import EmotionError
    from emotion.face import FaceModel
    from emotion.pipeline import EmotionPipeline
    from train.datasets import mead

    pipe = EmotionPipeline.from_pretrained(args.weights, face_model=FACE_MODEL)
    clips = [i for i in mead(SHARED / "data" / "mead-clips", []) if i.emotion in pipe.cfg.emotions]
    fold_of, models = fold_models(pipe, args.cache, args.members) if args.out_of_fold else ({}, [])
    fold_face = [FaceModel(m, pipe.cfg) for m in models]  # one per fold (folds 0..k-1), its graph traced once
    tmp = Path(tempfile.mkdtemp())
    answers: dict[str, list[str | None]] = {name: [] for name in VARIANTS}
    for item in clips:
        if fold_face:  # the clip's own fold: a model that never saw this subject
            pipe.branches["face"].model = fold_face[fold_of[item.path]]
        for name, extra in VARIANTS.items():
            try:
                face = pipe.predict(variant(Path(item.path), extra, tmp / "v.mp4")).face
            except EmotionError:
                face = None
            answers[name].append(None if face is None else max(face, key=face.get))
    truth = [i.emotion for i in clips]
    start = answers["from the start"]
    who = "each clip's out-of-fold model" if fold_face else f"weights {args.weights}"
    print(f"Face alone on {len(clips)} MEAD clips ({dict(Counter(truth))}), {who}:")
    for name, got in answers.items():
        right = sum(g == t for g, t in zip(got, truth))
        same = sum(g == s for g, s in zip(got, start))
        print(f"  {name:22s} right {right}/{len(clips)} ({100 * right / len(clips):.0f}%), the same answer as from "
              f"the start {same}/{len(clips)}, no face read {sum(g is None for g in got)}")


if __name__ == "__main__":
    main()
