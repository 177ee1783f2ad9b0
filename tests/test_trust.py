"""Calibrated confidence, an honest "not sure", and the "why" figures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import MEAD, ROOT
from emotion.explain import PLAIN_NAMES, face_figure, voice_figure
from emotion.pipeline import verdict_text

METRICS = json.loads((ROOT / "weights" / "metrics.json").read_text())


@pytest.mark.parametrize("branch", ["audio", "face", "fused"])
def test_calibration_on_held_out_speakers(branch):
    cal = METRICS["calibration"][branch]
    assert cal["temperature"] > 0
    assert len(cal["reliability_after"]["confidence"]) == len(cal["reliability_after"]["accuracy"]) > 0
    # never worse than before (temperatures near 1 change little: that branch was already calibrated)
    assert cal["ece_after"] <= cal["ece_before"] + 0.005
    if abs(cal["temperature"] - 1) > 0.1:
        assert cal["ece_after"] < cal["ece_before"]


def test_calibration_lowers_the_voice_ece():
    cal = METRICS["calibration"]["audio"]
    assert cal["ece_after"] < cal["ece_before"]


def test_temperatures_and_threshold_travel_in_the_config(pipe):
    cal = METRICS["calibration"]
    assert pipe.cfg.temperature_audio == pytest.approx(cal["audio"]["temperature"], abs=1e-3)
    assert pipe.cfg.temperature_face == pytest.approx(cal["face"]["temperature"], abs=1e-3)
    assert 0.35 <= pipe.cfg.not_sure_top_p == cal["not_sure_top_p"] <= 0.7


@pytest.mark.parametrize("subject", ["M030", "W009", "W011"])
def test_neutral_faces_are_not_called_with_false_certainty(pipe, subject):
    # Neutral is not one of the six emotions: the honest answer is "not sure" or a low confidence.
    pred = pipe.predict(next(MEAD.glob(f"{subject}_front_neutral_*.mp4")))
    assert pred.not_sure or pred.confidence < 0.6, pred.verdict


def test_not_sure_wording():
    assert verdict_text("sad", 0.31, True, "fearful", ("audio", "face")) == \
        "Not sure — maybe sad or fearful (from voice and face)"
    assert verdict_text("happy", 0.81, False, "sad", ("face",)) == "Happy (81%), from the face only"
    assert "voice only" in verdict_text("angry", 0.7, False, "sad", ("audio",))


def test_explanation_figures(pipe):
    pred = pipe.predict(MEAD / "M030_sad_eamm1.mp4", explain=True)
    e = pred.explanation
    assert e.face_values.shape == (len(e.face_movements), len(e.face_times_s))
    assert set(e.face_movements) <= set(PLAIN_NAMES.values())  # plain words, not blendshape codes
    assert e.face_importance == sorted(e.face_importance, reverse=True)
    fig = face_figure(e)
    heat = [t for t in fig.data if t.type == "heatmap"][0]
    assert list(heat.y) == e.face_movements
    assert len(fig.layout.shapes) == len(e.face_peak_times_s) >= 1  # the strongest moments are marked
    vfig = voice_figure(e)
    names = [t.name for t in vfig.data]
    assert names == ["loudness (dB)", "pitch (Hz)"]
    pitch = np.asarray(vfig.data[1].y, dtype=float)
    voiced = pitch[~np.isnan(pitch)]
    assert voiced.size > 20 and 70 < np.median(voiced) < 300  # a speaking voice
    assert "explanation" not in pred.to_dict()
