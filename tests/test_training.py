"""A tiny but real training run: small real subset, a few epochs, weights that the pipeline loads."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import FACE_MODEL, MEAD, SHARED


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from train.run import main

    root = tmp_path_factory.mktemp("tiny")
    code = main(["--shared", str(SHARED), "--out", str(root / "weights"), "--runs", str(root / "runs"),
                 "--cache", str(root / "cache"), "--face-model", str(FACE_MODEL), "--limit", "6",
                 "--audio-epochs", "6", "--audio-seeds", "1", "--face-epochs", "6", "--face-seeds", "2", "--per-photo", "2",
                 "--no-plots"])
    assert code == 0
    return root


def test_tiny_run_lowers_the_loss(tiny_run):
    full = json.loads(next((tiny_run / "runs").glob("*/metrics_full.json")).read_text())
    audio = full["history"]["audio"][0]
    face = full["history"]["face"][0]
    assert audio["train_loss"][-1] < audio["train_loss"][0]
    assert face["train_loss"][-1] < face["train_loss"][0]
    assert full["history"]["stacker_loss"][-1] < full["history"]["stacker_loss"][0]


def test_tiny_run_writes_loadable_weights(tiny_run):
    from emotion import EmotionPipeline

    weights = tiny_run / "weights"
    for name in ("config.json", "audio_cnn.safetensors", "face_lstm.keras", "fusion_mlp.safetensors",
                 "metrics.json", "README.md"):
        assert (weights / name).is_file(), name
    metrics = json.loads((weights / "metrics.json").read_text())
    assert metrics["protocol"]["split"] == "speaker"
    held_out = {s for s in metrics["protocol"]["held_out_speakers"] if s.startswith("ravdess")}
    assert held_out and held_out <= {"ravdess-17", "ravdess-18", "ravdess-19", "ravdess-20"}
    assert "baseline_mfcc_stats_logreg" in metrics["audio"] and "baseline_last_frame_real_clips" in metrics["face"]
    pipe = EmotionPipeline.from_pretrained(weights, face_model=FACE_MODEL)
    pred = pipe.predict(MEAD / "M030_sad_eamm1.mp4")
    assert pred.modalities == ["audio", "face"]
    assert sum(pred.fused.values()) == pytest.approx(1, abs=1e-3)
    # the config carries the normalisation statistics fitted in training
    assert len(pipe.cfg.mfcc_mean) == pipe.cfg.n_mfcc and np.all(np.asarray(pipe.cfg.mfcc_std) > 0)
