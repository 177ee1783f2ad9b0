"""Branches as plug-ins (emotion.branches): the pipeline runs the branches that weights/config.json names."""

import json
import shutil

import numpy as np
import pytest

from conftest import MEAD, ROOT
from emotion import EmotionPipeline
from emotion.branches import IMPLEMENTATIONS, BranchInput, register
from emotion.errors import EmotionError

CLIP = MEAD / "M030_sad_eamm1.mp4"  # the one shared clip with a face and real speech


def weights_with(tmp_path, drop: tuple[str, ...] = (), **config_changes):
    """A copy of the shipped weights with some files left out and config.json changed."""
    folder = tmp_path / "weights"
    shutil.copytree(ROOT / "weights", folder, ignore=shutil.ignore_patterns(*drop))
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, **config_changes}))
    return folder


def test_a_voice_only_model_needs_no_face_files_and_answers_as_the_full_voice(tmp_path, pipe):
    folder = weights_with(tmp_path, drop=("face_lstm.keras", "fer2013*"), branches={"audio": pipe.cfg.branches["audio"]},
                          appearance_model="")
    voice_only = EmotionPipeline.from_pretrained(folder, face_model=tmp_path / "absent.task")
    assert list(voice_only.branches) == ["audio"] and voice_only.problems == {}
    pred, full = voice_only.predict(CLIP), pipe.predict(CLIP)
    assert pred.modalities == ["audio"] and pred.face is None and pred.face_coverage == 0
    assert not any("face" in w.lower() for w in pred.warnings), pred.warnings
    assert pred.audio == full.audio and pred.fused == full.audio  # a lone branch passes through
    again = EmotionPipeline.from_pretrained(voice_only.save_pretrained(tmp_path / "saved"), warmup=False)
    assert list(again.branches) == ["audio"] and not (tmp_path / "saved" / "face_lstm.keras").exists()


class LoudnessVoice:
    """A plug-in branch written outside the package: loud speech reads angry, quiet speech sad."""

    role = "audio"
    weights_file = "loudness.json"
    problem = None

    def __init__(self, threshold_db: float, n_classes: int) -> None:
        self.threshold_db, self.n_classes = threshold_db, n_classes

    def read(self, media, windows, cfg):
        if media.wave is None:
            return BranchInput.empty(len(windows), ["No sound."])
        levels = [20 * np.log10(np.sqrt(np.mean(media.wave[int(a * cfg.sample_rate): int(b * cfg.sample_rate)] ** 2))
                                + 1e-9) for a, b in windows]
        return BranchInput(levels, list(range(len(windows))), [1.0] * len(windows))

    def logits(self, inputs):
        out = np.zeros((len(inputs), self.n_classes), np.float32)
        for row, level in zip(out, inputs):
            row[2 if level > self.threshold_db else 1] = 5.0  # angry / sad
        return out

    def warmup(self, cfg):
        return self.logits([0.0])

    def save(self, folder):
        (folder / self.weights_file).write_text(json.dumps({"threshold_db": self.threshold_db}))

    @classmethod
    def load(cls, folder, cfg, **options):
        return cls(**json.loads((folder / cls.weights_file).read_text()), n_classes=len(cfg.emotions))


def test_a_registered_branch_plays_its_role_from_the_config(tmp_path):
    register("loudness_test", LoudnessVoice)
    try:
        folder = weights_with(tmp_path, branches={"audio": "loudness_test", "face": "face_lstm"})
        (folder / "loudness.json").write_text(json.dumps({"threshold_db": -200.0}))  # anything is loud
        pipe = EmotionPipeline.from_pretrained(folder, face_model=tmp_path / "absent.task", warmup=False)
        assert isinstance(pipe.branches["audio"], LoudnessVoice)
        pred = pipe.predict(CLIP)
        assert pred.modalities == ["audio"] and max(pred.audio, key=pred.audio.get) == "angry"
        assert any("Face analysis is off" in w for w in pred.warnings)  # the face plays, without its landmarker file
    finally:
        IMPLEMENTATIONS.pop("loudness_test")


def test_weights_naming_an_unknown_branch_or_role_are_refused_in_words(tmp_path):
    folder = weights_with(tmp_path, branches={"audio": "wav2vec_someday", "face": "face_lstm"})
    with pytest.raises(EmotionError, match="wav2vec_someday.*Update the package") as err:
        EmotionPipeline.from_pretrained(folder, warmup=False)
    assert err.value.code == "bad_weights"
    folder = weights_with(tmp_path / "b", branches={"gesture": "voice_cnn"})
    with pytest.raises(EmotionError, match="`branches`"):
        EmotionPipeline.from_pretrained(folder, warmup=False)
    folder = weights_with(tmp_path / "c", branches={"audio": "emotion.audio:VoiceBranch"})  # no import paths
    with pytest.raises(EmotionError, match="`branches`"):
        EmotionPipeline.from_pretrained(folder, warmup=False)
