"""The face branch on real clips read as a new user's clips come (#28's checks): from the clip's start, from 1 s and
2 s in (a clip that starts mid-expression), and darkened (a dim room: luma × 0.3). The face alone (sound removed),
the shipped weights, the MEAD clips in ../shared.

    python bench/face_midclip.py [--weights weights]

The shipped face model learnt from these clips (out-of-fold by subject during training, then all of them), so the
accuracies are optimistic; the differences between the variants are the point. Prints figures; not a test.
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
VARIANTS = {"from the start": [], "from 1 s in": ["-ss", "1"], "from 2 s in": ["-ss", "2"],
            "darkened (luma x 0.3)": ["-vf", "lutyuv=y=val*0.3"]}


def variant(clip: Path, args: list[str], out: Path) -> Path:
    from emotion.media import ffmpeg_exe

    seek = args[:2] if args[:1] == ["-ss"] else []
    rest = args[2:] if seek else args
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *seek, "-i", str(clip), "-an", *rest, "-c:v", "libx264",
                    "-preset", "veryfast", "-crf", "18", str(out)], check=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--weights", default=str(ROOT / "weights"))
    args = p.parse_args()
    from emotion.errors import EmotionError
    from emotion.pipeline import EmotionPipeline
    from train.datasets import mead

    pipe = EmotionPipeline.from_pretrained(args.weights, face_model=SHARED / "models" / "face_landmarker.task")
    clips = [i for i in mead(SHARED / "data" / "mead-clips", []) if i.emotion in pipe.cfg.emotions]
    tmp = Path(tempfile.mkdtemp())
    answers: dict[str, list[str | None]] = {name: [] for name in VARIANTS}
    for item in clips:
        for name, extra in VARIANTS.items():
            try:
                face = pipe.predict(variant(Path(item.path), extra, tmp / "v.mp4")).face
            except EmotionError:
                face = None
            answers[name].append(None if face is None else max(face, key=face.get))
    truth = [i.emotion for i in clips]
    start = answers["from the start"]
    print(f"Face alone on {len(clips)} MEAD clips ({dict(Counter(truth))}), weights {args.weights}:")
    for name, got in answers.items():
        right = sum(g == t for g, t in zip(got, truth))
        same = sum(g == s for g, s in zip(got, start))
        print(f"  {name:22s} right {right}/{len(clips)} ({100 * right / len(clips):.0f}%), the same answer as from "
              f"the start {same}/{len(clips)}, no face read {sum(g is None for g in got)}")


if __name__ == "__main__":
    main()
