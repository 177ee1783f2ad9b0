"""Media already in memory: a sound wave and/or RGB frames with their times, as a notebook, a live webcam
stream or a batch engine holds them. The pipeline reads it as it reads a file, with the same models and rules.

    pipe.predict(DecodedMedia(wave=w, sample_rate=16000))                      # sound alone
    pipe.predict(DecodedMedia(frames=rgb_list, times_s=[0.0, 0.04, ...]))      # frames alone
    pipe.predict(DecodedMedia(w, 16000, rgb_list, times_s, name="webcam"))     # both
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from .errors import EmotionError
from .media import Limits, check_length
from .names import printable


@dataclass
class DecodedMedia:
    """A wave (mono or (samples, channels), any rate ≥ 2 kHz, float or int) and/or frames (H×W×3 uint8 RGB, in
    order) with each frame's time in seconds from the start. Checked against the same limits as files."""

    wave: np.ndarray | None = None
    sample_rate: int = 16000
    frames: Sequence[np.ndarray] | None = None
    times_s: Sequence[float] | None = None
    name: str = "in-memory media"
    length_s: float | None = None  # the clip's length when known (a file's); default: the last frame + one step

    @property
    def has_video(self) -> bool:
        return bool(self.frames is not None and len(self.frames))

    @property
    def has_audio(self) -> bool:
        return self.wave is not None and np.asarray(self.wave).size > 0

    @property
    def display_name(self) -> str:
        return printable(self.name)[:120]

    def duration_s(self) -> float:
        """The length given, else the video's (the last frame's time plus one frame), else the sound's."""
        if self.length_s is not None:
            return float(self.length_s)
        if self.has_video:
            times = np.asarray(self.times_s, dtype=np.float64)
            step = float(np.median(np.diff(times))) if times.size > 1 else 0.04
            return float(times[-1] + step)
        return np.asarray(self.wave).shape[0] / self.sample_rate if self.has_audio else 0.0

    def check(self, limits: Limits) -> None:
        """Refuse in words what a file would be refused for (EmotionError with the same codes)."""
        name = self.display_name
        if not self.has_video and not self.has_audio:
            raise EmotionError(f"{name} holds neither sound nor frames.", code="no_streams")
        if self.has_audio:
            wave = np.asarray(self.wave)
            if wave.ndim not in (1, 2) or not np.issubdtype(wave.dtype, np.number):
                raise EmotionError(f"The sound of {name} must be numbers, (samples,) or (samples, channels).",
                                   code="bad_input")
            if not 2_000 <= int(self.sample_rate) <= 384_000:
                raise EmotionError(f"The sound of {name} has {self.sample_rate} samples per second; 2,000 to "
                                   "384,000 are accepted.", code="bad_audio")
            check_length(wave.shape[0] / self.sample_rate, limits.max_duration_s)
        if self.has_video:
            if self.times_s is None or len(self.times_s) != len(self.frames):
                raise EmotionError(f"{name}: every frame needs its time (times_s, one per frame).", code="bad_input")
            times = np.asarray(self.times_s, dtype=np.float64)
            if not np.all(np.isfinite(times)) or times[0] < 0 or np.any(np.diff(times) <= 0):
                raise EmotionError(f"{name}: frame times must be finite, from 0 up, each after the one before.",
                                   code="bad_input")
            check_length(self.duration_s(), limits.max_duration_s)
            if len(self.frames) > limits.max_fps * max(self.duration_s(), 1.0):
                raise EmotionError(f"{name} has more than {limits.max_fps:g} frames per second.", code="too_big_frame")
            for frame in (self.frames[0], self.frames[-1]):
                if not (isinstance(frame, np.ndarray) and frame.ndim == 3 and frame.shape[2] == 3
                        and frame.dtype == np.uint8):
                    raise EmotionError(f"{name}: frames must be H×W×3 uint8 RGB images.", code="bad_input")

    def wave_at(self, sample_rate: int) -> np.ndarray | None:
        """The sound as mono float32 at `sample_rate` (averaged over channels, integers scaled to ±1)."""
        if not self.has_audio:
            return None
        wave = np.asarray(self.wave)
        if np.issubdtype(wave.dtype, np.integer):
            wave = wave / float(np.iinfo(wave.dtype).max)
        wave = wave.astype(np.float32)
        if wave.ndim == 2:
            wave = wave.mean(axis=1)
        if int(self.sample_rate) != sample_rate:
            import librosa

            wave = librosa.resample(wave, orig_sr=int(self.sample_rate), target_sr=sample_rate).astype(np.float32)
        return np.nan_to_num(wave, nan=0.0, posinf=0.0, neginf=0.0)

    def grid_frames(self, start_s: float, step_s: float, count: int, max_side: int,
                    pattern: np.ndarray | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """(i, rgb) for the frame on screen at each time start_s + i * step_s (the last one at or before it),
        shrunk to at most `max_side` pixels as `media.read_frames` shrinks decoded frames; with `pattern`, only
        the slots it keeps. Grid times before the first frame or past the last get nothing, as with a file."""
        import cv2

        times = np.asarray(self.times_s, dtype=np.float64)
        end = self.duration_s()
        keep = np.ones(count, bool) if pattern is None else np.resize(np.asarray(pattern, bool), count)
        for i in np.flatnonzero(keep):
            t = start_s + i * step_s
            k = int(np.searchsorted(times, t + 1e-9, side="right")) - 1
            if k < 0 or t >= end:
                continue
            frame = self.frames[k]
            h, w = frame.shape[:2]
            side = min(max_side, max(h, w))
            size = (max(2, 2 * int(side * w / max(h, w) / 2)), max(2, 2 * int(side * h / max(h, w) / 2)))
            if size != (w, h):
                frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
            yield int(i), frame
