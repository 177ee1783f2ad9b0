"""Probing and decoding real files, and the specific errors for unusable ones."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import MEAD, RAVDESS, ffmpeg
from emotion.errors import EmotionError
from emotion.media import load_audio, probe, readable_copy, sample_frames

HAPPY = MEAD / "W009_front_happy_level3_001.mp4"
SPEECH_VIDEO = MEAD / "M030_sad_eamm1.mp4"
FLAC = RAVDESS / "Actor_01" / "03-01-03-01-01-01-01.flac"


def test_probe_video_and_audio():
    info = probe(SPEECH_VIDEO)
    assert info.has_video and info.has_audio
    assert (info.width, info.height) == (1920, 1080)
    assert 3.5 < info.duration_s < 3.9
    audio = probe(FLAC)
    assert audio.has_audio and not audio.has_video


def test_truncated_header_duration_is_corrected():
    # This shared clip is cut short: its header says 6.28 s but only ~4.4 s of video can be decoded.
    info = probe(MEAD / "X_sad_eamm.mp4")
    assert info.header_duration_s == pytest.approx(6.28, abs=0.05)
    assert info.duration_s == pytest.approx(4.36, abs=0.1)


def test_load_audio_is_16k_mono():
    wave = load_audio(FLAC, 16000)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert wave.size == pytest.approx(probe(FLAC).duration_s * 16000, rel=0.01)
    assert load_audio(HAPPY) is None  # no audio track


def test_frames_are_read_in_order_at_requested_times():
    seen = []
    targets = np.array([0.5, 0.1, 2.0, 3.0])
    sample_frames(HAPPY, targets, lambda i, frame, t: seen.append((i, t, frame.shape)))
    assert [i for i, _, _ in seen] == [1, 0, 2, 3]
    for i, t, shape in seen:
        assert abs(t - targets[i]) <= 0.03 and shape == (256, 256, 3)


@pytest.mark.parametrize("name,content,code", [
    ("notes.mp4", b"this is a text file, not a video\n" * 20, "not_media"),
    ("empty.mp4", b"", "empty_file"),
    ("report.mp4", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n", "not_media"),
], ids=["text", "empty", "pdf"])
def test_unusable_files_give_specific_errors(tmp_path, name, content, code):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(EmotionError) as err:
        probe(path)
    assert err.value.code == code
    assert name in str(err.value)


def test_truncated_mp4(tmp_path):
    data = SPEECH_VIDEO.read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(EmotionError) as err:
        probe(path)
    assert err.value.code == "truncated"
    assert "cut off" in str(err.value)


def test_still_image_is_refused(tmp_path):
    jpg = tmp_path / "photo.mp4"
    ffmpeg("-i", str(HAPPY), "-frames:v", "1", "-f", "image2", "-c:v", "mjpeg", str(jpg))
    with pytest.raises(EmotionError) as err:
        probe(jpg)
    assert err.value.code == "image"


def test_webm_without_duration_is_remuxed_and_cleaned_up(tmp_path):
    # A browser MediaRecorder webm has no duration in its header; a live-streamed webm imitates it.
    webm = tmp_path / "webcam.webm"
    ffmpeg("-i", str(SPEECH_VIDEO), "-t", "2", "-vf", "scale=320:-2", "-c:v", "libvpx", "-b:v", "300k",
           "-c:a", "libopus", "-live", "1", "-f", "webm", str(webm))
    info = probe(webm)
    assert info.header_duration_s is None
    with readable_copy(info) as usable:
        assert usable.header_duration_s == pytest.approx(2.0, abs=0.2)
        remux_dir = __import__("pathlib").Path(usable.path).parent
        assert remux_dir.exists()
    assert not remux_dir.exists()
