"""The branch contract: what a modality implements (the voice CNN, the face LSTM, tomorrow a pretrained speech
encoder) so that the pipeline runs every branch named in weights/config.json without knowing any of them.

A branch plays one of two roles, "audio" (the voice) or "face": the role is the key of its probabilities in
results and exports, and the stacker combines the roles. `branches` in config.json maps each role to a registered
implementation ({"audio": "voice_cnn", "face": "face_lstm"} when absent); a config may name one role only (a
voice-only model). Implementations are registered by name, never imported from a path a config names: a config
comes from the Hub, and must not choose which code runs.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Protocol

import numpy as np

from .decoded import DecodedMedia
from .errors import EmotionError

ROLES = ("audio", "face")
DEFAULT_BRANCHES = {"audio": "voice_cnn", "face": "face_lstm"}
FUSION_FILE = "fusion_mlp.safetensors"  # the stacker over the roles
# name → "module:Class", imported when a config uses it (a speech encoder's runtime is loaded only then)
IMPLEMENTATIONS: dict[str, str] = {"voice_cnn": "emotion.audio:VoiceBranch", "face_lstm": "emotion.face:FaceBranch",
                                   "voice_encoder": "emotion.voice_encoder:VoiceEncoderBranch"}


@dataclass
class Media:
    """What the branches read from one input, however it came (a file, arrays in memory)."""

    name: str
    duration_s: float
    wave: np.ndarray | None  # mono at the config's sample rate; None when there is no sound
    has_video: bool
    frames: str | Path | DecodedMedia  # a readable file, or frames in memory
    max_pixels: int | None = None  # the largest frame the decoder may make (emotion.media.read_frames)
    progress: Callable[[float, str], None] = lambda fraction, words: None
    timings: dict[str, float] = field(default_factory=dict)  # a branch may add its stages' seconds


@dataclass
class BranchInput:
    """What one branch read, window by window: the model's input where the window can be judged, and notes."""

    windows: list[Any]  # per window: what the branch extracted (None where nothing)
    usable: list[int]  # the windows its model reads
    seen: list[float]  # per window, the share in which the branch found its signal (speech, a face)
    notes: list[str] = field(default_factory=list)  # for the user, e.g. "No face found — …"

    @classmethod
    def empty(cls, n: int, notes: list[str] | None = None) -> "BranchInput":
        return cls([None] * n, [], [0.0] * n, list(notes or []))


class Branch(Protocol):
    """One modality: reads its part of the media per window, turns the usable windows into logits, and saves and
    loads its weights file. The pipeline calibrates the logits with `temperature_<role>` from the config."""

    role: ClassVar[str]  # "audio" or "face"
    weights_file: ClassVar[str]  # its file in a weights folder
    problem: str | None  # why it cannot run on this machine (e.g. no face model file); None when it can

    def read(self, media: Media, windows: list[tuple[float, float]], cfg) -> BranchInput: ...

    def logits(self, inputs: list) -> np.ndarray:
        """(len(inputs), emotions) logits for the usable windows' inputs."""

    def warmup(self, cfg) -> np.ndarray:
        """Run once on dummy input (compiling what compiles lazily); the outputs, to check they are finite."""

    def save(self, folder: Path) -> None: ...

    @classmethod
    def load(cls, folder: Path, cfg, **options) -> "Branch": ...


def register(name: str, target: str | type) -> None:
    """Make an implementation available to configs as `name` ("module:Class", or the class itself)."""
    IMPLEMENTATIONS[name] = target if isinstance(target, str) else f"{target.__module__}:{target.__qualname__}"


def branch_class(name: str) -> type:
    """The class registered as `name`; an unknown name is a clear error (the weights need a newer package)."""
    if name not in IMPLEMENTATIONS:
        raise EmotionError(f"These weights use the branch {name!r}, which this version of the package does not "
                           f"have (it has {', '.join(sorted(IMPLEMENTATIONS))}). Update the package.",
                           code="bad_weights")
    module, cls = IMPLEMENTATIONS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def weight_files(cfg) -> list[str]:
    """The files a weights folder must hold for this config: itself, each branch's file, the stacker's."""
    return ["config.json", *(branch_class(name).weights_file for name in cfg.branches.values()), FUSION_FILE]


def load_checked(path: Path, loader: Callable[[str], object], n_emotions: int | None = None):
    """Load one weights file; anything wrong with it (truncated, wrong shapes, not what it claims to be) becomes
    an EmotionError naming the file (and the config's emotion list, when the sizes disagree)."""
    try:
        return loader(str(path))
    except EmotionError:
        raise
    except Exception as exc:
        words = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else exc.__class__.__name__
        if n_emotions is not None and "size mismatch" in str(exc):
            raise EmotionError(f"The weights file {path.name} does not fit the {n_emotions} emotions listed in "
                               f"config.json (`emotions`): {words}", code="bad_weights") from None
        raise EmotionError(f"The weights file {path.name} cannot be loaded: {words}", code="bad_weights") from None
