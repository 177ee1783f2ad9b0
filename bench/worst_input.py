"""The app's peak memory and time under the worst uploads: crafted ones (refused) and the largest allowed.

    python bench/worst_input.py [--cases bomb long_audio ...] [--keep DIR]

Starts `python app.py` as a separate process (as on a Space: default limits, 300 s, 200 MB), sends each file
through gradio_client's /predict, and samples the RSS of the app and of its ffmpeg children every 0.1 s.
The files are made here with ffmpeg (a few minutes the first time; --keep DIR reuses them).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("EMOTION_SHARED", ROOT.parent / "shared"))
TALK = SHARED / "data" / "mead-clips" / "M030_sad_eamm1.mp4"


def ffmpeg(*args: str) -> None:
    from emotion.media import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y", *args], check=True)


def make_cases(folder: Path) -> dict[str, tuple[Path, str]]:
    """name → (file, what it is). Existing files are reused."""
    folder.mkdir(parents=True, exist_ok=True)

    def out(name: str) -> tuple[Path, bool]:
        path = folder / name
        return path, not path.is_file()

    cases = {}
    path, todo = out("long_audio_10h.webm")
    if todo:  # 10 minutes of speech-like sound, looped to 10 hours, in a webm without a duration
        ffmpeg("-f", "lavfi", "-i", "anoisesrc=d=600:c=pink:r=16000:a=0.1", "-c:a", "libopus", "-b:a", "6k",
               str(folder / "ten_min.webm"))
        ffmpeg("-stream_loop", "59", "-i", str(folder / "ten_min.webm"), "-c", "copy", "-live", "1", "-f", "webm",
               str(path))
    cases["long_audio"] = (path, "10 h of sound, webm without a duration in its header")
    path, todo = out("short_video_2h_audio.mp4")
    if todo:
        ffmpeg("-i", str(TALK), "-stream_loop", "-1", "-f", "lavfi", "-i", "anoisesrc=c=pink:r=16000:a=0.1",
               "-map", "0:v", "-map", "1:a", "-t", "7200", "-c:v", "libx264", "-preset", "ultrafast",
               "-c:a", "libopus", "-b:a", "6k", str(path))
    cases["long_track"] = (path, "a 3.7 s video track beside a 2 h sound track")
    path, todo = out("bomb_16000.mp4")
    if todo:
        ffmpeg("-f", "lavfi", "-i", "color=c=black:size=16000x16000:rate=1", "-frames:v", "2", "-c:v", "libx264",
               "-preset", "ultrafast", str(path))
    cases["bomb"] = (path, "16000×16000 H.264 (decompression bomb)")
    path, todo = out("allowed_4k_300s.mp4")
    if todo:  # the largest video the demo accepts: 4K, 30 fps, 300 s, under 200 MB
        ffmpeg("-i", str(TALK), "-vf", "scale=3840:2160,fps=30", "-c:v", "libx264", "-preset", "ultrafast",
               "-b:v", "4M", "-c:a", "aac", str(folder / "talk_4k.mp4"))
        ffmpeg("-stream_loop", "-1", "-i", str(folder / "talk_4k.mp4"), "-t", "299", "-c", "copy", str(path))
    cases["allowed_4k"] = (path, "4K 30 fps, 299 s (the largest allowed video)")
    return cases


def tree_rss_mb(pid: int) -> tuple[float, float]:
    """(RSS of the process, RSS of the process and all its descendants), in MB."""
    children: dict[int, list[int]] = {}
    rss: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            p = int(stat.parent.name)
            children.setdefault(int(fields[1]), []).append(p)
            rss[p] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE") / 1e6
        except (OSError, ValueError, IndexError):
            continue
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0.0)
        todo += children.get(p, [])
    return rss.get(pid, 0.0), total


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--cases", nargs="*", default=None)
    p.add_argument("--keep", default=None, help="folder for the generated files (kept between runs)")
    args = p.parse_args()
    folder = Path(args.keep or tempfile.mkdtemp(prefix="worst-input-"))
    print("making the files (first time only) ...", flush=True)
    cases = make_cases(folder)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "TF_CPP_MIN_LOG_LEVEL": "3",
           "EMOTION_FACE_MODEL": str(SHARED / "models" / "face_landmarker.task")}
    server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        from gradio_client import Client, handle_file

        for _ in range(120):
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
                break
            except Exception:
                time.sleep(1)
        print(f"app loaded: RSS {tree_rss_mb(server.pid)[0]:.0f} MB")
        print("| upload | size | answer | time | peak RSS app | peak RSS app + ffmpeg |")
        print("|---|---|---|---|---|---|")
        for name in args.cases or list(cases):
            path, what = cases[name]
            peak = [0.0, 0.0]
            done = threading.Event()

            def sample() -> None:
                while not done.is_set():
                    own, tree = tree_rss_mb(server.pid)
                    peak[0], peak[1] = max(peak[0], own), max(peak[1], tree)
                    time.sleep(0.1)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            t = time.perf_counter()
            result = client.predict(video=handle_file(str(path)), api_name="/predict")
            took = time.perf_counter() - t
            done.set()
            sampler.join()
            answer = f"refused: {result['code']}" if "error" in result else \
                f"{result['verdict']} ({len(result['timeline']) or 1} windows)"
            print(f"| {what} | {path.stat().st_size / 1e6:.1f} MB | {answer} | {took:.1f} s | {peak[0]:.0f} MB "
                  f"| {peak[1]:.0f} MB |", flush=True)
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
