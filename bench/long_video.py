"""Throughput and peak memory on long videos (made here by looping a shared 1080p talking clip).

    python bench/long_video.py [--minutes 1 10] [--height 1080] [--preset ultrafast --crf 28]

The default encode (x264 ultrafast: no B-frames, CAVLC) is the cheapest to decode; `--preset medium --crf 20`
is closer to a phone recording (B-frames, CABAC, deblocking) and costs more to decode. Both are 4:2:0, as phones
record (the MEAD source is 4:4:4, which costs ~70% more to decode; files made before 2026-12-04 evening were 4:4:4).

Each length runs in a fresh process, so its peak RSS (models included) is its own. Prints figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("EMOTION_SHARED", ROOT.parent / "shared"))
FACE_MODEL = SHARED / "models" / "face_landmarker.task"

CHILD = """
import json, resource, sys, time
from emotion.pipeline import EmotionPipeline
pipe = EmotionPipeline.from_pretrained(sys.argv[2], face_model=sys.argv[3])
rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t = time.perf_counter()
pred = pipe.predict(sys.argv[1])
print(json.dumps({"seconds": time.perf_counter() - t, "windows": len(pred.timeline), "timings": pred.timings_s,
                  "rss_after_load_mb": rss_loaded, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_video(minutes: float, height: int, out: Path, preset: str = "ultrafast", crf: int = 28) -> None:
    from emotion.media import ffmpeg_exe

    src = SHARED / "data" / "mead-clips" / "M030_sad_eamm1.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-stream_loop", "-1", "-i", str(src), "-t", str(minutes * 60),
                    "-vf", f"scale=-2:{height}", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", preset, "-crf", str(crf),
                    "-c:a", "aac", str(out)], check=True)


def plain_decode_s(video: Path) -> float:
    """Seconds for ffmpeg alone to decode every video frame of the file to nothing (2 threads, as the app's
    decoder on this machine): the floor any analysis that looks at the picture pays."""
    import time

    from emotion.media import ffmpeg_exe

    t = time.perf_counter()
    subprocess.run([ffmpeg_exe(), "-v", "error", "-threads", "2", "-i", str(video), "-map", "0:v:0", "-f", "null", "-"],
                   check=True)
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--minutes", type=float, nargs="+", default=[1, 10])
    p.add_argument("--height", type=int, default=1080)
    p.add_argument("--preset", default="ultrafast", help="x264 preset of the generated video")
    p.add_argument("--crf", type=int, default=28, help="x264 quality of the generated video")
    p.add_argument("--weights", default=str(ROOT / "weights"))
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp())
    for minutes in args.minutes:
        video = tmp / f"long_{minutes:g}min_{args.height}p.mp4"
        make_video(minutes, args.height, video, args.preset, args.crf)
        run = subprocess.run([sys.executable, "-c", CHILD, str(video), args.weights, str(FACE_MODEL)], cwd=ROOT,
                             capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        if run.returncode:
            print(run.stderr[-2000:])
            continue
        r = json.loads(run.stdout.strip().splitlines()[-1])
        plain = plain_decode_s(video)
        print(f"{minutes:g} min {args.height}p, x264 {args.preset} crf {args.crf} ({video.stat().st_size / 1e6:.0f} MB): {r['seconds']:.1f} s "
              f"({minutes * 60 / r['seconds']:.1f}x real time; a plain decode of the same file: {plain:.1f} s, the analysis "
              f"{r['seconds'] / plain:.2f}x that), {r['windows']} windows, peak RSS {r['peak_rss_mb']:.0f} MB "
              f"(after loading {r['rss_after_load_mb']:.0f} MB); stages: " +
              ", ".join(f"{k} {v:.1f}" for k, v in r["timings"].items() if k != "total"))
        video.unlink()


if __name__ == "__main__":
    main()
