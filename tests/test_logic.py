"""Fast unit tests of the pure logic: windows, frame times, gap filling."""

from __future__ import annotations

import numpy as np
import pytest

from emotion.config import PipelineConfig
from emotion.face import FaceWindow, fill_gaps, window_frame_times
from emotion.pipeline import split_windows

CFG = PipelineConfig()


@pytest.mark.parametrize("duration", [0.5, 4.0, 6.0])
def test_short_clips_are_one_window(duration):
    assert split_windows(duration, CFG) == [(0.0, duration)]


@pytest.mark.parametrize("duration, n", [(6.01, 2), (10.0, 3), (60.0, 15), (61.0, 16)])
def test_long_clips_are_cut_into_equal_windows_of_at_most_4s(duration, n):
    windows = split_windows(duration, CFG)
    assert len(windows) == n
    assert windows[0][0] == 0.0 and windows[-1][1] == pytest.approx(duration)
    lengths = [b - a for a, b in windows]
    assert max(lengths) <= CFG.window_s + 1e-9 and max(lengths) - min(lengths) < 1e-9
    assert all(a == pytest.approx(pb) for (a, _), (_, pb) in zip(windows[1:], windows[:-1]))  # no gap, no overlap


def test_frame_times_are_slice_centres():
    t = window_frame_times(4.0, 8.0, 4)
    np.testing.assert_allclose(t, [4.5, 5.5, 6.5, 7.5])


def test_fill_gaps_interpolates_inside_and_holds_at_the_edges():
    seq = np.array([[0.0], [0.0], [1.0], [0.0], [3.0], [0.0]], np.float32)
    detected = np.array([False, False, True, False, True, False])
    out = fill_gaps(seq, detected)
    np.testing.assert_allclose(out[:, 0], [1.0, 1.0, 1.0, 2.0, 3.0, 3.0])
    empty = np.zeros_like(seq)  # frames without a face hold zeros
    np.testing.assert_array_equal(fill_gaps(empty, np.zeros(6, bool)), empty)  # no face at all: nothing invented
    np.testing.assert_array_equal(fill_gaps(seq, np.ones(6, bool)), seq)


def test_coverage_counts_only_frames_that_were_read():
    detected = np.array([True, False, True, False])
    w = FaceWindow(0, 1, np.zeros((4, 52)), detected, np.zeros(4), 1, sampled=np.array([True, False, True, False]))
    assert w.coverage == 1.0  # the unread frames are interpolated, not missing
    assert FaceWindow(0, 1, np.zeros((4, 52)), detected, np.zeros(4), 1).coverage == 0.5


def test_a_seventh_emotion_in_the_config_reaches_the_heads_exports_and_plots(tmp_path):
    """The emotion list of weights/config.json drives every head, the stacker, exports and plots: nothing is
    sized for six. (Weights for seven classes come from training; here the heads are built untrained.)"""
    import dataclasses
    import json

    from emotion.audio import AudioCNN
    from emotion.batch import RowWriter
    from emotion.fusion import FusionMLP, fuse
    from emotion.plots import probability_figure, timeline_figure
    from emotion.result import Prediction, WindowResult, file_fields, file_row, timeline_fields, timeline_rows

    six = [e for e in CFG.emotions if e != "neutral"]  # the 2026 weights' list
    seven = [*six, "neutral"]
    cfg = dataclasses.replace(CFG, emotions=seven, mfcc_mean=[0.0] * CFG.voice_rows, mfcc_std=[1.0] * CFG.voice_rows)
    cfg.validate()
    assert AudioCNN(len(cfg.emotions)).classifier[-1].out_features == 7
    p = np.full(7, 1 / 7, np.float32)
    assert fuse(FusionMLP(7), [p], [p], 1.0, 7)[0].shape == (7,)
    probs = {e: round(1 / 7, 4) for e in seven}
    window = WindowResult(0.0, 4.0, "neutral", 0.3, probs, probs, probs, 1.0, True, False)
    pred = Prediction(file="a.mp4", label="neutral", confidence=0.3, verdict="Not sure", not_sure=True,
                      disagreement=False, fused=probs, audio=probs, face=probs, modalities=["audio", "face"],
                      face_coverage=1.0, speech_present=True, duration_s=8.0, warnings=[], timings_s={},
                      timeline=[window, window])
    fields = file_fields(cfg.emotions)
    assert "fused_neutral" in fields and "face_neutral" in fields and len(fields) == len(file_fields(six)) + 3
    out = tmp_path / "r.jsonl"
    RowWriter(out, fields).append([file_row("a.mp4", pred, size_bytes=1, mtime=1.0)])
    row = json.loads(out.read_text())
    assert row["audio_neutral"] == pytest.approx(1 / 7, abs=1e-4) and list(row) == list(fields)
    assert set(timeline_rows("a.mp4", pred)[0]) <= set(timeline_fields(cfg.emotions))
    assert list(probability_figure(pred).data[0].x) == seven
    assert [t.name for t in timeline_figure(pred).data] == seven
    with pytest.raises(Exception) as err:
        dataclasses.replace(cfg, emotions=["happy", "happy"]).validate()
    assert "emotions" in str(err.value)


def test_the_result_as_an_image_holds_the_verdict_and_the_plots(tmp_path):
    """The PNG a visitor saves: a white page with the verdict, bars and (for a long clip) the timeline."""
    from PIL import Image

    from emotion.plots import result_image
    from emotion.result import Prediction, WindowResult

    names = ["happy", "sad", "neutral"]
    probs = dict(zip(names, [0.7, 0.2, 0.1]))
    window = WindowResult(0.0, 4.0, "happy", 0.7, probs, probs, probs, 1.0, True, False)
    short = Prediction(file="a.mp4", label="happy", confidence=0.7, verdict="Happy (70%), from voice and face",
                       not_sure=False, disagreement=False, fused=probs, audio=probs, face=probs,
                       modalities=["audio", "face"], face_coverage=1.0, speech_present=True, duration_s=3.0)
    long = Prediction(**{**short.__dict__, "timeline": [window, WindowResult(**{**window.__dict__, "start_s": 4.0, "end_s": 8.0})]})
    a, b = Image.open(result_image(short, str(tmp_path / "a.png"))), Image.open(result_image(long, str(tmp_path / "b.png")))
    assert a.size[0] == b.size[0] and b.size[1] > a.size[1] * 1.4  # the timeline adds a plot
    pixels = np.asarray(a.convert("RGB"))
    assert (pixels == 255).all(axis=2).mean() > 0.5  # a white page
    assert ((np.abs(pixels.astype(int) - [44, 160, 44]).sum(axis=2)) < 30).sum() > 500  # the green "both" bars


def test_built_face_sequences_do_not_all_start_neutral():
    # Real clips start mid-expression: a photo with no neutral photo of its person is held from the first frame, and
    # sequences built from a neutral photo also start held, mid-way or returning, not only neutral → peak.
    from train.face_sequences import build_photo_set

    rng = np.random.default_rng(0)
    n, width = CFG.frames_per_window, len(CFG.blendshape_names)
    neutral, smile = np.full(width, 0.05, np.float32), np.full(width, 0.05, np.float32)
    smile[CFG.blendshape_names.index("mouthSmileLeft")] = smile[CFG.blendshape_names.index("mouthSmileRight")] = 0.8
    smile_at = [CFG.blendshape_names.index(k) for k in ("mouthSmileLeft", "mouthSmileRight")]
    photos = [(neutral, "neutral", "a", "a-neutral"), (smile, "happy", "a", "a-happy"), (smile, "happy", "b", "b-happy")]
    x, emotions, subjects, _ = build_photo_set(photos, 200, n, rng, with_neutral=False)
    assert emotions == ["happy"] * 400 and subjects == ["a"] * 200 + ["b"] * 200
    first = x[:, :3, smile_at].mean(axis=(1, 2))
    last = x[:, -5:, smile_at].mean(axis=(1, 2))
    held_b = first[200:]
    assert held_b.min() > 0.6 and np.abs(last[200:] - held_b).max() < 0.15  # no neutral photo: held throughout
    from_a = first[:200]
    assert 0.2 < (from_a > 0.45).mean() < 0.7  # with one: many start on or part-way to the expression ...
    assert (from_a < 0.1).mean() > 0.3  # ... and many from the neutral face
    assert ((last[:200] < first[:200] - 0.1)).mean() > 0.05  # some ease back towards neutral
    blink = CFG.blendshape_names.index("eyeBlinkLeft")
    assert (x[:, :, blink].max(axis=1) > 0.45).mean() > 0.3  # and people blink
