"""Every preprocessing constant and threshold, in one dataclass saved as weights/config.json.

The config travels with the weights, so a model is always fed features made exactly as in training.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from .branches import DEFAULT_BRANCHES, ROLES
from .errors import EmotionError
from .labels import EMOTIONS
from .media import Limits

FORMAT_VERSION = 1
# What a config must state itself (the rest has safe defaults): how the models were fed and calibrated.
REQUIRED_FIELDS = {"format_version", "emotions", "sample_rate", "n_mfcc", "n_mels", "n_fft", "hop_length",
                   "audio_window_s", "mfcc_mean", "mfcc_std", "frames_per_window", "blendshape_names",
                   "temperature_audio", "temperature_face", "temperature_fused", "not_sure_top_p"}

# MediaPipe Face Landmarker blendshape names, in the model's output order (`_neutral` first).
# Kept in step with mediapipe's `Blendshapes` enum (a test checks it).
BLENDSHAPE_NAMES: tuple[str, ...] = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight",
    "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft",
    "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel",
    "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight",
    "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
    "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
)


CNN_VOICE_FIELDS = {"mfcc_mean", "mfcc_std"}  # the log-mel CNN's normalisation: required only when it is the voice

# Upper bounds for every size, rate and length in a config: values that pass a type check can still make the
# app allocate gigabytes (frames_per_window 1e9) or divide by almost nothing (a temperature of 1e-320).
# A config may tighten the input limits, never loosen them past what the app's 2 GB budget was measured on.
BOUNDS: dict[str, tuple[float, float]] = {
    "sample_rate": (8000, 48000), "n_mfcc": (1, 128), "n_mels": (1, 256), "n_fft": (64, 8192),
    "hop_length": (16, 4096), "frames_per_window": (2, 500), "max_faces": (1, 10), "face_max_side_px": (64, 2048),
    "long_video_face_stride": (1, 10), "max_frame_pixels": (256, Limits.max_frame_pixels),
    "appearance_min_side_px": (8, 512), "audio_window_s": (0.5, 30.0), "window_s": (1.0, 60.0),
    "single_window_max_s": (1.0, 60.0), "max_duration_s": (1.0, 3600.0), "max_file_mb": (0.1, 2000.0),
    "max_pixel_rate": (1e4, Limits.max_pixel_rate), "long_video_s": (1.0, 3600.0),
    "temperature_audio": (0.05, 100.0), "temperature_face": (0.05, 100.0), "temperature_fused": (0.05, 100.0),
    "split_pool_weight": (0.0, 20.0), "answer_temperature": (0.05, 100.0), "answer_floor": (0.0, 0.9),
    "trim_top_db": (0.0, 120.0), "min_speech_rms": (0.0, 1.0), "encoder_max_s": (1.0, 30.0),
}
MAX_EMOTIONS = 16
BRANCH_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
EMOTION_NAME = re.compile(r"[a-z][a-z_-]{0,31}")
MAX_CONFIG_BYTES = 1_000_000  # the shipped one is ~10 KB
MAX_CONFIG_DEPTH = 4  # the deepest field is a list of numbers inside the top object


def _depth(value: object) -> int:
    """How deeply lists and objects nest in `value` (a number or string: 0). Iterative: a config nested
    100,000 deep must give a message, not a RecursionError."""
    deepest, todo = 0, [(value, 0)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, (list, dict)):
            deepest = max(deepest, level + 1)
            if deepest > MAX_CONFIG_DEPTH:
                return deepest
            todo.extend((v, level + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def mirror_permutation(names: tuple[str, ...] = BLENDSHAPE_NAMES) -> list[int]:
    """Index map that swaps every *Left/*Right pair: what a mirrored image does to the scores."""
    position = {n: i for i, n in enumerate(names)}
    perm = []
    for n in names:
        if n.endswith("Left"):
            perm.append(position[n[:-4] + "Right"])
        elif n.endswith("Right"):
            perm.append(position[n[:-5] + "Left"])
        else:
            perm.append(position[n])
    return perm


def _is_number(value: object) -> bool:
    try:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def feature_mirror(n_features: int) -> list[int]:
    """Index map of a mirrored face frame of `n_features` scores: the Left/Right blendshapes swap; what follows
    the 52 blendshapes (the appearance, already averaged over the crop and its mirror) stays."""
    n = len(BLENDSHAPE_NAMES)
    return mirror_permutation() + list(range(n, n_features))


@dataclass
class PipelineConfig:
    """Preprocessing parameters, thresholds and calibration, as saved next to the weights."""

    format_version: int = FORMAT_VERSION
    # The classes of every head, in order: the one emotion list (exports, plots, the card and training follow it).
    emotions: list[str] = field(default_factory=lambda: list(EMOTIONS))
    # role ("audio", "face") → the registered branch that plays it (emotion.branches); one role alone is allowed
    branches: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_BRANCHES))
    # audio
    sample_rate: int = 16000
    n_mfcc: int = 40
    n_mels: int = 64
    n_fft: int = 512
    hop_length: int = 160
    audio_window_s: float = 3.0  # the CNN sees this much speech, centred after trimming silence
    trim_top_db: float = 30.0
    min_speech_rms: float = 0.003  # below this the voice branch is treated as absent (silence)
    # What the voice CNN reads (emotion.audio.voice_features); the defaults are the first recipe, which old
    # weights were trained with: MFCCs, one normalisation for everybody, silence trimmed by loudness.
    voice_features: str = "mfcc"  # "mfcc", or "logmel": log-mel energies with deltas and delta-deltas
    voice_norm: str = "global"  # "global" (training set's statistics) or "utterance" (each clip its own)
    voice_vad: bool = False  # the CNN reads only what the voice-activity detector calls speech (not kept: it did worse)
    vad_gate: bool = True  # sound in which the voice-activity detector finds no speech gives no voice answer
    vad_threshold: float = 0.15  # Silero's speech probability; its default 0.5 missed 15 of 952 RAVDESS clips (shouting)
    min_speech_s: float = 0.5  # less speech than this counts as none (shorter bits, like a beep, are not speech)
    # the voice_encoder branch (emotion.speech_encoder): which Whisper-base layers, how they are pooled, longest piece heard
    encoder_layers: list[int] = field(default_factory=lambda: [3, 4])
    encoder_pooling: str = "frames"  # "frames": the layers averaged, frame by frame (a conv head); "stats": each
    # layer's mean and standard deviation over time (a linear head: it carried best to corpora it never heard)
    encoder_max_s: float = 6.0
    mfcc_mean: list[float] = field(default_factory=list)  # per coefficient, from the training set
    mfcc_std: list[float] = field(default_factory=list)
    # face
    frames_per_window: int = 50
    blendshape_names: list[str] = field(default_factory=lambda: list(BLENDSHAPE_NAMES))
    # Gaze is not an emotion cue, and MediaPipe reads it asymmetrically (a mirrored face does not give
    # mirrored gaze scores): the face model sees these as zeros.
    face_ignored: list[str] = field(default_factory=lambda: [n for n in BLENDSHAPE_NAMES if n.startswith("eyeLook")])
    # Appearance per frame (emotion.appearance): the expression CNN's 7 probabilities beside the blendshapes.
    # "" = blendshapes only (weights made before it). The file lives next to the weights.
    appearance_model: str = ""
    appearance_origin: str = ""  # where the expression CNN comes from, and its licence
    appearance_min_side_px: int = 40  # a smaller face gives no appearance for that frame
    appearance_as: str = "prob"  # what the LSTM is fed: "prob" or "logprob"
    face_confidence: float = 0.3
    max_faces: int = 3
    face_max_side_px: int = 640  # frames are downscaled to this before the landmarker
    # Beyond this length only every `long_video_face_stride`-th frame goes through the landmarker (and every
    # frame at each window's ends; the rest interpolated): the landmarker is most of the cost of a long video.
    long_video_s: float = 60.0
    long_video_face_stride: int = 2
    min_face_coverage: float = 0.3  # below this share of frames with a face, the face branch is absent
    # windows for long clips
    window_s: float = 4.0
    single_window_max_s: float = 6.0  # a clip up to this long is analysed as one window
    # input limits (the app and CLI refuse beyond them)
    max_duration_s: float = Limits.max_duration_s  # the longest stream, video or sound, as really decoded
    max_file_mb: float = Limits.max_file_mb
    max_frame_pixels: int = Limits.max_frame_pixels  # about 4K; larger frames (decompression bombs) are refused
    max_pixel_rate: float = Limits.max_pixel_rate  # pixels per second: 4K at 60 fps
    # trust
    temperature_audio: float = 1.0
    temperature_face: float = 1.0
    temperature_fused: float = 1.0
    not_sure_top_p: float = 0.0  # a fused top probability below this reads "not sure"
    # Where voice and face rank different emotions first: 0, the mean of the two readings (weights before
    # 2026-12-04); above 0, their log-linear pool with this weight (emotion.fusion.evidence_bound)
    split_pool_weight: float = 0.0
    # A pair's held answer as shown (emotion.fusion.answer_calibrated): 1 and 0 change nothing (weights before
    # the evening of 2026-12-04)
    answer_temperature: float = 1.0
    answer_floor: float = 0.0
    # Voice and face disagree when both top probabilities reach this and name different emotions: the answer
    # says so, is marked not sure, and its probabilities are bounded by the evidence (emotion.fusion).
    disagreement_min_p: float = 0.5
    metrics_file: str = "metrics.json"

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")

    @classmethod
    def from_json(cls, path: str | Path) -> "PipelineConfig":
        name = Path(path).name
        try:
            size = Path(path).stat().st_size
            if size > MAX_CONFIG_BYTES:
                raise EmotionError(f"The weights' {name} is {size:,} bytes; a config is at most "
                                   f"{MAX_CONFIG_BYTES:,}.", code="bad_weights")
            data = json.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: JSON errors, 5,000-digit numbers
            raise EmotionError(f"The weights' {name} cannot be read: {exc}", code="bad_weights") from None
        except RecursionError:
            data = None  # nested deeper than the parser goes: refused just below
        if data is None or _depth(data) > MAX_CONFIG_DEPTH:
            raise EmotionError(f"The weights' {name} nests lists or objects more than {MAX_CONFIG_DEPTH} deep; "
                               "it is not a config this package wrote.", code="bad_weights")
        if not isinstance(data, dict):
            raise EmotionError(f"The weights' {Path(path).name} is not a JSON object.", code="bad_weights")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise EmotionError(
                f"These weights use config format version {version!r}, but this version of the "
                f"package reads version {FORMAT_VERSION}. Update the package or use matching weights.",
                code="config_version",
            )
        known = {f.name for f in dataclasses.fields(cls)}
        cfg = cls(**{k: v for k, v in data.items() if k in known})
        cfg.validate(path, present=set(data))
        return cfg

    def validate(self, path: str | Path = "config.json", present: set[str] | None = None) -> None:
        """Refuse a config that would make the models misread or answer nonsense (NaN, zero temperature,
        wrong emotion list, missing normalisation), naming the file and the field."""
        where = Path(path).name

        def bad(field_name: str, why: str) -> EmotionError:
            return EmotionError(f"The weights' {where} is invalid: `{field_name}` {why}.", code="bad_weights")

        cnn_voice = isinstance(self.branches, dict) and self.branches.get("audio") == "voice_cnn"
        required = REQUIRED_FIELDS if cnn_voice else REQUIRED_FIELDS - CNN_VOICE_FIELDS
        missing = sorted(required - present) if present is not None else []
        if missing:
            raise bad(missing[0], "is missing")
        if not (isinstance(self.emotions, list) and 2 <= len(self.emotions) <= MAX_EMOTIONS
                and all(isinstance(e, str) and EMOTION_NAME.fullmatch(e) for e in self.emotions)
                and len(set(self.emotions)) == len(self.emotions)):
            raise bad("emotions", f"must be 2 to {MAX_EMOTIONS} different lower-case names (every head's classes, "
                                  "in their order)")
        if not (isinstance(self.branches, dict) and self.branches and set(self.branches) <= set(ROLES)
                and all(isinstance(v, str) and BRANCH_NAME.fullmatch(v) for v in self.branches.values())):
            raise bad("branches", f"must map one or both of {', '.join(ROLES)} to a branch's name")
        if list(self.blendshape_names) != list(BLENDSHAPE_NAMES):
            raise bad("blendshape_names", "must be MediaPipe's 52 blendshape names in order")
        if not set(self.face_ignored) <= set(BLENDSHAPE_NAMES):
            raise bad("face_ignored", "names unknown blendshapes")
        for name in ("sample_rate", "n_mfcc", "n_mels", "n_fft", "hop_length", "frames_per_window", "max_faces",
                     "face_max_side_px", "long_video_face_stride", "max_frame_pixels", "appearance_min_side_px"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise bad(name, "must be a positive whole number")
        for name in ("audio_window_s", "window_s", "single_window_max_s", "max_duration_s", "max_file_mb",
                     "max_pixel_rate", "long_video_s", "temperature_audio", "temperature_face", "temperature_fused",
                     "answer_temperature"):
            value = getattr(self, name)
            if not _is_number(value) or not value > 0:
                raise bad(name, "must be a positive finite number")
        for name in ("trim_top_db", "min_speech_rms", "face_confidence", "min_face_coverage", "not_sure_top_p",
                     "split_pool_weight", "answer_floor"):
            value = getattr(self, name)
            if not _is_number(value) or value < 0:
                raise bad(name, "must be a finite number ≥ 0")
        for name, (low, high) in BOUNDS.items():
            if not low <= getattr(self, name) <= high:
                raise bad(name, f"must be between {low:g} and {high:g} (it is {str(getattr(self, name))[:20]})")
        if self.hop_length > self.n_fft:
            raise bad("hop_length", f"must not exceed n_fft ({self.n_fft})")
        if not _is_number(self.disagreement_min_p) or not 0 < self.disagreement_min_p <= 1:
            raise bad("disagreement_min_p", "must be between 0 and 1")
        for name in ("face_confidence", "min_face_coverage", "not_sure_top_p"):
            if getattr(self, name) > 1:
                raise bad(name, "must be between 0 and 1")
        if not isinstance(self.appearance_model, str) or "/" in self.appearance_model or "\\" in self.appearance_model \
                or self.appearance_model.startswith("."):
            raise bad("appearance_model", "must be a file name next to the weights")
        if self.appearance_as not in ("prob", "logprob"):
            raise bad("appearance_as", "must be 'prob' or 'logprob'")
        if self.voice_features not in ("mfcc", "logmel"):
            raise bad("voice_features", "must be 'mfcc' or 'logmel'")
        if self.voice_norm not in ("global", "utterance"):
            raise bad("voice_norm", "must be 'global' or 'utterance'")
        if not (isinstance(self.encoder_layers, list) and self.encoder_layers and all(
                isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 6 for v in self.encoder_layers)):
            raise bad("encoder_layers", "must list Whisper-base layers, 1 to 6")
        if self.encoder_pooling not in ("frames", "stats"):
            raise bad("encoder_pooling", "must be 'frames' or 'stats'")
        for name in ("voice_vad", "vad_gate"):
            if not isinstance(getattr(self, name), bool):
                raise bad(name, "must be true or false")
        for name in ("vad_threshold", "min_speech_s"):
            if not _is_number(getattr(self, name)) or not 0 < getattr(self, name) < 1:
                raise bad(name, "must be between 0 and 1")
        for name in ("mfcc_mean", "mfcc_std") if cnn_voice else ():
            values = getattr(self, name)
            if not isinstance(values, list) or len(values) != self.voice_rows or not all(_is_number(v) for v in values):
                raise bad(name, f"must be {self.voice_rows} finite numbers (one per row of the voice features)")
        if cnn_voice and not all(v > 0 for v in self.mfcc_std):
            raise bad("mfcc_std", "must be positive")

    def limits(self, max_duration_s: float | None = None) -> Limits:
        """The input limits, with the length limit tightened to `max_duration_s` if given."""
        duration = self.max_duration_s if max_duration_s is None else min(max_duration_s, self.max_duration_s)
        return Limits(duration, self.max_file_mb, self.max_frame_pixels, self.max_pixel_rate)

    @property
    def appearance_names(self) -> tuple[str, ...]:
        from .appearance import APPEARANCE_NAMES

        return APPEARANCE_NAMES if self.appearance_model else ()

    @property
    def face_feature_names(self) -> list[str]:
        """What each frame of a face sequence holds: the blendshapes, then the appearance (if any)."""
        return list(self.blendshape_names) + list(self.appearance_names)

    @property
    def voice_rows(self) -> int:
        """Rows of the voice features: the MFCCs, or the log-mel bands with their two deltas."""
        return self.n_mfcc if self.voice_features == "mfcc" else 3 * self.n_mels

    @property
    def voice_channels(self) -> int:
        """Planes of the voice CNN's input: 1 for MFCCs, 3 for log-mel with its deltas."""
        return 1 if self.voice_features == "mfcc" else 3

    @property
    def voice_frames(self) -> int:
        """Frames of the voice CNN's input: the fixed window at the hop length."""
        return 1 + self.audio_window_samples // self.hop_length

    @property
    def audio_window_samples(self) -> int:
        return int(round(self.audio_window_s * self.sample_rate))
