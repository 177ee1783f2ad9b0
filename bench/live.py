"""What one live session costs (issue #29): CPU, latency from a frame to the answer, and memory over a session.

    EMOTION_FACE_MODEL=../shared/models/face_landmarker.task python bench/live.py [--minutes 2] [--fps 5 10]

A real MEAD clip with speech (looped) is fed to emotion.live.LiveSession as the app feeds it: camera frames at
`fps`, sound in 0.5 s chunks, the answer redrawn at most every 0.25 s (app.LIVE_REFRESH_S). The session's clock
is simulated, so the script runs as fast as the machine allows; CPU per session = CPU seconds spent / seconds
of stream (1.0 = one core busy). Latency = from a frame's arrival to its redrawn answer (the server's part; the
browser adds its upload and drawing). Memory = the process's resident size as the session goes on.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CLIP = ROOT.parent / "shared" / "data" / "mead-clips" / "M030_sad_eamm1.mp4"


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024 ** 2


def run(pipe, frames, clip_fps: float, sound: np.ndarray, fps: float, seconds: float) -> dict:
    from app import LIVE_REFRESH_S
    from emotion.live import LiveSession

    clock = [0.0]
    session = LiveSession(pipe, max_s=seconds + 1, clock=lambda: clock[0])
    latencies, memory, drawn, sent = [], [], -1.0, 0.0
    cpu0, rss0 = time.process_time(), rss_mb()
    t, k = 0.0, 0
    while t < seconds:
        clock[0] = t
        if t - sent >= 0.5:  # the microphone's chunk (the app's stream_every=0.5)
            a, b = int(sent * 48000) % sound.size, int(t * 48000) % sound.size
            session.add_audio(sound[a:b] if b > a else sound[a:], 48000)
            sent = t
        start = time.perf_counter()
        session.add_frame(frames[int(t * clip_fps) % len(frames)])
        if t - drawn >= LIVE_REFRESH_S:
            session.update()
            drawn = t
            latencies.append(time.perf_counter() - start)
        if k % int(fps * 10) == 0:
            memory.append((round(t), round(rss_mb() - rss0, 1)))
        t, k = t + 1 / fps, k + 1
    cpu = time.process_time() - cpu0
    summary_start = time.perf_counter()
    pred = session.summary()
    summary_s = time.perf_counter() - summary_start
    session.close()
    return {"fps": fps, "seconds": seconds, "cpu_per_session": cpu / seconds,
            "latency_p50_ms": 1000 * float(np.percentile(latencies, 50)),
            "latency_p95_ms": 1000 * float(np.percentile(latencies, 95)), "updates_per_s": len(latencies) / seconds,
            "memory_mb": memory, "summary_s": summary_s, "summary": pred.verdict, "windows": len(pred.timeline)}


def main() -> None:
    import cv2

    from emotion import EmotionPipeline
    from emotion.media import load_audio

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=2.0)
    p.add_argument("--fps", type=float, nargs="+", default=[5.0, 10.0])
    p.add_argument("--weights", default=str(ROOT / "weights"))
    args = p.parse_args()
    pipe = EmotionPipeline.from_pretrained(args.weights)
    cap = cv2.VideoCapture(str(CLIP))
    clip_fps, frames = cap.get(cv2.CAP_PROP_FPS), []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(np.ascontiguousarray(bgr[:, :, ::-1]))
    sound = load_audio(CLIP, 48000)
    print(f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores; {CLIP.name} ({frames[0].shape[1]}×{frames[0].shape[0]}) "
          f"looped for {args.minutes:g} min, sound in 0.5 s chunks, answer redrawn every 0.25 s")
    for fps in args.fps:
        r = run(pipe, frames, clip_fps, sound, fps, args.minutes * 60)
        print(f"{fps:g} fps: CPU {r['cpu_per_session']:.2f} cores per session; frame → answer p50 "
              f"{r['latency_p50_ms']:.0f} ms, p95 {r['latency_p95_ms']:.0f} ms ({r['updates_per_s']:.1f} answers/s); "
              f"memory growth (s, MB): {r['memory_mb']}; summary at Stop {r['summary_s']:.1f} s "
              f"({r['windows']} windows): {r['summary']}")
    print(f"peak resident memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
