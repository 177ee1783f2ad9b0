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
