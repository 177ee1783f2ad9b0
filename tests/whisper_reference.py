"""Whisper-base's last encoder layer on a real clip, computed once by CTranslate2 (the library the weights were
packaged for), kept as a reference for emotion.speech_encoder's PyTorch layers (tests/test_voice_encoder.py).

    pip install ctranslate2==4.8.5 && python tests/whisper_reference.py   # rewrites tests/data/whisper_reference.json
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from conftest import RAVDESS  # tests/ is on the path, run as a script or by pytest

HERE = Path(__file__).resolve().parent

CLIP = RAVDESS / "Actor_02" / "03-01-05-02-01-01-02.flac"
REFERENCE = HERE / "data" / "whisper_reference.json"
FRAMES = 150  # the clip's first 3 s of encoder frames (50 a second)


def padded_mel() -> np.ndarray:
    """The clip's log-mel, padded with silence to Whisper's 30 s (CTranslate2 takes only that length)."""
    import librosa

    from emotion import speech_encoder as se

    wave, _ = librosa.load(CLIP, sr=se.SAMPLE_RATE)
    return se.log_mel(np.concatenate([wave, np.zeros(30 * se.SAMPLE_RATE - wave.size, np.float32)]))


def summary(last: np.ndarray) -> dict:
    """What is kept of the (frames, 512) output: its mean frame and each frame's mean and spread."""
    last = last[:FRAMES]
    return {"mean_frame": last.mean(0).round(5).tolist(), "frame_means": last.mean(1).round(5).tolist(),
            "frame_stds": last.std(1).round(5).tolist()}


def main() -> None:
    import ctranslate2

    from emotion import speech_encoder as se

    folder = Path(tempfile.mkdtemp())
    (folder / "model.bin").write_bytes(se.model_bytes())
    data = Path(importlib.util.find_spec(se.PARTS[0]).origin).parent / "data"
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy(data / name, folder / name)
    model = ctranslate2.models.Whisper(str(folder), device="cpu", compute_type="float32")
    out = np.array(model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(padded_mel()[None]))))[0]
    REFERENCE.write_text(json.dumps({"clip": f"{CLIP.parent.name}/{CLIP.name}", "library": f"ctranslate2 "
                                     f"{ctranslate2.__version__}", **summary(out)}) + "\n")
    shutil.rmtree(folder)
    print(f"wrote {REFERENCE}")


if __name__ == "__main__":
    main()
