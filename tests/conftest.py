"""Shared fixtures: the real files in ../shared, the face model, one loaded pipeline per session."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("EMOTION_SHARED", ROOT.parent / "shared")).resolve()
MEAD = SHARED / "data" / "mead-clips"
RAVDESS = SHARED / "data" / "ravdess-speech-16k"
FACE_MODEL = SHARED / "models" / "face_landmarker.task"

os.environ.setdefault("EMOTION_FACE_MODEL", str(FACE_MODEL))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def ffmpeg(*args: str) -> None:
    """Run the bundled ffmpeg (tests make their own odd inputs from the shared clips)."""
    from emotion.media import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y", *args], check=True,
                   capture_output=True)


@pytest.fixture(scope="session")
def pipe():
    from emotion import EmotionPipeline

    return EmotionPipeline.from_pretrained(ROOT / "weights", face_model=FACE_MODEL)


# The weights shipped until 2026-12 (six emotions, the log-mel CNN voice): old weights must keep loading, and
# the CNN voice branch is still one a config can name. Same files as in git history, so no extra space.
SIX_WEIGHTS = ROOT / "tests" / "data" / "weights-six"


@pytest.fixture(scope="session")
def six_pipe():
    from emotion import EmotionPipeline

    return EmotionPipeline.from_pretrained(SIX_WEIGHTS, face_model=FACE_MODEL)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture
def tmp_copy(tmp_path):
    def make(src: Path, name: str) -> Path:
        dst = tmp_path / name
        shutil.copy(src, dst)
        return dst

    return make
