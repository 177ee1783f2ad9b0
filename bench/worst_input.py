"""The app's peak memory and time under the worst uploads: crafted ones (refused) and the largest allowed.

    python bench/worst_input.py [--cases bomb long_audio ...] [--keep DIR] [--no-together]

Starts `python app.py` as a separate process (as on a Space: default limits, 300 s, 200 MB), sends each file
through gradio_client's /predict, and samples the RSS of the app and of its ffmpeg children every 0.1 s.
The files are made here with ffmpeg (a few minutes the first time; --keep DIR reuses them).
"""

from __future__ import annotations

import argparse
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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
    path, todo = out("streams_500.mkv")
    if todo:  # 500 copies of a two-frame 4K stream in 12.6 MB: ffmpeg opened them all (4.8 GB)
        ffmpeg("-f", "lavfi", "-i", "color=black:size=3840x2160:rate=1", "-t", "2", "-c:v", "libx264", "-preset",
               "ultrafast", str(folder / "k4.mkv"))
        ffmpeg("-i", str(folder / "k4.mkv"), *["-map", "0:v"] * 500, "-c", "copy", str(path))
    cases["many_streams"] = (path, "500 streams of 4K H.264 in one mkv")
    path, todo = out("rate_254mhz.wav")
    if todo:  # 32 KB of PCM whose header claims 254,000,003 Hz: the resampler reached 2.2 GB
        data = bytes(32000)
        rate = 254_000_003
        path.write_bytes(b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + struct.pack(
            "<IHHIIHH", 16, 1, 1, rate, rate * 2 % 2 ** 32, 2, 16) + b"data" + struct.pack("<I", len(data)) + data)
    cases["resampler"] = (path, "WAV claiming 254,000,003 Hz")
    path, todo = out("rate_254mhz_track.mkv")
    if todo:
        ffmpeg("-i", str(TALK), "-i", str(folder / "rate_254mhz.wav"), "-map", "0:v", "-map", "1:a", "-c", "copy",
               str(path))
    cases["resampler_track"] = (path, "video whose sound track claims 254,000,003 Hz")
    for fps, frames in ((1000, 600), (200, 400)):
        path, todo = out(f"switch_{fps}fps.mp4")
        if todo:  # the first frame 32×32 (what the header says), the rest 4K
            ffmpeg("-f", "lavfi", "-i", f"testsrc=size=32x32:rate={fps}", "-frames:v", "1", "-c:v", "libx264",
                   "-preset", "ultrafast", "-bsf:v", "h264_mp4toannexb", str(folder / "a.h264"))
            ffmpeg("-f", "lavfi", "-i", f"color=gray:size=3840x2160:rate={fps}", "-frames:v", str(frames),
                   "-c:v", "libx264", "-preset", "ultrafast", str(folder / "b.h264"))
            (folder / "ab.h264").write_bytes((folder / "a.h264").read_bytes() + (folder / "b.h264").read_bytes())
            ffmpeg("-r", str(fps), "-i", str(folder / "ab.h264"), "-c", "copy", str(path))
        cases[f"switch_{fps}"] = (path, f"32×32 first frame, then 4K at {fps} fps")
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
    p.add_argument("--no-together", dest="together", action="store_false",
                   help="skip the four-uploads-at-once check")
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
        if args.together:
            four_at_once(f"http://127.0.0.1:{port}/", server.pid, folder)
    finally:
        server.terminate()
        server.wait(30)


def four_at_once(url: str, pid: int, folder: Path) -> None:
    """Four heavy uploads at once to three endpoints (/predict twice, /analyze, and the hidden preview event
    joined through the raw queue, as a hostile client can): how many ffmpeg decoders ran at once (one per
    analysis or preview), peak memory, and the time until all four answered."""
    import json
    import urllib.request

    from gradio_client import Client, handle_file

    long_clip, flv = folder / "talk_60s.mp4", folder / "talk_60s.flv"
    if not long_clip.is_file():
        ffmpeg("-stream_loop", "-1", "-i", str(TALK), "-t", "60", "-c", "copy", str(long_clip))
        ffmpeg("-i", str(long_clip), "-c:v", "flv1", "-q:v", "4", "-c:a", "mp3", str(flv))
    config = json.loads(urllib.request.urlopen(url + "config", timeout=30).read())
    preview_id = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "make_preview")
    import uuid

    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"talk.flv\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + flv.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(url + "gradio_api/upload", data=body,
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    uploaded = json.loads(urllib.request.urlopen(req, timeout=60).read())[0]
    peak = {"tree": 0.0, "ffmpeg": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak["tree"] = max(peak["tree"], tree_rss_mb(pid)[1])
            peak["ffmpeg"] = max(peak["ffmpeg"], len(ffmpeg_descendants(pid)))
            time.sleep(0.05)

    def predict() -> None:
        Client(url, verbose=False).predict(video=handle_file(str(long_clip)), api_name="/predict")

    def analyze() -> None:
        Client(url, verbose=False).predict(video=handle_file(str(long_clip)), api_name="/analyze")

    def preview() -> None:
        payload = {"data": [{"path": uploaded, "meta": {"_type": "gradio.FileData"}}], "fn_index": preview_id,
                   "session_hash": "bench", "event_data": None, "trigger_id": None}
        urllib.request.urlopen(urllib.request.Request(url + "gradio_api/queue/join", data=json.dumps(payload).encode(),
                                                      headers={"Content-Type": "application/json"}), timeout=30).read()
        urllib.request.urlopen(url + "gradio_api/queue/data?session_hash=bench", timeout=600).read()

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t = time.perf_counter()
    jobs = [threading.Thread(target=f) for f in (predict, predict, analyze, preview)]
    for j in jobs:
        j.start()
    for j in jobs:
        j.join()
    done.set()
    print(f"\nfour at once (2× /predict, /analyze, preview; 60 s 1080p): all answered in "
          f"{time.perf_counter() - t:.1f} s; at most {peak['ffmpeg']} ffmpeg decoders at once; "
          f"peak RSS app + ffmpeg {peak['tree']:.0f} MB")


def ffmpeg_descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    while todo:
        for child in parents.get(todo.pop(), []):
            todo.append(child)
            try:
                if b"ffmpeg" in Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")[0]:
                    found.append(child)
            except OSError:
                pass
    return found


if __name__ == "__main__":
    main()
