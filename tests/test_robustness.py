"""Odd and broken inputs, made here with ffmpeg from the shared clips: each gives its own outcome,
never a traceback, and no temporary file is left behind."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from conftest import MEAD, RAVDESS, ffmpeg
from emotion import EmotionError

FACE = MEAD / "W011_front_happy_level3_001.mp4"  # 256x256, no audio
TALK = MEAD / "M030_sad_eamm1.mp4"  # 1080p with speech
VOICE = RAVDESS / "Actor_20" / "03-01-03-02-01-01-20.flac"


def make(tmp: Path, name: str, *args: str) -> Path:
    out = tmp / name
    ffmpeg(*args, str(out))
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    t = tmp_path_factory.mktemp("corpus")
    c = {
        "png_renamed": make(t, "picture.mp4", "-i", str(FACE), "-frames:v", "1", "-f", "image2", "-c:v", "png"),
        "audio_as_video": make(t, "voice.mp4", "-i", str(VOICE), "-c:a", "aac"),
        "silent_audio": make(t, "silent.mp4", "-i", str(FACE), "-f", "lavfi", "-i", "anullsrc=r=44100:cl=stereo",
                             "-shortest", "-c:v", "copy", "-c:a", "aac"),
        "no_face": make(t, "pattern.mp4", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-i", str(VOICE),
                        "-shortest", "-c:v", "libx264", "-c:a", "aac"),
        "two_faces": make(t, "two.mp4", "-i", str(FACE), "-i", str(MEAD / "W009_front_sad_level3_001.mp4"),
                          "-filter_complex", "[0:v]scale=256:256[a];[1:v]scale=180:180,pad=256:256:38:38[b];[a][b]hstack",
                          "-t", "3.5", "-c:v", "libx264"),
        "dark": make(t, "dark.mp4", "-i", str(FACE), "-vf", "eq=brightness=-0.85", "-c:v", "libx264"),
        "tiny_face": make(t, "tiny.mp4", "-i", str(FACE), "-vf", "scale=40:40,pad=640:480:300:220", "-c:v", "libx264"),
        "rotated": make(t, "phone.mp4", "-display_rotation", "-90", "-i",
                        str(make(t, "sideways.mp4", "-i", str(FACE), "-vf", "transpose=2", "-c:v", "libx264")),
                        "-c", "copy"),
        "vfr": make(t, "vfr.mkv", "-i", str(FACE), "-vf", "select='not(mod(n\\,3))+not(mod(n\\,7))'",
                    "-fps_mode", "vfr", "-c:v", "libx264"),
        "one_second": make(t, "short.mp4", "-i", str(TALK), "-t", "1", "-c:v", "libx264", "-c:a", "aac"),
        "uhd": make(t, "uhd.mp4", "-i", str(TALK), "-t", "2", "-vf", "scale=3840:2160", "-c:v", "libx264",
                    "-preset", "ultrafast", "-c:a", "aac"),
        "vp8": make(t, "clip_vp8.webm", "-i", str(FACE), "-c:v", "libvpx", "-b:v", "500k"),
        "vp9": make(t, "clip_vp9.webm", "-i", str(FACE), "-c:v", "libvpx-vp9", "-b:v", "500k", "-deadline", "realtime"),
        "mjpeg": make(t, "clip_mjpeg.avi", "-i", str(FACE), "-c:v", "mjpeg", "-q:v", "3"),
        "hevc": make(t, "clip_hevc.mkv", "-i", str(FACE), "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error"),
        "mov": make(t, "clip.mov", "-i", str(TALK), "-vf", "scale=480:-2", "-c:v", "libx264", "-c:a", "aac"),
        "flv": make(t, "clip.flv", "-i", str(FACE), "-c:v", "flv"),
    }
    corrupt = t / "corrupt.mp4"
    data = bytearray(TALK.read_bytes())
    mid = len(data) // 3
    data[mid:mid + 200_000] = b"\x00\xff" * 100_000  # a damaged stretch in the middle of the video data
    corrupt.write_bytes(bytes(data))
    c["corrupt_middle"] = corrupt
    return c


FACE_CASES = ["vp8", "vp9", "mjpeg", "hevc", "flv", "vfr", "rotated"]


@pytest.mark.parametrize("case", FACE_CASES)
def test_codecs_and_containers_give_a_face_answer(pipe, corpus, case):
    pred = pipe.predict(corpus[case])
    assert pred.modalities == ["face"], pred.warnings
    assert pred.face_coverage > 0.8


def test_rotated_phone_video_is_turned_upright(pipe, corpus):
    # stored sideways with rotation metadata: the face is only found if frames are turned upright
    from emotion.media import probe

    assert probe(corpus["rotated"]).rotation in (90, 270)
    assert pipe.predict(corpus["rotated"]).face_coverage > 0.9


def test_still_image_renamed_mp4(pipe, corpus):
    with pytest.raises(EmotionError) as err:
        pipe.predict(corpus["png_renamed"])
    assert err.value.code == "image"


def test_audio_only_file_given_as_video(pipe, corpus):
    pred = pipe.predict(corpus["audio_as_video"])
    assert pred.modalities == ["audio"] and pred.face is None


def test_silent_audio_track(pipe, corpus):
    pred = pipe.predict(corpus["silent_audio"])
    assert pred.modalities == ["face"]
    assert any("silent" in w for w in pred.warnings)


def test_no_face(pipe, corpus):
    pred = pipe.predict(corpus["no_face"])
    assert pred.modalities == ["audio"] and pred.face_coverage == 0
    assert any("No face found" in w for w in pred.warnings)


def test_several_faces_follow_the_largest(pipe, corpus, tmp_path):
    pred = pipe.predict(corpus["two_faces"])
    assert "face" in pred.modalities
    assert any("Several faces" in w for w in pred.warnings)
    # the blendshapes read are those of the larger face (W011, left), not the smaller one (W009, right)
    import numpy as np

    big = make(tmp_path, "big.mp4", "-i", str(FACE), "-t", "3.5", "-c:v", "libx264")
    small = make(tmp_path, "small.mp4", "-i", str(MEAD / "W009_front_sad_level3_001.mp4"), "-t", "3.5",
                 "-c:v", "libx264")
    seq = lambda path: pipe.preprocess(path).inputs["face"].windows[0].sequence
    both = seq(corpus["two_faces"])
    assert np.abs(both - seq(big)).mean() < 0.5 * np.abs(both - seq(small)).mean()


def test_very_dark_video(pipe, corpus):
    pred = pipe.predict(corpus["dark"])
    # the landmarker still finds the face at -0.85 brightness: the face is used, and said to be
    assert pred.modalities == ["face"] and pred.face_coverage > 0.5 and "from the face only" in pred.verdict


def test_very_small_face(pipe, corpus):
    pred = pipe.predict(corpus["tiny_face"])
    assert pred.modalities == [] and pred.label is None
    assert any("no face found" in w.lower() for w in pred.warnings)
    assert "No answer" in pred.verdict


def test_one_second_clip(pipe, corpus):
    pred = pipe.predict(corpus["one_second"])
    assert set(pred.modalities) == {"audio", "face"} and pred.duration_s == pytest.approx(1.0, abs=0.1)


def test_4k_video(pipe, corpus):
    pred = pipe.predict(corpus["uhd"])
    assert set(pred.modalities) == {"audio", "face"} and pred.face_coverage > 0.9


def test_mov_container(pipe, corpus):
    assert set(pipe.predict(corpus["mov"]).modalities) == {"audio", "face"}


def test_corrupt_middle_still_answers(pipe, corpus):
    pred = pipe.predict(corpus["corrupt_middle"])
    assert pred.label is not None  # damaged frames are skipped, the rest is used


def test_limits_on_length_and_size(pipe, corpus):
    limited = pipe.with_config(max_duration_s=2.0, max_file_mb=0.5)
    with pytest.raises(EmotionError) as err:
        limited.predict(MEAD / "W009_front_happy_level3_001.mp4")
    assert err.value.code == "too_long" and "limit" in str(err.value)
    with pytest.raises(EmotionError) as err:
        limited.predict(TALK)
    assert err.value.code == "too_large"


def test_no_temporary_files_left(pipe, corpus, tmp_path, monkeypatch):
    private = tmp_path / "tmp"  # this test's own temporary folder: other processes cannot disturb the count
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    webm = make(tmp_path, "webcam.webm", "-i", str(TALK), "-t", "2", "-vf", "scale=320:-2", "-c:v", "libvpx",
                "-c:a", "libopus", "-live", "1", "-f", "webm")
    broken = tmp_path / "broken_webcam.webm"  # a recording without duration, cut off before its first frame
    data = webm.read_bytes()
    broken.write_bytes(data[:data.find(b"\x1f\x43\xb6\x75") + 8])
    from emotion.media import probe

    assert probe(webm).header_duration_s is None and probe(broken).header_duration_s is None  # both take the remux path
    assert pipe.predict(webm).label is not None
    codes = []
    for bad in (broken, corpus["png_renamed"], corpus["corrupt_middle"]):
        try:
            pipe.predict(bad)
        except EmotionError as exc:
            codes.append((exc.code, str(exc)))
    assert codes[0][0] == "corrupt" and "broken_webcam.webm" in codes[0][1]  # named as the user knows it
    assert [c for c, _ in codes] == ["corrupt", "image"]
    assert list(private.iterdir()) == []
