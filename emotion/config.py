"""Every preprocessing constant and threshold, in one dataclass saved as weights/config.json.

The config travels with the weights, so a model is always fed features made exactly as in training.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from .errors import EmotionError
from .labels import EMOTIONS

FORMAT_VERSION = 1

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


@dataclass
class PipelineConfig:
    """Preprocessing parameters, thresholds and calibration, as saved next to the weights."""

    format_version: int = FORMAT_VERSION
    emotions: list[str] = field(default_factory=lambda: list(EMOTIONS))
    # audio
    sample_rate: int = 16000
    n_mfcc: int = 40
    n_mels: int = 64
    n_fft: int = 512
    hop_length: int = 160
    audio_window_s: float = 3.0  # the CNN sees this much speech, centred after trimming silence
    trim_top_db: float = 30.0
    min_speech_rms: float = 0.003  # below this the voice branch is treated as absent (silence)
    mfcc_mean: list[float] = field(default_factory=list)  # per coefficient, from the training set
    mfcc_std: list[float] = field(default_factory=list)
    # face
    frames_per_window: int = 50
    blendshape_names: list[str] = field(default_factory=lambda: list(BLENDSHAPE_NAMES))
    # Gaze is not an emotion cue, and MediaPipe reads it asymmetrically (a mirrored face does not give
    # mirrored gaze scores): the face model sees these as zeros.
    face_ignored: list[str] = field(default_factory=lambda: [n for n in BLENDSHAPE_NAMES if n.startswith("eyeLook")])
    face_confidence: float = 0.3
    max_faces: int = 3
    face_max_side_px: int = 640  # frames are downscaled to this before the landmarker
    # Beyond this length only every `long_video_face_stride`-th frame is read (the rest interpolated) and
    # unreferenced frames are not decoded: the landmarker and the decoder are all the cost of a long video.
    long_video_s: float = 60.0
    long_video_face_stride: int = 2
    min_face_coverage: float = 0.3  # below this share of frames with a face, the face branch is absent
    # windows for long clips
    window_s: float = 4.0
    single_window_max_s: float = 6.0  # a clip up to this long is analysed as one window
    # input limits (the app and CLI refuse beyond them)
    max_duration_s: float = 900.0
    max_file_mb: float = 500.0
    # trust
    temperature_audio: float = 1.0
    temperature_face: float = 1.0
    temperature_fused: float = 1.0
    not_sure_top_p: float = 0.0  # a fused top probability below this reads "not sure"
    metrics_file: str = "metrics.json"

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")

    @classmethod
    def from_json(cls, path: str | Path) -> "PipelineConfig":
        data = json.loads(Path(path).read_text())
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise EmotionError(
                f"These weights use config format version {version!r}, but this version of the "
                f"package reads version {FORMAT_VERSION}. Update the package or use matching weights.",
                code="config_version",
            )
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def audio_window_samples(self) -> int:
        return int(round(self.audio_window_s * self.sample_rate))
