"""Latency per stage for ~4 s clips, model-loading time, and a landmarker-only baseline.

    python bench/latency.py [--runs 10] [--weights weights]

Prints figures; reads clips from ../shared (or $EMOTION_SHARED). Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("EMOTION_SHARED", ROOT.parent / "shared"))
FACE_MODEL = SHARED / "models" / "face_landmarker.task"


def load_time(weights: str) -> tuple[float, float]:
    """(seconds to import + load + warm up, in a fresh process; seconds of that spent importing)."""
    code = ("import time; t=time.perf_counter(); from emotion.pipeline import EmotionPipeline; import mediapipe; "
            "t1=time.perf_counter(); EmotionPipeline.from_pretrained(%r, face_model=%r); "
            "print(time.perf_counter()-t, t1-t)" % (weights, str(FACE_MODEL)))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}).stdout.split()
    return float(out[-2]), float(out[-1])


def landmarker_only(clip: Path, n: int = 50) -> float:
    """Baseline: decode the clip in order and run the Face Landmarker on n evenly spaced frames."""

    from emotion.config import PipelineConfig
    from emotion.face import FaceTracker
    from emotion.media import probe, read_frames

    cfg = PipelineConfig()
    t = time.perf_counter()
    step = probe(clip).duration_s / n
    with FaceTracker(FACE_MODEL, cfg) as tracker:
        for i, rgb in read_frames(clip, step / 2, step, n, cfg.face_max_side_px):
            tracker.read(rgb, step / 2 + i * step)
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--weights", default=str(ROOT / "weights"))
    args = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from emotion.media import ffmpeg_exe
    from emotion.pipeline import EmotionPipeline

    tmp = Path(tempfile.mkdtemp())
    both = tmp / "face_and_voice_4s.mp4"  # 256x256 talking-size face with speech, ~3.5 s
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(SHARED / "data/mead-clips/W009_front_happy_level3_001.mp4"),
                    "-i", str(SHARED / "data/ravdess-speech-16k/Actor_02/03-01-03-01-01-01-02.flac"), "-map", "0:v",
                    "-map", "1:a", "-shortest", "-c:v", "copy", "-c:a", "aac", str(both)], check=True)
    clips = {"256x256 face + voice (3.5 s)": both,
             "256x256 face only (4.3 s, MEAD W009)": SHARED / "data/mead-clips/W009_front_happy_level3_001.mp4",
             "1080p face + voice (3.7 s, MEAD M030)": SHARED / "data/mead-clips/M030_sad_eamm1.mp4",
             "voice only (3.5 s RAVDESS FLAC)": SHARED / "data/ravdess-speech-16k/Actor_01/03-01-03-01-01-01-01.flac"}
    total, imports = load_time(args.weights)
    print(f"load (fresh process: imports + 3 models + warm-up): {total:.1f} s, of which imports {imports:.1f} s")
    pipe = EmotionPipeline.from_pretrained(args.weights, face_model=FACE_MODEL)
    for name, clip in clips.items():
        pipe.predict(clip)  # warm-up
        runs = [pipe.predict(clip).timings_s for _ in range(args.runs)]
        stages = {k: statistics.median(r.get(k, 0.0) for r in runs) for k in runs[0]}
        print(f"{name}: median total {stages['total']:.3f} s over {args.runs} runs | " +
              ", ".join(f"{k} {v:.3f}" for k, v in stages.items() if k != "total"))
    base = [landmarker_only(clips["256x256 face only (4.3 s, MEAD W009)"]) for _ in range(max(3, args.runs // 2))]
    print(f"baseline, decode + Face Landmarker alone on 50 frames (256x256, 4.3 s): median {statistics.median(base):.3f} s")


if __name__ == "__main__":
    main()
