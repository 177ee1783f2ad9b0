"""Probing and decoding real files, and the specific errors for unusable ones."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import MEAD, RAVDESS, ffmpeg
from emotion.errors import EmotionError
from emotion.media import ffmpeg_exe, load_audio, probe, read_frames, readable_copy

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


def _index_video(path, n=120, fps=30):
    """A lossless video whose frame k shows k in two grey blocks (k % 16 left, k // 16 right)."""
    frames = np.zeros((n, 64, 96, 3), np.uint8)
    for k in range(n):
        frames[k, :, :48], frames[k, :, 48:] = (k % 16) * 16 + 8, (k // 16) * 16 + 8
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "96x64",
                    "-r", str(fps), "-i", "-", "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv444p", str(path)],
                   input=frames.tobytes(), check=True)


def _frame_index(rgb):
    return int(rgb[:, :48, 0].mean() // 16) + 16 * int(rgb[:, 48:, 0].mean() // 16)


@pytest.mark.parametrize("start,step,count", [(0.04, 0.08, 50), (0.5, 0.5, 3), (1.01, 1 / 30, 10), (3.9, 0.05, 10)])
def test_frames_on_a_time_grid_are_the_ones_on_screen(tmp_path, start, step, count):
    video = tmp_path / "index.mp4"
    _index_video(video)  # 120 frames at 30 fps: 4 s
    got = [(i, _frame_index(rgb)) for i, rgb in read_frames(video, start, step, count, 640)]
    expected = [(i, int(np.floor((start + i * step) * 30 + 1e-6))) for i in range(count)
                if start + i * step < 4.0]
    assert got == expected  # the frame showing at each grid time; none past the end


def test_a_read_pattern_keeps_only_its_frames_and_their_grid_indices(tmp_path):
    # The fast reading of long videos: the first and last frames of each 10-frame window, 1 in 3 between.
    video = tmp_path / "index.mp4"
    _index_video(video)
    j = np.arange(10)
    pattern = (j < 2) | (j >= 8) | (j % 3 == 0)
    got = [(i, _frame_index(rgb)) for i, rgb in read_frames(video, 0.0, 2 / 30, 45, 640, pattern=pattern)]
    assert got == [(i, 2 * i) for i in range(45) if pattern[i % 10]]


def test_frames_are_upright_and_shrunk(tmp_path):
    _, rgb = next(read_frames(SPEECH_VIDEO, 1.0, 0.1, 1, 640))
    assert rgb.shape == (360, 640, 3) and rgb.dtype == np.uint8
    _, small = next(read_frames(HAPPY, 1.0, 0.1, 1, 640))
    assert small.shape == (256, 256, 3)  # never enlarged


def _children() -> set[str]:
    pid = os.getpid()
    return set(Path(f"/proc/{pid}/task/{pid}/children").read_text().split())


def test_stopping_early_ends_the_decoder():
    before = _children()
    frames = read_frames(SPEECH_VIDEO, 0.0, 0.04, 90, 640)
    next(frames)
    assert _children() - before  # ffmpeg is running
    frames.close()
    assert _children() == before


def test_undecodable_video_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    with pytest.raises(EmotionError) as err:
        list(read_frames(bad, 0.0, 0.1, 5, 640))
    assert err.value.code == "corrupt" and "bad.mp4" in str(err.value)


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


def test_decoder_ends_when_the_face_step_fails(monkeypatch):
    from conftest import FACE_MODEL
    from emotion.config import PipelineConfig
    from emotion.face import FaceTracker, video_blendshapes

    def broken(self, rgb, time_s):
        raise RuntimeError("landmarker failed")

    monkeypatch.setattr(FaceTracker, "read", broken)
    before = _children()
    with pytest.raises(RuntimeError):
        video_blendshapes(SPEECH_VIDEO, [(0.0, 3.0)], PipelineConfig(), FACE_MODEL)
    assert _children() == before
