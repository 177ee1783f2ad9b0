"""Batch throughput: files per minute and peak memory per worker, local processes vs Ray Data, 1 and 2 workers.

    python bench/batch.py [--files 200] [--configs local:1 local:2 ray:2] [--threads 1]

The corpus is made here from the shared data (copies, so each file is read for real): talking-face clips
(256×256, ~4 s, no sound), RAVDESS speech (FLAC) and the 1080p speech clip, in the proportions 5 : 3 : 1.
Each configuration runs in a fresh process (models loaded in each worker: that time is included).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("EMOTION_SHARED", ROOT.parent / "shared"))


def make_corpus(folder: Path, n: int) -> list[Path]:
    faces = sorted((SHARED / "data" / "mead-clips").glob("*_front_*.mp4"))
    voices = sorted((SHARED / "data" / "ravdess-speech-16k").glob("Actor_*/*.flac"))[::7]
    talk = SHARED / "data" / "mead-clips" / "M030_sad_eamm1.mp4"
    pattern = ["face"] * 5 + ["voice"] * 3 + ["talk"]
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        kind = pattern[i % len(pattern)]
        src = {"face": faces[i % len(faces)], "voice": voices[i % len(voices)], "talk": talk}[kind]
        dst = folder / f"{i:04d}_{src.name}"
        if not dst.exists():
            shutil.copy(src, dst)
        out.append(dst)
    return out


def worker_rss_mb(driver: int) -> list[float]:
    """RSS of each worker: the driver's descendants that are Python processes, and Ray's actor processes."""
    procs = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmd = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            procs[int(stat.parent.name)] = (int(fields[1]), int(fields[21]) * os.sysconf("SC_PAGE_SIZE") / 1e6, cmd)
        except (OSError, ValueError, IndexError):
            continue
    out = []
    for pid, (ppid, rss, cmd) in procs.items():
        p, is_child = ppid, False
        while p in procs and p != 1:
            if p == driver:
                is_child = True
                break
            p = procs[p][0]
        if (is_child and "multiprocessing" in cmd) or cmd.startswith("ray::RayPredictor") or "MapBatches(RayPredictor)" in cmd:
            out.append(rss)
    return out


def run(config: str, corpus: Path, threads: int | None) -> None:
    engine, workers = config.split(":")
    out = Path(tempfile.mkdtemp(prefix="bench-batch-")) / "results.jsonl"
    cmd = [sys.executable, "-m", "emotion", "batch", str(corpus), "--out", str(out), "--workers", workers,
           "--engine", engine] + (["--threads", str(threads)] if threads else [])
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0.0
    while proc.poll() is None:
        workers_rss = worker_rss_mb(proc.pid)
        if not workers_rss and workers == "1" and engine == "local":  # one worker: the models run in the driver
            workers_rss = [float((Path(f"/proc/{proc.pid}/statm").read_text().split()[1])) * os.sysconf("SC_PAGE_SIZE") / 1e6]
        peak = max([peak] + workers_rss)
        time.sleep(0.5)
    took = time.perf_counter() - t
    summary = proc.stderr.read().strip().splitlines()[-1]
    n = len(out.read_text().splitlines())
    print(f"| {engine} | {workers} | {n} | {took:.0f} s | {60 * n / took:.1f} | {peak:.0f} MB |  {summary}", flush=True)
    shutil.rmtree(out.parent, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--files", type=int, default=200)
    p.add_argument("--configs", nargs="*", default=["local:1", "local:2", "ray:2"])
    p.add_argument("--threads", type=int, default=None, help="PyTorch threads per worker")
    p.add_argument("--corpus", default=None, help="folder for the generated files (kept)")
    args = p.parse_args()
    corpus = Path(args.corpus or tempfile.mkdtemp(prefix="bench-corpus-"))
    make_corpus(corpus, args.files)
    os.environ.setdefault("EMOTION_FACE_MODEL", str(SHARED / "models" / "face_landmarker.task"))
    print(f"{args.files} files in {corpus}")
    print("| engine | workers | files | wall time (incl. loading) | files/min | peak RSS per worker |")
    print("|---|---|---|---|---|---|")
    for config in args.configs:
        run(config, corpus, args.threads)


if __name__ == "__main__":
    main()
