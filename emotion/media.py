"""Probe and decode media files: the audio track as 16 kHz mono, video frames in order.

ffmpeg (the binary bundled with imageio-ffmpeg) probes and decodes; frames are read sequentially
from a pipe (never seeking, never trusting the container's frame count). Every problem a user can
cause becomes an EmotionError with a plain message.

A public demo feeds this module files made by strangers, so ffmpeg is fenced in: it opens only the
named file (`file:` + absolute path, the `file` protocol alone, media demuxers only: no playlist,
concat script or network stream can make it read something else), every limit is checked on what is
actually decoded (never on what a header claims), decoding stops at a hard cap, and every ffmpeg
process runs against a deadline.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import EmotionError
from .names import display_name

IMAGE_FORMATS = {"image2", "png_pipe", "jpeg_pipe", "tiff_pipe", "bmp_pipe", "webp_pipe", "gif",
                 "pdf", "svg_pipe", "jpegxl_pipe", "pgm_pipe", "ppm_pipe", "qoi_pipe"}
# The demuxers ffmpeg may use: audio and video containers, plus image formats (only so that an image can be
# named as one). Playlists (hls, dash), concat scripts, image sequences by pattern, sdp/rtp and the like
# open other files or the network, so they are not on the list.
MEDIA_DEMUXERS = ("mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm", "avi", "flv", "live_flv", "mpegts",
                  "mpeg", "ogg", "wav", "w64", "flac", "mp3", "aac", "asf", "aiff", "caf", "amr", "wv", "ivf", "mxf",
                  "dv", "nut", "rm", "opus")
# Not `image2`: it reads numbered sequences of other files (a name with %d); images are told by content instead.
IMAGE_DEMUXERS = ("png_pipe", "jpeg_pipe", "bmp_pipe", "tiff_pipe", "webp_pipe", "gif", "jpegxl_pipe",
                  "qoi_pipe", "pgm_pipe", "ppm_pipe")
IMAGE_SIGNS = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM", b"II*\x00", b"MM\x00*")
PLAYLIST_SIGNS = (b"#EXTM3U", b"#EXT-X", b"ffconcat", b"[playlist]", b"<MPD", b"<?xml", b"<smil", b"#EXTINF",
                  b"file '", b"file /", b"v=0\r\n", b"v=0\n")
PROBE_TIMEOUT_S = 30
MIN_SIDE_PX = 16  # nothing smaller can show a face
# ffmpeg opens, and decodes a frame of, every stream of a file before it reads any: a 12 MB file holding 500
# copies of a 4K stream cost 4.8 GB. Only the first video and sound streams are ever read; files with more
# streams than a real recording has are refused before they are all opened.
MAX_STREAMS = 16  # phones write 2–6 (video, sound, metadata tracks)
MAX_VIDEO_STREAMS = 3  # the picture, a cover image, a second angle
# What needs no picture (the probe, packet counts, copies, the sound) decodes no frame larger than this while
# ffmpeg opens the file (sizes come from the headers).
NO_PICTURE_MAX_PIXELS = 256 * 256
# Every ffmpeg child gets an address-space limit and no allocation larger than MAX_ALLOC_BYTES: whatever a
# file holds, one decoder cannot push the app past its memory budget (a 4K decode with 16 threads fits in 1 GiB).
FFMPEG_MAX_MEMORY_MB = 1024
MAX_ALLOC_BYTES = 256 * 1024 ** 2  # a 4K frame is 12 MB
MAX_SAMPLE_RATE = 384_000  # the highest rate real recorders use; a header may claim 254 MHz
MIN_SAMPLE_RATE = 2_000
MAX_CHANNELS = 32
CHANNEL_LAYOUTS = {"mono": 1, "stereo": 2, "2.1": 3, "3.0": 3, "quad": 4, "4.0": 4, "5.0": 5, "5.1": 6, "6.0": 6,
                   "6.1": 7, "7.0": 7, "7.1": 8, "hexadecagonal": 16, "22.2": 24}


def ffmpeg_exe() -> str:
    """The ffmpeg binary shipped inside the imageio-ffmpeg wheel (no system ffmpeg needed)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@dataclass(frozen=True)
class Limits:
    """What a file may be. Checked on what the file really holds: packets counted, samples decoded."""

    max_duration_s: float = 900.0  # the longest stream, video or audio
    max_file_mb: float = 500.0
    max_frame_pixels: int = 4096 * 2304  # 4K with room; an 8K or 16000×16000 "bomb" is refused
    max_pixel_rate: float = 3840 * 2160 * 60.0  # pixels per second: 4K at 60 fps
    max_fps: float = 240.0  # frames per second as counted from the packets (phones' slow motion is 240)

    def frame_pixels_at(self, fps: float) -> int:
        """The largest frame the decoder may make at `fps` frames per second: checked on every decoded frame,
        so a stream whose first frame is small and the rest 4K cannot pass on its first header. A quarter of
        slack: a rate counted from a few packets runs high (4K at 60 fps counts as 60.6)."""
        return int(min(self.max_frame_pixels, 1.25 * self.max_pixel_rate / max(fps, 1.0)))


def ffmpeg_input(path: str | Path, max_pixels: int | None = None, pictures: bool = True) -> list[str]:
    """The input arguments that make ffmpeg open exactly this file and nothing else.

    `file:` + the absolute path stops a name like `http:x` or `concat:a|b` from being read as a URL;
    the protocol and demuxer allow-lists stop a playlist or script inside the file from opening others;
    `max_streams` refuses a file of hundreds of streams before each is opened; `max_pixels` makes the
    decoder refuse larger frames, every frame, also while probing (a 16000×16000 frame would otherwise
    cost 600 MB before its size could be checked). `pictures=False` for every call that needs no decoded
    picture (probing, counting or copying packets, the sound): one thread and tiny frames.
    """
    pixels = (max_pixels or Limits.max_frame_pixels) if pictures else NO_PICTURE_MAX_PIXELS
    return ["-protocol_whitelist", "file", "-format_whitelist", ",".join(MEDIA_DEMUXERS + IMAGE_DEMUXERS),
            "-max_streams", str(MAX_STREAMS), *([] if pictures else ["-threads", "1"]),
            "-max_pixels", str(pixels), "-i", "file:" + str(Path(path).absolute())]


def ffmpeg_command(args: list[str]) -> list[str]:
    """ffmpeg with `args`, fenced: no allocation over MAX_ALLOC_BYTES, and on Linux an address-space limit
    of FFMPEG_MAX_MEMORY_MB (set by the shell that execs it: no preexec_fn in a threaded app)."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-max_alloc", str(MAX_ALLOC_BYTES), *args]
    if sys.platform.startswith("linux") and os.path.exists("/bin/sh"):
        cmd = ["/bin/sh", "-c", 'ulimit -v "$0" && exec "$@"', str(FFMPEG_MAX_MEMORY_MB * 1024), *cmd]
    return cmd


def ffmpeg_env() -> dict[str, str]:
    """The environment for ffmpeg: glibc's per-thread malloc arenas reserve address space that the limit
    would count; two are enough."""
    return {**os.environ, "MALLOC_ARENA_MAX": "2"}


def run_ffmpeg(args: list[str], timeout_s: float, what: str) -> subprocess.CompletedProcess:
    """Run ffmpeg (stdout and stderr captured) and end it at the deadline with EmotionError(code="timeout")."""
    try:
        return subprocess.run(ffmpeg_command(args), capture_output=True, timeout=timeout_s, env=ffmpeg_env())
    except subprocess.TimeoutExpired:
        raise EmotionError(f"{what} took too long (over {timeout_s:.0f} s); the file may be damaged or built to "
                           "be slow to decode.", code="timeout") from None


def decode_budget_s(media_s: float) -> float:
    """How long decoding `media_s` seconds of a file may take before it is stopped: generous for real
    files (10 minutes of phone-like 1080p decode in ~2 minutes here), and a bound for crafted ones."""
    return 30.0 + 1.0 * media_s


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
    measured_s: float | None = None  # the video's length from its packets, up to the limit it was measured to
    cover_art: bool = False  # an audio file with an attached picture (album art), not a video
    video_frames: int = 0  # frames counted in the packet scan
    streams: int = 0  # all streams: video, sound, subtitles, data
    video_streams: int = 0  # attached pictures included
    sample_rate: int = 0  # of the first sound track, as its header says
    channels: int = 0
    decode_pixels: int = Limits.max_frame_pixels  # the largest frame the decoder may make (see Limits.frame_pixels_at)

    @property
    def packet_fps(self) -> float:
        """The video's real frame rate: frames counted over the length measured from its packets."""
        return self.video_frames / self.measured_s if self.video_frames and self.measured_s else 0.0


def _parse_probe(path: str, text: str, size_mb: float) -> MediaInfo:
    fmt = re.search(r"Input #0, ([^ ]+?), from", text)
    dur = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", text)
    duration = None
    if dur:
        h, m, s = dur.groups()
        duration = int(h) * 3600 + int(m) * 60 + float(s)
    videos = re.findall(r"Stream #0:\d+.*?: Video: (\w+)([^\n]*)", text)
    real_videos = [v for v in videos if "(attached pic)" not in v[1]]
    audio = re.search(r"Stream #0:\d+.*?: Audio: (\w+)", text)
    info = MediaInfo(path=path, format_name=fmt.group(1) if fmt else "", duration_s=duration,
                     has_video=bool(real_videos), has_audio=bool(audio), size_mb=size_mb,
                     cover_art=bool(videos) and not real_videos)
    if real_videos:
        codec, line = real_videos[0]
        info.video_codec = codec
        wh = re.search(r", (\d+)x(\d+)", line)
        if wh:
            info.width, info.height = int(wh.group(1)), int(wh.group(2))
        fps = re.search(r"([\d.]+)(k?) fps", line) or re.search(r"([\d.]+)(k?) tbr", line)
        if fps:
            info.fps = float(fps.group(1)) * (1000 if fps.group(2) else 1)
    if audio:
        info.audio_codec = audio.group(1)
        line = text[audio.end():].split("\n", 1)[0]
        rate = re.search(r", (\d+) Hz", line)
        info.sample_rate = int(rate.group(1)) if rate else 0
        layout = re.search(r" Hz, ([^,]+)", line)
        if layout:
            count = re.fullmatch(r"(\d+) channels.*", layout.group(1))
            info.channels = int(count.group(1)) if count else CHANNEL_LAYOUTS.get(layout.group(1).split("(")[0], 0)
    info.streams = len(re.findall(r"^\s*Stream #0:\d+", text, re.M))
    info.video_streams = len(videos)
    rot = re.search(r"rotation of (-?[\d.]+) degrees", text)
    if rot:
        info.rotation = int(round(float(rot.group(1)))) % 360
    return info


def _check_is_file(p: Path) -> None:
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        raise EmotionError(f"File not found: {display_name(p)}", code="not_found") from None
    except OSError as exc:
        raise EmotionError(f"{display_name(p)} cannot be opened ({exc.strerror}).", code="not_found") from None
    if stat.S_ISDIR(mode):
        raise EmotionError(f"{display_name(p)} is a folder, not a file. Please choose a video or audio file.",
                           code="not_a_file")
    if not stat.S_ISREG(mode):
        raise EmotionError(f"{display_name(p)} is not a regular file (a pipe, socket or device). Please choose "
                           "a video or audio file saved on disk.", code="not_a_file")


def _sniff_text(head: bytes, name: str) -> None:
    """Refuse playlists and scripts by their first bytes, whatever the file is called: they name other files."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if any(text.startswith(sign) for sign in PLAYLIST_SIGNS) or (
            b"#EXTM3U" in head or b"ffconcat version" in head):
        raise EmotionError(f"{name} is a playlist or script that points to other files, not a recording. "
                           "Please upload the video or audio file itself.", code="playlist")


def _still_image(name: str) -> EmotionError:
    return EmotionError(f"{name} is a still image. Please upload a video of a face (with speech) "
                        "or an audio recording.", code="image")


def _is_animated_webp(head: bytes) -> bool:
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP" and (
        (head[12:16] == b"VP8X" and bool(head[20] & 0x02)) or b"ANIM" in head)


def probe(path: str | Path, limits: Limits | None = None, shown_as: str | Path | None = None) -> MediaInfo:
    """Describe a media file, or raise EmotionError saying plainly why it cannot be used.

    With `limits`, a file beyond them is refused here, before anything is decoded: its size, its
    frame size and pixel rate, and the length of its video as counted from its packets (counted up
    to the limit only, so a crafted 10-hour file costs no more than an allowed one). The sound's
    length is checked while it is decoded (`load_audio`). Messages name the file as `shown_as`
    (default: its own name).
    """
    p = Path(path)
    name = display_name(shown_as or p)
    _check_is_file(p)
    size_mb = p.stat().st_size / 1e6
    if size_mb == 0:
        raise EmotionError(f"{name} is empty (0 bytes). Please choose another file.", code="empty_file")
    if limits is not None and size_mb > limits.max_file_mb:
        raise EmotionError(f"{name} is {size_mb:.0f} MB; the limit is {limits.max_file_mb:.0f} MB. "
                           "Please trim or compress the video.", code="too_large")
    with open(p, "rb") as f:
        head = f.read(512)
    _sniff_text(head, name)
    text = run_ffmpeg(ffmpeg_input(p, pictures=False), PROBE_TIMEOUT_S, f"Reading {name}").stderr.decode("utf-8", "replace")
    if "exceeds max_streams" in text:
        raise _too_many_streams(name, f"more than {MAX_STREAMS}")
    if "Input #0" not in text and "Cannot allocate memory" in text:
        raise _too_demanding(name)
    if "moov atom not found" in text and head[4:8] == b"ftyp":  # an MP4/MOV that starts right but ends early
        raise EmotionError(f"{name} is incomplete: the recording or download was cut off before the end, so "
                           "the video cannot be read.", code="truncated")
    if "Input #0" not in text and (head.startswith(IMAGE_SIGNS) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")):
        raise _still_image(name)
    if "Input #0" not in text:
        raise EmotionError(f"{name} is not a video or audio file we can read (it may be another kind of "
                           "file renamed, or damaged).", code="not_media")
    info = _parse_probe(str(p), text, size_mb)
    if (info.format_name == "gif" and (info.duration_s or 0) > 0.05) or _is_animated_webp(head):
        raise EmotionError(f"{name} is an animated image (GIF or WebP): it has no sound and too few, irregular "
                           "frames. Please upload the original video instead.", code="animated_image")
    if info.format_name in IMAGE_FORMATS or info.video_codec in {"png", "bmp", "tiff", "webp", "gif"} or (
            info.has_video and not info.has_audio and info.video_codec == "mjpeg"
            and (info.duration_s or 0) <= 0.05):
        raise _still_image(name)
    if not info.has_video and not info.has_audio:
        raise EmotionError(f"{name} has neither a video nor an audio track.", code="no_streams")
    if info.video_streams > MAX_VIDEO_STREAMS:
        raise _too_many_streams(name, f"{info.video_streams} video")
    if info.has_audio:
        _check_sound_format(info, name)
    if info.has_video:
        _check_frame_size(info, name, limits)
    info.header_duration_s = info.duration_s
    if info.has_video:
        cap = None if limits is None else limits.max_duration_s
        measured, info.video_frames = video_packet_scan(str(p), cap, name)
        info.measured_s = measured
        if measured is not None and (info.duration_s is None or measured < info.duration_s):
            info.duration_s = measured
        if limits is not None and info.packet_fps > 0:
            _check_frame_rate(info, name, limits)
    if limits is not None:
        check_length(info.measured_s if info.measured_s is not None else info.header_duration_s,
                     limits.max_duration_s)
    return info


def _too_many_streams(name: str, count: str) -> EmotionError:
    return EmotionError(f"{name} holds {count} streams; a recording has one picture and one sound track (at most "
                        f"{MAX_STREAMS} streams, {MAX_VIDEO_STREAMS} of them video, are accepted). Please export the "
                        "video again from the app that made it.", code="too_many_streams")


def _too_demanding(name: str) -> EmotionError:
    return EmotionError(f"{name} would need more memory to decode than the app allows "
                        f"({FFMPEG_MAX_MEMORY_MB} MB); it may be damaged or built to exhaust the server.",
                        code="too_demanding")


def _check_sound_format(info: MediaInfo, name: str) -> None:
    """A sound track's header decides how much the resampler allocates: 254 MHz cost 2.2 GB."""
    if info.sample_rate and not MIN_SAMPLE_RATE <= info.sample_rate <= MAX_SAMPLE_RATE:
        raise EmotionError(f"The sound track of {name} says it holds {info.sample_rate:,} samples per second; "
                           f"recordings use {MIN_SAMPLE_RATE:,} to {MAX_SAMPLE_RATE:,}. The file is damaged or "
                           "crafted.", code="bad_audio")
    if info.channels > MAX_CHANNELS:
        raise EmotionError(f"The sound track of {name} says it has {info.channels} channels; at most "
                           f"{MAX_CHANNELS} are accepted. The file is damaged or crafted.", code="bad_audio")


def _check_frame_rate(info: MediaInfo, name: str, limits: Limits) -> None:
    """The frame rate counted from the packets, not the header's: it sets the largest frame the decoder may
    make (`decode_pixels`), so the pixel rate holds on every decoded frame."""
    fps = info.packet_fps
    if fps > limits.max_fps and info.video_frames > limits.max_fps:  # a few frames close together cost little
        raise EmotionError(f"The video in {name} has {fps:,.0f} frames per second; at most {limits.max_fps:g} are "
                           "accepted. Please convert it to a normal frame rate.", code="too_big_frame")
    info.decode_pixels = limits.frame_pixels_at(fps)


def check_length(duration_s: float | None, limit_s: float) -> None:
    if duration_s is not None and duration_s > limit_s:
        raise EmotionError(f"The clip lasts {'more than ' if duration_s > limit_s + 0.5 else ''}{limit_s:.0f} s "
                           f"(the limit is {limit_s:.0f} s). Please trim it.", code="too_long")


def _check_frame_size(info: MediaInfo, name: str, limits: Limits | None) -> None:
    w, h = info.width, info.height
    if w and h and min(w, h) < MIN_SIDE_PX:
        raise EmotionError(f"The video in {name} is only {w}×{h} pixels: too small to show a face.",
                           code="too_small")
    if limits is None or not (w and h):
        return
    if w * h > limits.max_frame_pixels:
        raise EmotionError(f"The video in {name} is {w}×{h} pixels; the largest accepted is about 4K "
                           f"({limits.max_frame_pixels / 1e6:.1f} million pixels). Please downscale it.",
                           code="too_big_frame")
    if info.fps and w * h * info.fps > limits.max_pixel_rate:
        raise EmotionError(f"The video in {name} is {w}×{h} at {info.fps:g} frames per second: more pixels per "
                           "second than accepted (4K at 60 fps). Please downscale it or lower the frame rate.",
                           code="too_big_frame")


def video_packet_scan(path: str, cap_s: float | None = None, name: str | None = None) -> tuple[float | None, int]:
    """How long the video stream really lasts and how many frames it has, from its packets (copied, not
    decoded: fast; one checksum line a packet on stdout, as ffmpeg counts no frames when copying). With `cap_s`,
    counting stops a second past it: a longer video then reads as cap + 1 s.
    """
    cap = ["-t", f"{cap_s + 1:.3f}"] if cap_s is not None else []
    run = run_ffmpeg([*ffmpeg_input(path, pictures=False), "-map", "0:V:0", *cap, "-c", "copy", "-f", "framecrc", "-"],
                     PROBE_TIMEOUT_S, f"Measuring {name or display_name(path)}")
    text = run.stderr.decode("utf-8", "replace")
    times = re.findall(r"time=(\d+):(\d+):(\d+(?:\.\d+)?)", text)
    count = sum(1 for line in run.stdout.splitlines() if line and not line.startswith(b"#"))
    if not times or count == 0:
        return None, count
    h, m, sec = times[-1]
    return int(h) * 3600 + int(m) * 60 + float(sec), count


@contextlib.contextmanager
def readable_copy(info: MediaInfo, limits: Limits | None = None) -> Iterator[MediaInfo]:
    """Yield `info`, remuxed first (ffmpeg -c copy, in a temporary folder) when its duration is unknown.

    Browser webcam recordings (webm) carry no duration in their header; a remux writes one. The copy
    stops a second past the length limit, and the temporary folder is always removed.
    """
    if info.header_duration_s is not None or not info.has_video:
        yield info
        return
    limit = limits.max_duration_s if limits else 3600.0
    tmp = tempfile.mkdtemp(prefix="emotion-remux-")
    try:
        out = str(Path(tmp) / "remuxed.mkv")
        run_ffmpeg(["-v", "error", "-y", *ffmpeg_input(info.path, pictures=False), "-t", f"{limit + 1:.3f}", "-map", "0:V:0?",
                    "-map", "0:a:0?", "-c", "copy", out], decode_budget_s(limit), f"Reading {display_name(info.path)}")
        if not Path(out).is_file() or Path(out).stat().st_size == 0:
            raise EmotionError(f"{display_name(info.path)} could not be read; it may be damaged.", code="corrupt")
        try:
            remuxed = probe(out, limits=limits, shown_as=info.path)  # said of the user's file, not our copy
        except EmotionError as exc:
            if exc.code in ("too_long", "too_big_frame", "too_small"):
                raise
            raise EmotionError(f"{display_name(info.path)} could not be read; it may be damaged.",
                               code="corrupt") from None
        if remuxed.duration_s is None:
            raise EmotionError(f"{display_name(info.path)} has no readable length; it may be damaged.",
                               code="corrupt")
        remuxed.rotation = remuxed.rotation or info.rotation
        yield remuxed
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_audio(path: str | Path, sample_rate: int = 16000, max_s: float | None = None,
               timeout_s: float | None = None) -> np.ndarray | None:
    """The first audio track as mono float32 at `sample_rate`, or None when the file has none.

    Decoded in chunks into a buffer no larger than `max_s` seconds: when the sound runs past it,
    decoding stops there and EmotionError(code="too_long") is raised, whatever the header said.
    The decoder is ended at `timeout_s` (default: `decode_budget_s` of the limit).
    """
    limit = 3600.0 if max_s is None else float(max_s)
    cap = int(limit * sample_rate) + 1  # one sample past the limit tells "longer than allowed"
    deadline = time.monotonic() + (decode_budget_s(limit) if timeout_s is None else timeout_s)
    cmd = ffmpeg_command(["-v", "error", *ffmpeg_input(path, pictures=False), "-map", "0:a:0?", "-vn", "-sn", "-dn",
                          "-t", f"{limit + 0.5:.3f}", "-ac", "1", "-ar", str(sample_rate), "-f", "f32le", "-"])
    buf = np.empty(min(cap, 30 * sample_rate), dtype=np.float32)
    got, rest = 0, b""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=ffmpeg_env())
    timer = threading.Timer(max(0.0, deadline - time.monotonic()), proc.kill)
    timer.start()
    try:
        while True:
            chunk = proc.stdout.read(1 << 16)
            if not chunk:
                break
            chunk, whole = rest + chunk, (len(rest) + len(chunk)) // 4 * 4  # a pipe may split a sample
            samples, rest = np.frombuffer(chunk[:whole], dtype=np.float32), chunk[whole:]
            if got + samples.size > cap:
                check_length(limit + 1, limit)
            if got + samples.size > buf.size:
                buf = np.resize(buf, min(cap, max(2 * buf.size, got + samples.size)))
            buf[got:got + samples.size] = samples
            got += samples.size
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        timer.cancel()
    if time.monotonic() >= deadline:
        raise EmotionError(f"Reading the sound of {display_name(path)} took too long; the file may be damaged.",
                           code="timeout")
    return buf[:got].copy() if got else None


def read_frames(path: str | Path, start_s: float, step_s: float, count: int, max_side: int,
                timeout_s: float | None = None, pattern: np.ndarray | None = None,
                max_pixels: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (i, rgb_frame) for the frames at times start_s + i * step_s, i < count, in order; with `pattern`
    (a bool mask of period len(pattern)) only those with pattern[i % len(pattern)], the others dropped inside
    ffmpeg before they are scaled or piped.

    An ffmpeg process decodes the video (upright: rotation metadata is applied), keeps only the
    frames on that time grid (the `fps` filter: the frame on screen at each grid time), shrinks them
    to at most `max_side` pixels and pipes them as YUV4MPEG; a thread reads ahead a few frames, so
    decoding goes on while the caller works. Grid times past the last decodable frame get nothing.
    No more than a few frames are ever held: memory stays flat however long the video. The process
    is always ended, also when the caller stops early, and at `timeout_s` (EmotionError "timeout";
    default: `decode_budget_s` of the time span read). Every decoded frame larger than `max_pixels`
    (default: the 4K limit; `MediaInfo.decode_pixels` for the file's real frame rate) is refused by the
    decoder, and that refusal becomes EmotionError "too_big_frame".
    """
    import cv2

    side = f"min({max_side},max(iw,ih))"  # never upscale; even sizes for 4:2:0
    wanted = np.arange(count) if pattern is None else np.flatnonzero(np.resize(np.asarray(pattern, bool), count))
    # Shifted so that grid time i lands on output slot i; round=up makes slot i the last frame at or before it.
    vf = (f"setpts=PTS-{float(start_s):.6f}/TB,fps=fps=1/{float(step_s):.9f}:start_time=0:round=up,"
          f"{_select(pattern)}scale=w='max(2,2*trunc({side}*iw/max(iw,ih)/2))':h='max(2,2*trunc({side}*ih/max(iw,ih)/2))':flags=area")
    passthrough = [] if pattern is None else ["-fps_mode", "passthrough"]  # else the muxer refills what select drops
    budget = decode_budget_s(start_s + step_s * count) if timeout_s is None else timeout_s
    deadline = time.monotonic() + budget
    threads = os.environ.get("EMOTION_DECODER_THREADS") or str(min(os.cpu_count() or 2, 8))
    cmd = ffmpeg_command(["-v", "error", "-threads", threads, *ffmpeg_input(path, max_pixels), "-map", "0:V:0",
                          "-an", "-sn", "-dn", "-vf", vf, *passthrough, "-frames:v", str(wanted.size),
                          "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", "-"])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0, env=ffmpeg_env())
    complaints = _ErrorWatch(proc.stderr)
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
        except (ValueError, KeyError, OSError):  # a malformed stream header: nothing more can be read
            return
        finally:
            frames.put(None)

    reader = threading.Thread(target=read_ahead, daemon=True)
    reader.start()
    try:
        for i in wanted:
            try:
                yuv = frames.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise EmotionError(f"Decoding the video in {display_name(path)} took too long (over {budget:.0f} s); "
                                   "the file may be damaged or built to be slow to decode.", code="timeout") from None
            complaints.raise_for(path)
            if yuv is None:
                if not started.is_set() and proc.wait() != 0:
                    complaints.join()
                    complaints.raise_for(path)
                    raise EmotionError(f"The video in {display_name(path)} could not be decoded; it may be damaged.",
                                       code="corrupt")
                return
            yield int(i), cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB_I420)
            if time.monotonic() > deadline:
                raise EmotionError(f"Analysing the video in {display_name(path)} took too long (over {budget:.0f} s).",
                                   code="timeout")
    finally:
        proc.kill()
        while reader.is_alive():  # unblock a reader waiting on a full queue
            with contextlib.suppress(queue.Empty):
                frames.get(timeout=0.05)
        proc.wait()
        proc.stdout.close()
        complaints.join()


class _ErrorWatch:
    """Reads an ffmpeg's stderr in a thread (so the pipe never fills) and notes what must stop the analysis:
    a frame over the pixel limit, or memory refused."""

    SIGNS = {"exceeds specified max pixel count": "too_big_frame", "Cannot allocate memory": "too_demanding"}

    def __init__(self, stream) -> None:
        self.code: str | None = None
        self.stream = stream
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            for line in iter(self.stream.readline, b""):
                for sign, code in self.SIGNS.items():
                    if self.code is None and sign.encode() in line:
                        self.code = code

    def join(self) -> None:
        self.thread.join(timeout=5)
        with contextlib.suppress(OSError):
            self.stream.close()

    def raise_for(self, path: str | Path) -> None:
        if self.code == "too_big_frame":
            raise EmotionError(f"The video in {display_name(path)} changes to frames larger than accepted for its "
                               "frame rate (about 4K at 60 frames per second); it may be crafted to overload the "
                               "server.", code="too_big_frame")
        if self.code == "too_demanding":
            raise _too_demanding(display_name(path))


def _select(pattern: np.ndarray | None) -> str:
    """The ffmpeg `select` filter (with its trailing comma) keeping output frame n where pattern[n % period]."""
    if pattern is None:
        return ""
    period, keep = len(pattern), np.flatnonzero(pattern)
    runs = np.split(keep, np.flatnonzero(np.diff(keep) > 1) + 1)  # consecutive positions as one between()
    terms = "+".join(f"between(mod(n,{period}),{r[0]},{r[-1]})" for r in runs)
    return f"select='{terms}',"


def _read_exactly(stream, size: int) -> bytes | None:
    chunks, got = [], 0
    while got < size:
        chunk = stream.read(size - got)
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)
