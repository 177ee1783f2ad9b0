"""Probe and decode media files: the audio track as 16 kHz mono, video frames in order.

ffmpeg (the binary bundled with imageio-ffmpeg) probes and decodes; frames are read sequentially
from a pipe (never seeking, never trusting the container's frame count). Every problem a user can
cause becomes an EmotionError with a plain message.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import EmotionError

IMAGE_FORMATS = {"image2", "png_pipe", "jpeg_pipe", "tiff_pipe", "bmp_pipe", "webp_pipe", "gif",
                 "pdf", "svg_pipe", "jpegxl_pipe", "pgm_pipe", "ppm_pipe", "qoi_pipe"}
PROBE_TIMEOUT_S = 30


def ffmpeg_exe() -> str:
    """The ffmpeg binary shipped inside the imageio-ffmpeg wheel (no system ffmpeg needed)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@dataclass
class MediaInfo:
    """What ffmpeg says about a file before anything is decoded."""

    path: str
    format_name: str
    duration_s: float | None  # what can really be decoded (a truncated file is shorter than its header says)
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    fps: float = 0.0
    rotation: int = 0
    video_codec: str = ""
    audio_codec: str = ""
    size_mb: float = 0.0
    header_duration_s: float | None = None  # what the container claims; None for browser webm recordings


def _parse_probe(path: str, text: str, size_mb: float) -> MediaInfo:
    fmt = re.search(r"Input #0, ([^ ]+?), from", text)
    dur = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", text)
    duration = None
    if dur:
        h, m, s = dur.groups()
        duration = int(h) * 3600 + int(m) * 60 + float(s)
    video = re.search(r"Stream #0:\d+.*?: Video: (\w+)[^\n]*", text)
    audio = re.search(r"Stream #0:\d+.*?: Audio: (\w+)", text)
    info = MediaInfo(path=path, format_name=fmt.group(1) if fmt else "", duration_s=duration,
                     has_video=bool(video), has_audio=bool(audio), size_mb=size_mb)
    if video:
        info.video_codec = video.group(1)
        line = video.group(0)
        wh = re.search(r", (\d{2,5})x(\d{2,5})", line)
        if wh:
            info.width, info.height = int(wh.group(1)), int(wh.group(2))
        fps = re.search(r"([\d.]+) fps", line)
        if fps:
            info.fps = float(fps.group(1))
    if audio:
        info.audio_codec = audio.group(1)
    rot = re.search(r"rotation of (-?[\d.]+) degrees", text)
    if rot:
        info.rotation = int(round(float(rot.group(1)))) % 360
    return info


def probe(path: str | Path, max_file_mb: float | None = None) -> MediaInfo:
    """Describe a media file, or raise EmotionError saying plainly why it cannot be used."""
    p = Path(path)
    if not p.is_file():
        raise EmotionError(f"File not found: {p.name}", code="not_found")
    size_mb = p.stat().st_size / 1e6
    if size_mb == 0:
        raise EmotionError(f"{p.name} is empty (0 bytes). Please choose another file.", code="empty_file")
    if max_file_mb is not None and size_mb > max_file_mb:
        raise EmotionError(f"{p.name} is {size_mb:.0f} MB; the limit is {max_file_mb:.0f} MB. "
                           "Please trim or compress the video.", code="too_large")
    try:
        run = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(p)],
                             capture_output=True, timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise EmotionError(f"{p.name} could not be read in time; it may be damaged.", code="corrupt") from None
    text = run.stderr.decode("utf-8", "replace")
    with open(p, "rb") as f:
        head = f.read(12)
    if "moov atom not found" in text and head[4:8] == b"ftyp":  # an MP4/MOV that starts right but ends early
        raise EmotionError(f"{p.name} is incomplete: the recording or download was cut off before the end, so "
                           "the video cannot be read.", code="truncated")
    if "Input #0" not in text:
        raise EmotionError(f"{p.name} is not a video or audio file we can read (it may be another kind of "
                           "file renamed, or damaged).", code="not_media")
    info = _parse_probe(str(p), text, size_mb)
    if info.format_name in IMAGE_FORMATS or info.video_codec in {"png", "bmp", "tiff", "webp", "gif"} or (
            info.has_video and not info.has_audio and info.video_codec == "mjpeg"
            and (info.duration_s or 0) <= 0.05):
        raise EmotionError(f"{p.name} is a still image. Please upload a video of a face (with speech) "
                           "or an audio recording.", code="image")
    if not info.has_video and not info.has_audio:
        raise EmotionError(f"{p.name} has neither a video nor an audio track.", code="no_streams")
    info.header_duration_s = info.duration_s
    if info.has_video:
        measured = video_packet_duration(str(p))
        if measured is not None and (info.duration_s is None or measured < info.duration_s):
            info.duration_s = measured
    return info


def video_packet_duration(path: str) -> float | None:
    """How long the video stream really lasts, from its packets (copied, not decoded: fast)."""
    try:
        run = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", path, "-map", "0:v:0", "-c", "copy",
                              "-f", "null", "-"], capture_output=True, timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return None
    text = run.stderr.decode("utf-8", "replace")
    times = re.findall(r"time=(\d+):(\d+):(\d+(?:\.\d+)?)", text)
    frames = re.findall(r"frame=\s*(\d+)", text)
    if not times or (frames and int(frames[-1]) == 0):
        return None
    h, m, sec = times[-1]
    return int(h) * 3600 + int(m) * 60 + float(sec)


@contextlib.contextmanager
def readable_copy(info: MediaInfo) -> Iterator[MediaInfo]:
    """Yield `info`, remuxed first (ffmpeg -c copy, in a temporary folder) when its duration is unknown.

    Browser webcam recordings (webm) carry no duration in their header; a remux writes one. The
    temporary folder is always removed.
    """
    if info.header_duration_s is not None or not info.has_video:
        yield info
        return
    tmp = tempfile.mkdtemp(prefix="emotion-remux-")
    try:
        out = str(Path(tmp) / "remuxed.mkv")
        subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y", "-i", info.path,
                        "-c", "copy", out], capture_output=True, timeout=300)
        if not Path(out).is_file() or Path(out).stat().st_size == 0:
            raise EmotionError(f"{Path(info.path).name} could not be read; it may be damaged.", code="corrupt")
        remuxed = probe(out)
        if remuxed.duration_s is None:
            raise EmotionError(f"{Path(info.path).name} has no readable length; it may be damaged.",
                               code="corrupt")
        remuxed.rotation = remuxed.rotation or info.rotation
        yield remuxed
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_audio(path: str | Path, sample_rate: int = 16000, timeout_s: float = 600) -> np.ndarray | None:
    """The first audio track as mono float32 at `sample_rate`, or None when the file has none."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0?",
           "-vn", "-ac", "1", "-ar", str(sample_rate), "-f", "f32le", "-"]
    try:
        run = subprocess.run(cmd, capture_output=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise EmotionError(f"Reading the sound of {Path(path).name} took too long.", code="timeout") from None
    wave = np.frombuffer(run.stdout, dtype=np.float32)
    if wave.size == 0:
        return None
    return wave.copy()


def read_frames(path: str | Path, start_s: float, step_s: float, count: int, max_side: int,
                skip_unreferenced: bool = False) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (i, rgb_frame) for the frames at times start_s + i * step_s, i < count, in order.

    An ffmpeg process decodes the video (upright: rotation metadata is applied), keeps only the
    frames on that time grid (the `fps` filter: the frame on screen at each grid time), shrinks them
    to at most `max_side` pixels and pipes them as YUV4MPEG; a thread reads ahead a few frames, so
    decoding goes on while the caller works. Grid times past the last decodable frame get nothing.
    No more than a few frames are ever held: memory stays flat however long the video. The process
    is always ended, also when the caller stops early.
    """
    import cv2

    side = f"min({max_side},max(iw,ih))"  # never upscale; even sizes for 4:2:0
    # Shifted so that grid time i lands on output slot i; round=up makes slot i the last frame at or before it.
    vf = (f"setpts=PTS-{float(start_s):.6f}/TB,fps=fps=1/{float(step_s):.9f}:start_time=0:round=up,"
          f"scale=w='2*trunc({side}*iw/max(iw,ih)/2)':h='2*trunc({side}*ih/max(iw,ih)/2)':flags=area")
    # Frames no other frame refers to (most B-frames) need not be decoded at all: a grid time then gets
    # the last decoded frame before it. Decoding is the cost of long, B-frame-heavy videos.
    skip = ["-skip_frame", "noref"] if skip_unreferenced else []
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-threads", str(os.cpu_count() or 2), *skip,
           "-i", str(path), "-map", "0:v:0", "-an", "-sn", "-vf", vf, "-frames:v", str(count),
           "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", "-"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)
    frames: queue.Queue = queue.Queue(maxsize=8)
    started = threading.Event()

    def read_ahead() -> None:
        try:
            header = proc.stdout.readline()
            if not header.startswith(b"YUV4MPEG2"):
                return
            started.set()
            fields = dict((f[:1], f[1:]) for f in header.split()[1:])
            w, h = int(fields[b"W"]), int(fields[b"H"])
            size = w * h * 3 // 2
            while proc.stdout.readline().startswith(b"FRAME"):  # killing ffmpeg ends this loop
                data = _read_exactly(proc.stdout, size)
                if data is None:
                    return
                frames.put(np.frombuffer(data, np.uint8).reshape(h * 3 // 2, w))
        finally:
            frames.put(None)

    reader = threading.Thread(target=read_ahead, daemon=True)
    reader.start()
    try:
        for i in range(count):
            yuv = frames.get()
            if yuv is None:
                if not started.is_set() and proc.wait() != 0:
                    raise EmotionError(f"The video in {Path(path).name} could not be decoded; it may be damaged.",
                                       code="corrupt")
                return
            yield i, cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB_I420)
    finally:
        proc.kill()
        while reader.is_alive():  # unblock a reader waiting on a full queue
            with contextlib.suppress(queue.Empty):
                frames.get(timeout=0.05)
        proc.wait()
        proc.stdout.close()


def _read_exactly(stream, size: int) -> bytes | None:
    chunks, got = [], 0
    while got < size:
        chunk = stream.read(size - got)
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)
