"""Face branch: MediaPipe blendshapes per frame, and the Keras model that reads a 50-frame sequence.

`video_blendshapes` and `photo_blendshapes` are the feature functions shared by training and inference; the
model is built and fitted in train/ (train/face_model.py), and only loaded and run here.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .appearance import AppearanceModel, face_crop
from .calibration import as_logits
from .config import PipelineConfig, feature_mirror
from .decoded import DecodedMedia
from .errors import EmotionError
from .media import read_frames

class FaceTracker:
    """A fresh MediaPipe Face Landmarker in VIDEO mode, for one clip (a context manager).

    Returns the blendshapes of the largest face in each frame and how many faces were seen.
    """

    def __init__(self, model_path: str | Path, cfg: PipelineConfig) -> None:
        from mediapipe.tasks.python.core import base_options
        from mediapipe.tasks.python.vision import face_landmarker
        from mediapipe.tasks.python.vision.core import vision_task_running_mode

        options = face_landmarker.FaceLandmarkerOptions(
            base_options=base_options.BaseOptions(model_asset_path=str(model_path)),
            running_mode=vision_task_running_mode.VisionTaskRunningMode.VIDEO,
            output_face_blendshapes=True, num_faces=cfg.max_faces,
            min_face_detection_confidence=cfg.face_confidence, min_face_presence_confidence=cfg.face_confidence,
            min_tracking_confidence=cfg.face_confidence)
        self._landmarker = face_landmarker.FaceLandmarker.create_from_options(options)
        self._cfg = cfg
        self._last_ms = -1

    def __enter__(self) -> "FaceTracker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._landmarker.close()

    def read(self, rgb: np.ndarray, time_s: float) -> tuple[np.ndarray | None, int, np.ndarray | None]:
        """(52 scores of the largest face or None, number of faces, its landmarks as normalised (x, y))."""
        import mediapipe as mp

        rgb = np.ascontiguousarray(rgb)
        ms = max(self._last_ms + 1, int(time_s * 1000))  # VIDEO mode needs strictly increasing times
        self._last_ms = ms
        result = self._landmarker.detect_for_video(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb), ms)
        faces = result.face_blendshapes or []
        if not faces:
            return None, 0, None
        points = [np.array([(p.x, p.y) for p in landmarks], dtype=np.float32) for landmarks in result.face_landmarks]
        areas = [np.ptp(xy[:, 0]) * np.ptp(xy[:, 1]) for xy in points]
        largest = int(np.argmax(areas))
        return np.array([c.score for c in faces[largest]], dtype=np.float32), len(faces), points[largest]



@dataclass
class FaceWindow:
    """The blendshape sequence of one window: frames × 52 (gaps filled), and what was seen."""

    start_s: float
    end_s: float
    sequence: np.ndarray  # (frames_per_window, 52) float32, gaps filled by interpolation
    detected: np.ndarray  # (frames_per_window,) bool: a face was found in that frame
    times_s: np.ndarray  # when each frame was meant to be
    max_faces: int = 0
    sampled: np.ndarray | None = None  # (frames_per_window,) bool: frames read; the others are interpolated

    @property
    def coverage(self) -> float:
        """Share of the frames read that showed a face."""
        read = self.detected if self.sampled is None else self.detected[self.sampled]
        return float(read.mean()) if read.size else 0.0


def fill_gaps(sequence: np.ndarray, detected: np.ndarray) -> np.ndarray:
    """Frames without a face get scores interpolated linearly from the nearest frames with one
    (held constant before the first and after the last). All-missing stays zero."""
    out = sequence.copy()
    idx = np.flatnonzero(detected)
    if idx.size == 0 or idx.size == detected.size:
        return out
    missing = np.flatnonzero(~detected)
    for j in range(out.shape[1]):
        out[missing, j] = np.interp(missing, idx, sequence[idx, j])
    return out


def window_frame_times(start_s: float, end_s: float, n: int) -> np.ndarray:
    """n frame times spread evenly over a window (centres of n equal slices)."""
    return start_s + (np.arange(n) + 0.5) * (end_s - start_s) / n


def fit_photo(bgr: np.ndarray, max_side: int) -> np.ndarray:
    """An OpenCV (BGR) image as the RGB frame the landmarker is fed: at most `max_side` pixels, like video frames."""
    import cv2

    h, w = bgr.shape[:2]
    scale = max_side / max(h, w)
    if scale < 1:
        bgr = cv2.resize(bgr, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


SMALL_PHOTO_PX = 96  # a still this small (FER2013's 48×48 faces) is enlarged before the landmarker ...
ENLARGED_PX, ENLARGED_BORDER = 192, 0.25  # ... to 192 px with a quarter of that in replicated border on each side:
# the detector finds 84% of FER2013's faces as they are, 87% so (python bench/fer2013_faces.py)


def enlarge_small(bgr: np.ndarray, side: int = ENLARGED_PX, border: float = ENLARGED_BORDER) -> np.ndarray:
    """A still smaller than SMALL_PHOTO_PX, upscaled (cubic) to `side` px and framed with `border` × side of room
    around the face on each side, which the landmarker's detector wants; any other image as it is."""
    import cv2

    if max(bgr.shape[:2]) >= SMALL_PHOTO_PX:
        return bgr
    big = cv2.resize(bgr, (side, side), interpolation=cv2.INTER_CUBIC)
    pad = int(border * side)
    return cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE)


def _grid_runs(windows: Sequence[tuple[float, float]]) -> list[list[int]]:
    """Group windows that continue one another with the same length: their frame times form one even grid."""
    runs: list[list[int]] = []
    for i, (a, b) in enumerate(windows):
        if runs:
            pa, pb = windows[runs[-1][-1]]
            if abs(a - pb) < 1e-6 and abs((b - a) - (pb - pa)) < 1e-6:
                runs[-1].append(i)
                continue
        runs.append([i])
    return runs


READ_FRAMES = 5  # the "change" read averages this many frames at each end: one frame is one blink or one jitter


def fast_pattern(n: int, stride: int) -> np.ndarray:
    """Which of a window's n frames the fast reading of long videos reads: 1 in `stride`, and all of the first and
    last READ_FRAMES, which the face model's change read averages (its answer must not rest on interpolated ends)."""
    j = np.arange(n)
    return (j % stride == 0) | (j < READ_FRAMES) | (j >= n - READ_FRAMES)


def frame_features(tracker: FaceTracker, appearance: AppearanceModel | None, rgb: np.ndarray, time_s: float,
                   cfg: PipelineConfig, timings: dict[str, float] | None = None) -> tuple[np.ndarray | None, int]:
    """One frame's face reading: the largest face's 52 blendshapes (and, with `appearance`, the expression CNN on
    its crop), and how many faces were seen. None when no face was found, or (with appearance) when the face is
    too small or at the border: such a frame is filled in like a missing one. Uploads and live streams both
    read frames through here; `timings` gets the appearance step's seconds."""
    import cv2

    shapes, faces, landmarks = tracker.read(rgb, time_s)
    if shapes is None or appearance is None:
        return shapes, faces
    t = time.perf_counter()
    crop = face_crop(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), landmarks, cfg.appearance_min_side_px)
    look = None if crop is None else appearance.probabilities([crop])[0]
    if timings is not None:
        timings["appearance"] = timings.get("appearance", 0.0) + time.perf_counter() - t
    return (None, faces) if look is None else (np.concatenate([shapes, look]).astype(np.float32), faces)


def video_blendshapes(source: "str | Path | DecodedMedia", windows: Sequence[tuple[float, float]], cfg: PipelineConfig,
                      model_path: str | Path, fast: bool = False, appearance_path: str | Path | None = None,
                      timings: dict[str, float] | None = None,
                      on_frames: Callable[[float], None] | None = None,
                      max_pixels: int | None = None) -> list[FaceWindow]:
    """Face sequences for each window of a video (a file, or frames in memory), from sequential passes over its
    frames: per frame the
    blendshapes and, with `appearance_path` (the expression CNN), the appearance of the face crop.

    Each window gets `frames_per_window` evenly spaced frame times. `fast` (for long videos, where the
    landmarker is most of the cost) sends only the frames of `fast_pattern` to it (1 in
    `cfg.long_video_face_stride`, and every one at the window's ends), interpolating the others; every
    frame is still decoded (skipping unreferenced B-frames shifted the window's end frames and moved the
    face answer by up to 0.13). One landmarker follows the face through each run of back-to-back windows.
    A frame counts as showing a face when the landmarker found one and (with appearance) its crop was usable.
    `timings` gets the appearance step's seconds; `on_frames(fraction)` is told every 10 frames how much of the
    reading is done (the longest stage). `max_pixels`: the largest frame the decoder may make (read_frames).
    """
    n = cfg.frames_per_window
    pattern = fast_pattern(n, cfg.long_video_face_stride) if fast else None
    n_shapes = len(cfg.blendshape_names)
    use_appearance = bool(cfg.appearance_model) and appearance_path is not None
    width = n_shapes + (len(cfg.appearance_names) if use_appearance else 0)
    times = np.concatenate([window_frame_times(a, b, n) for a, b in windows]) if windows else np.zeros(0)
    scores = np.zeros((times.size, width), dtype=np.float32)
    detected = np.zeros(times.size, dtype=bool)
    sampled = np.zeros(times.size, dtype=bool)
    faces_seen = np.zeros(times.size, dtype=np.int32)
    appearance = AppearanceModel(appearance_path) if use_appearance else None
    runs = list(_grid_runs(windows))
    to_read = (n if pattern is None else int(pattern.sum())) * len(windows) or 1
    read = 0

    for run in runs:
        first = run[0] * n
        count = len(run) * n
        step = (windows[run[0]][1] - windows[run[0]][0]) / n
        if isinstance(source, DecodedMedia):
            frames = source.grid_frames(times[first], step, count, cfg.face_max_side_px, pattern=pattern)
        else:
            frames = read_frames(source, times[first], step, count, cfg.face_max_side_px, pattern=pattern,
                                 max_pixels=max_pixels)
        with FaceTracker(model_path, cfg) as tracker, contextlib.closing(frames):  # ffmpeg ends even on errors
            for j, rgb in frames:
                i = first + j
                features, faces_seen[i] = frame_features(tracker, appearance, rgb, times[i], cfg, timings)
                sampled[i] = True
                read += 1
                if on_frames is not None and read % 10 == 0:
                    on_frames(read / to_read)
                if features is not None:
                    scores[i], detected[i] = features, True

    out = []
    for w, (a, b) in enumerate(windows):
        sl = slice(w * n, (w + 1) * n)
        out.append(FaceWindow(a, b, fill_gaps(scores[sl], detected[sl]), detected[sl].copy(), times[sl],
                              int(faces_seen[sl].max(initial=0)), sampled[sl].copy()))
    return out


def photo_blendshapes(bgr: np.ndarray, cfg: PipelineConfig, model_path: str | Path, repeats: int = 4,
                      appearance_path: str | Path | None = None, enlarge: bool = True) -> np.ndarray | None:
    """A still photo's frame features (blendshapes, then appearance with `appearance_path`), read the way
    clips are read.

    The photo is fed as `repeats` identical frames to a fresh VIDEO-mode landmarker and the tracked
    frames (all but the first) are averaged: VIDEO mode reads brows lower than IMAGE mode once it
    tracks, so this keeps photo features in line with clip features. A tiny still is enlarged first
    (enlarge_small) unless `enlarge` is False (bench/fer2013_faces.py's "as is").
    """
    import cv2

    found, landmarks = [], None
    rgb = fit_photo(enlarge_small(bgr) if enlarge else bgr, cfg.face_max_side_px)
    with FaceTracker(model_path, cfg) as tracker:
        for k in range(repeats):
            shapes, _, points = tracker.read(rgb, k / 25)
            if shapes is not None and k > 0:
                found.append(shapes)
                landmarks = points
    if not found:
        return None
    shapes = np.mean(found, axis=0).astype(np.float32)
    if not (cfg.appearance_model and appearance_path is not None):
        return shapes
    crop = face_crop(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), landmarks, cfg.appearance_min_side_px)
    if crop is None:
        return None
    return np.concatenate([shapes, AppearanceModel(appearance_path).probabilities([crop])[0]])


def model_input(sequences: np.ndarray, cfg: PipelineConfig) -> np.ndarray:
    """What the LSTM is fed (in training and inference alike): the sequences with ignored blendshapes zeroed,
    and the appearance as log-probabilities when the config says so."""
    x = np.array(sequences, dtype=np.float32, copy=True)
    ignored = [cfg.blendshape_names.index(n) for n in cfg.face_ignored]
    x[..., ignored] = 0.0
    if cfg.appearance_names and cfg.appearance_as == "logprob":
        n = len(cfg.blendshape_names)
        x[..., n:] = np.log(np.clip(x[..., n:], 1e-4, 1.0)) / 4.0  # about [-2.3, 0]: the scale of the rest
    return x


class FaceModel:
    """The Keras LSTM, made indifferent to mirroring by averaging each sequence with its mirror image."""

    def __init__(self, model, cfg: PipelineConfig) -> None:
        import tensorflow as tf

        self.model = model
        self.cfg = cfg
        self.mirror = feature_mirror(len(cfg.face_feature_names))
        # One graph for every batch size, traced once (at warm-up): tracing the 15-model ensemble takes ~2 s,
        # and Keras' own predict function traced again for each new batch size.
        spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32)
        self._predict = tf.function(lambda x: model(x, training=False), input_signature=[spec])

    def probabilities(self, sequences: np.ndarray, chunk: int = 32) -> np.ndarray:
        """(batch, 6) probabilities for (batch, frames, 52) sequences, `chunk` sequences at a time."""
        if len(sequences) > chunk:
            return np.concatenate([self.probabilities(sequences[s:s + chunk], chunk)
                                   for s in range(0, len(sequences), chunk)])
        x = model_input(sequences, self.cfg)
        both = np.concatenate([x, x[:, :, self.mirror]], axis=0)
        p = self._predict(both).numpy()
        return (p[: len(x)] + p[len(x):]) / 2

    def logits(self, sequences: np.ndarray) -> np.ndarray:
        """Log-probabilities (the LSTM ends in a softmax), for temperature scaling."""
        return as_logits(self.probabilities(sequences))

    def save(self, path: str) -> None:
        self.model.save(path)

    @classmethod
    def load(cls, path: str, cfg: PipelineConfig) -> "FaceModel":
        import keras

        model = keras.saving.load_model(path, compile=False, safe_mode=True)
        if model.output_shape[-1] != len(cfg.emotions):
            raise EmotionError(f"The weights file {Path(path).name} does not fit the {len(cfg.emotions)} emotions "
                               f"listed in config.json (`emotions`): it answers {model.output_shape[-1]}.",
                               code="bad_weights")
        return cls(model, cfg)


class FaceBranch:
    """The face as a branch (emotion.branches): frames per window → MediaPipe blendshapes (+ the expression CNN's
    appearance) → the LSTM. It needs the Face Landmarker file; without it the branch says why and reads nothing."""

    role = "face"
    weights_file = "face_lstm.keras"

    def __init__(self, model: FaceModel, landmarker: Path | None, problem: str | None = None,
                 appearance_path: Path | None = None) -> None:
        self.model = model
        self.landmarker = landmarker  # MediaPipe's face_landmarker.task (None when it could not be found)
        self.problem = problem
        self.appearance_path = appearance_path  # the expression CNN (cfg.appearance_model), next to the weights

    def read(self, media, windows: list[tuple[float, float]], cfg: PipelineConfig):
        from .branches import BranchInput

        n = len(windows)
        if not (media.has_video and windows):
            return BranchInput.empty(n)
        if self.landmarker is None:
            return BranchInput.empty(n, [f"Face analysis is off: {self.problem} Result from the voice only."])
        media.progress(0.15, "Following the face: 0%")
        faces = video_blendshapes(media.frames, windows, cfg, self.landmarker, fast=media.duration_s > cfg.long_video_s,
                                  appearance_path=self.appearance_path, timings=media.timings,
                                  max_pixels=media.max_pixels,
                                  on_frames=lambda f: media.progress(0.15 + 0.7 * f, f"Following the face: {f:.0%}"))
        notes = ["Several faces are visible — the largest one was followed."] if max(f.max_faces for f in faces) > 1 \
            else []
        usable = [i for i, f in enumerate(faces) if f.coverage >= cfg.min_face_coverage]
        if not usable:
            coverage = float(np.mean([f.coverage for f in faces]))
            notes.append("No face found — the result comes from the voice only." if coverage == 0 else
                         f"A face was visible in only {coverage:.0%} of the frames — too little to judge; the result "
                         "comes from the voice only.")
        return BranchInput(faces, usable, [f.coverage for f in faces], notes)

    def logits(self, inputs: list[FaceWindow]) -> np.ndarray:
        return self.model.logits(np.stack([w.sequence for w in inputs]))

    def warmup(self, cfg: PipelineConfig) -> np.ndarray:
        if not self.problem:
            # MediaPipe imported here, once: two of a server's threads importing it for their first clips at the
            # same moment got a half-imported module (NameError: name 'core' is not defined)
            import mediapipe  # noqa: F401
            from mediapipe.tasks.python.vision import face_landmarker  # noqa: F401
        # traces the one graph for every batch size
        return self.model.probabilities(np.zeros((1, cfg.frames_per_window, len(cfg.face_feature_names)), np.float32))

    def save(self, folder) -> None:
        import shutil

        folder = Path(folder)
        self.model.save(str(folder / self.weights_file))
        if self.appearance_path is not None:  # the expression CNN and its licence travel with the weights
            stem = Path(self.model.cfg.appearance_model).stem
            for src in (self.appearance_path, *self.appearance_path.parent.glob(f"{stem}*LICENSE*")):
                if Path(src).resolve() != (folder / Path(src).name).resolve():
                    shutil.copyfile(src, folder / Path(src).name)

    @classmethod
    def load(cls, folder, cfg: PipelineConfig, face_model: str | Path | None = None, **options) -> "FaceBranch":
        """`face_model`: MediaPipe's Face Landmarker file (default: found or downloaded by emotion.hub)."""
        from .branches import load_checked
        from .hub import resolve_face_model

        folder = Path(folder)
        appearance = folder / cfg.appearance_model if cfg.appearance_model else None
        if appearance is not None:
            load_checked(appearance, AppearanceModel)  # present and readable
        model = load_checked(folder / cls.weights_file, lambda p: FaceModel.load(p, cfg), len(cfg.emotions))
        try:
            landmarker, problem = resolve_face_model(face_model), None
        except EmotionError as exc:
            landmarker, problem = None, str(exc)
        return cls(model, landmarker, problem, appearance)
