"""The whole pipeline on real clips: which modalities are used, probabilities, warnings, timeline."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import FACE_MODEL, MEAD, RAVDESS, ROOT, ffmpeg
from emotion import EMOTIONS, EmotionError

SPEECH_VIDEO = MEAD / "M030_sad_eamm1.mp4"  # the one shared clip with a face and real speech
FLAC = RAVDESS / "Actor_18" / "03-01-05-02-01-01-18.flac"


def assert_distribution(probs):
    assert probs is not None and list(probs) == list(EMOTIONS)
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-3)
    assert all(0 <= v <= 1 for v in probs.values())


def test_speech_video_uses_both_modalities(pipe):
    pred = pipe.predict(SPEECH_VIDEO)
    assert pred.modalities == ["audio", "face"]
    for probs in (pred.audio, pred.face, pred.fused):
        assert_distribution(probs)
    assert pred.face_coverage > 0.9
    assert pred.speech_present
    assert pred.label == max(pred.fused, key=pred.fused.get)
    assert pred.timings_s["total"] > 0
    json.dumps(pred.to_dict())  # JSON-ready


def test_progress_only_moves_forward_while_voice_and_face_read_side_by_side(pipe, tmp_path):
    clip = tmp_path / "twelve.mp4"  # three windows: the voice reports window by window while the face reads
    ffmpeg("-stream_loop", "-1", "-i", str(SPEECH_VIDEO), "-t", "12", "-c:v", "libx264", "-preset", "veryfast",
           "-c:a", "aac", str(clip))
    heard = []
    pred = pipe.predict(clip, explain=True, progress=lambda fraction, words: heard.append((fraction, words)))
    fractions = [f for f, _ in heard]
    assert fractions == sorted(fractions) and len(fractions) >= 5
    stages = {w.split(":")[0] for _, w in heard}
    assert {"Listening to the voice", "Following the face", "Weighing voice and face"} <= stages
    assert pred.modalities == ["audio", "face"] and len(pred.timeline) == 3


def test_silent_sound_track_gives_face_only(pipe):
    # The X_*_eamm clips carry an AAC track of pure digital silence (-91 dB): no voice to judge.
    pred = pipe.predict(MEAD / "X_sad_eamm.mp4")
    assert pred.modalities == ["face"]
    assert pred.audio is None and not pred.speech_present
    assert pred.face_coverage > 0.9
    assert any("silent" in w for w in pred.warnings)


def test_video_without_audio_gives_face_only_with_warning(pipe):
    pred = pipe.predict(MEAD / "W011_front_happy_level3_001.mp4")
    assert pred.modalities == ["face"] and pred.audio is None
    assert_distribution(pred.face)
    assert any("No sound track" in w for w in pred.warnings)
    assert "face only" in pred.verdict


def test_flac_gives_audio_only(pipe):
    pred = pipe.predict(FLAC)
    assert pred.modalities == ["audio"] and pred.face is None
    assert_distribution(pred.audio)
    assert pred.face_coverage == 0
    assert "voice only" in pred.verdict


def test_long_clip_has_a_timeline(pipe, tmp_path):
    long_clip = tmp_path / "long.mp4"
    ffmpeg("-stream_loop", "3", "-i", str(SPEECH_VIDEO), "-t", "14", "-vf", "scale=640:-2", "-c:v", "libx264",
           "-preset", "ultrafast", "-c:a", "aac", str(long_clip))
    pred = pipe.predict(long_clip, explain=True)
    from emotion.pipeline import split_windows

    expected = split_windows(pred.duration_s, pipe.cfg)
    assert len(pred.timeline) == len(expected) == 4
    for w, (a, b) in zip(pred.timeline, expected):
        assert (w.start_s, w.end_s) == pytest.approx((a, b), abs=1e-3)  # contiguous ~3.5 s windows
        assert_distribution(w.fused)
        assert w.label == max(w.fused, key=w.fused.get) and w.confidence == pytest.approx(max(w.fused.values()), abs=1e-3)
        assert w.speech_present and w.face_coverage > 0.9
    # the export rows (CLI, batch, app downloads): one per window, with the window's own numbers
    from emotion.result import timeline_rows

    rows = timeline_rows(str(long_clip), pred)
    assert [(r["start_s"], r["label"], r["fused_sad"]) for r in rows] == \
        [(w.start_s, w.label, w.fused["sad"]) for w in pred.timeline]
    # the explanation covers every window, not only the first
    e = pred.explanation
    assert e.face_times_s[0] < expected[0][1] and e.face_times_s[-1] > expected[-1][0]
    # the clip-level answer is the mean of the windows' held answers, held to the evidence of the branches' means
    # as each window's is, then calibrated as an answer once (each window's too)
    from emotion.fusion import answer_calibrated, held_to_evidence

    cfg = pipe.cfg
    readings = pipe.forward(pipe.preprocess(long_clip))
    audio, face = np.mean(readings.of("audio"), axis=0), np.mean(readings.of("face"), axis=0)
    held = held_to_evidence(np.mean(readings.fused, axis=0), audio, face, cfg.split_pool_weight)
    shown = answer_calibrated(held, audio, face, cfg.answer_temperature, cfg.answer_floor)
    assert [pred.fused[e] for e in EMOTIONS] == pytest.approx(list(shown), abs=2e-3)
    for w, p, a, f in zip(pred.timeline, readings.fused, readings.of("audio"), readings.of("face")):
        window = answer_calibrated(p, a, f, cfg.answer_temperature, cfg.answer_floor)
        assert [w.fused[e] for e in EMOTIONS] == pytest.approx(list(window), abs=2e-3)


def test_long_video_reads_one_face_frame_in_two(pipe, tmp_path, monkeypatch):
    from emotion.face import fast_pattern

    clip = tmp_path / "long_face.mp4"
    # a phone-like encode with B-frames; the clip loops every ~3.5 s, so windows start near a jump in the face
    ffmpeg("-stream_loop", "3", "-i", str(MEAD / "W009_front_happy_level3_001.mp4"), "-t", "14", "-c:v", "libx264",
           "-preset", "veryfast", "-bf", "3", str(clip))
    full = pipe.predict(clip)
    monkeypatch.setattr(pipe.cfg, "long_video_s", 10.0)  # so that this 14 s clip counts as long
    feats = pipe.preprocess(clip)
    read = fast_pattern(pipe.cfg.frames_per_window, 2)  # 1 in 2, and each window's first and last frames
    assert read.sum() < 0.7 * read.size
    assert all(np.array_equal(f.sampled, read) and f.coverage == 1.0 for f in feats.inputs["face"].windows)
    fast = pipe.predict(clip)
    assert fast.label == full.label == "happy"
    for a, b in zip(full.timeline, fast.timeline):
        assert max(abs(a.face[e] - b.face[e]) for e in EMOTIONS) < 0.1


def test_face_model_answers_a_window_the_same_alone_or_in_any_batch(pipe):
    # One traced graph serves every batch size (a long video's windows go through at once).
    feats = pipe.preprocess(MEAD / "W009_front_happy_level3_001.mp4")
    one = feats.inputs["face"].windows[0].sequence[None]
    noise = np.random.default_rng(0).uniform(0, 0.3, (36, *one.shape[1:])).astype(np.float32)
    batch = np.concatenate([noise[:17], one, noise[17:]])
    face = pipe.branches["face"].model
    alone, within = face.probabilities(one)[0], face.probabilities(batch)[17]
    assert alone.argmax() == EMOTIONS.index("happy")
    np.testing.assert_allclose(alone, within, atol=1e-5)


def test_mirrored_video_gives_the_same_face_answer(pipe, tmp_path):
    # Browsers mirror webcams; the face branch must not care (Left/Right blendshapes swap).
    mirrored = tmp_path / "mirrored.mp4"
    ffmpeg("-i", str(MEAD / "W009_front_angry_level3_001.mp4"), "-vf", "hflip", "-c:v", "libx264", "-crf", "12",
           str(mirrored))
    a = pipe.predict(MEAD / "W009_front_angry_level3_001.mp4").face
    b = pipe.predict(mirrored).face
    assert max(abs(a[e] - b[e]) for e in EMOTIONS) < 0.1


def test_bad_files_raise_one_clear_error(pipe, tmp_path):
    text = tmp_path / "clip.mp4"
    text.write_text("not a video")
    with pytest.raises(EmotionError) as err:
        pipe.predict(text)
    assert err.value.code == "not_media"


def test_without_face_model_a_video_is_judged_by_voice(monkeypatch):
    from emotion import EmotionPipeline

    monkeypatch.setenv("EMOTION_FACE_MODEL", str(ROOT / "no-such-face-model.task"))
    pipe = EmotionPipeline.from_pretrained(ROOT / "weights", warmup=False)
    assert pipe.branches["face"].landmarker is None and "does not exist" in pipe.problems["face"]
    pred = pipe.predict(SPEECH_VIDEO)
    assert pred.modalities == ["audio"]
    assert any("Face analysis is off" in w for w in pred.warnings)


def test_face_model_resolution_order(monkeypatch, tmp_path):
    import shutil

    from emotion.hub import resolve_face_model

    by_arg, by_env = tmp_path / "arg.task", tmp_path / "env.task"
    shutil.copy(FACE_MODEL, by_arg)
    shutil.copy(FACE_MODEL, by_env)
    monkeypatch.setenv("EMOTION_FACE_MODEL", str(by_env))
    assert resolve_face_model(by_arg) == by_arg  # the argument wins over the variable
    assert resolve_face_model() == by_env
    monkeypatch.setenv("EMOTION_FACE_MODEL", str(tmp_path / "missing.task"))
    with pytest.raises(EmotionError) as err:
        resolve_face_model()
    assert err.value.code == "no_face_model" and "missing.task" in str(err.value)


def test_face_model_download_offline_and_online(monkeypatch, tmp_path):
    import urllib.request

    from emotion import hub

    monkeypatch.delenv("EMOTION_FACE_MODEL")
    monkeypatch.setenv("EMOTION_CACHE", str(tmp_path / "cache"))

    def offline(*args, **kwargs):  # Google's server cannot be reached from here: its absence is the stand-in
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(EmotionError) as err:
        hub.resolve_face_model()
    assert err.value.code == "no_face_model" and "EMOTION_FACE_MODEL" in str(err.value)
    assert not (tmp_path / "cache" / "face_landmarker.task").exists()
    monkeypatch.undo()
    monkeypatch.delenv("EMOTION_FACE_MODEL", raising=False)
    monkeypatch.setenv("EMOTION_CACHE", str(tmp_path / "cache"))
    # the real download code, served from a local copy: checksum checked, file cached, reused without a download
    monkeypatch.setattr(hub, "FACE_MODEL_URL", FACE_MODEL.as_uri())
    got = hub.resolve_face_model()
    assert got == tmp_path / "cache" / "face_landmarker.task" and got.read_bytes() == FACE_MODEL.read_bytes()
    monkeypatch.setattr(hub, "FACE_MODEL_URL", "file:///nonexistent")
    assert hub.resolve_face_model() == got  # cached
    got.unlink()
    monkeypatch.setattr(hub, "FACE_MODEL_URL", (ROOT / "weights" / "config.json").as_uri())
    with pytest.raises(EmotionError) as err:
        hub.resolve_face_model()
    assert "checksum" in str(err.value) and not got.exists()


# -- media in memory: the same answer as from the file --------------------------------------------------------

def decoded(path, max_side: int = 640):
    """A clip as a notebook or a webcam stream would hold it: its sound (16 kHz), and every frame (RGB, shrunk as
    the file reader shrinks them) with its time."""
    import subprocess

    import cv2

    from emotion.media import ffmpeg_exe, load_audio, probe

    info = probe(path)
    side = f"min({max_side},max(iw,ih))"
    run = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:V:0", "-vf",
                          f"scale=w='max(2,2*trunc({side}*iw/max(iw,ih)/2))':h='max(2,2*trunc({side}*ih/max(iw,ih)/2))'"
                          ":flags=area", "-fps_mode", "passthrough", "-pix_fmt", "yuv420p", "-f", "rawvideo", "-"],
                         capture_output=True, check=True)
    w, h = (info.width, info.height) if max(info.width, info.height) <= max_side else \
        (2 * int(max_side * info.width / max(info.width, info.height) / 2),
         2 * int(max_side * info.height / max(info.width, info.height) / 2))
    size = w * h * 3 // 2
    yuv = np.frombuffer(run.stdout, np.uint8).reshape(-1, h * 3 // 2, w)
    frames = [cv2.cvtColor(f, cv2.COLOR_YUV2RGB_I420) for f in yuv]
    assert len(run.stdout) == size * len(frames)
    times = np.arange(len(frames)) / info.fps
    return load_audio(path, 16000) if info.has_audio else None, frames, times, info.duration_s


@pytest.mark.parametrize("clip", [SPEECH_VIDEO, MEAD / "W011_front_sad_level3_001.mp4", FLAC])
def test_the_same_clip_as_a_file_and_as_arrays_gives_the_same_answer(pipe, clip):
    from emotion import DecodedMedia

    if clip.suffix == ".flac":
        from emotion.media import load_audio

        media = DecodedMedia(wave=load_audio(clip, 16000), sample_rate=16000, name=clip.name)
    else:
        wave, frames, times, length = decoded(clip)
        media = DecodedMedia(wave, 16000, frames, times, name=clip.name, length_s=length)
    from_file, from_arrays = pipe.predict(clip).to_dict(), pipe.predict(media).to_dict()
    for key in ("file", "label", "verdict", "modalities", "warnings", "not_sure", "disagreement"):
        assert from_file[key] == from_arrays[key], key
    for branch in ("fused", "audio", "face"):
        if from_file[branch] is None:
            assert from_arrays[branch] is None
        else:
            assert from_arrays[branch] == pytest.approx(from_file[branch], abs=1e-6), branch
    assert from_arrays["duration_s"] == from_file["duration_s"]


def test_in_memory_media_is_checked_like_a_file(pipe):
    from emotion import DecodedMedia

    frame = np.zeros((64, 64, 3), np.uint8)
    cases = [(DecodedMedia(), "no_streams"),
             (DecodedMedia(frames=[frame, frame], times_s=[0.0]), "bad_input"),
             (DecodedMedia(frames=[frame, frame], times_s=[0.1, 0.05]), "bad_input"),
             (DecodedMedia(frames=[frame.astype(np.float32)], times_s=[0.0]), "bad_input"),
             (DecodedMedia(wave=np.zeros(16000 * 20, np.float32)), "too_long"),
             (DecodedMedia(wave=np.zeros(100, np.float32), sample_rate=254_000_003), "bad_audio")]
    for media, code in cases:
        with pytest.raises(EmotionError) as err:
            pipe.with_config(max_duration_s=10.0).predict(media)
        assert err.value.code == code, (media, err.value)


def test_answers_on_real_clips_are_those_of_the_reference(pipe):
    """Refactors change no answer: every shared MEAD clip and 20 RAVDESS files give the JSON kept in
    tests/data/reference_results.json (probabilities to 1e-6, verdicts, warnings, windows). After a deliberate
    change (new weights), `python tests/reference.py` rewrites it."""
    from reference import REFERENCE, answer, reference_clips

    expected = json.loads(REFERENCE.read_text())
    clips = reference_clips()
    assert len(clips) == len(expected) == 51
    for clip in clips:
        got, want = answer(pipe, clip), expected[f"{clip.parent.name}/{clip.name}"]
        assert got.keys() == want.keys(), clip.name
        for key in want:
            if key in ("fused", "audio", "face") and want[key] is not None:
                assert got[key] == pytest.approx(want[key], abs=1e-6), (clip.name, key)
            elif key != "timeline":
                assert got[key] == want[key], (clip.name, key)
        assert [(w["start_s"], w["label"], w["fused"]) for w in got["timeline"]] == \
            [(w["start_s"], w["label"], w["fused"]) for w in want["timeline"]], clip.name
