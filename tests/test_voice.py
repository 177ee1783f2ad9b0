"""The voice branch's inputs: degradations used for training (on real RAVDESS speech), the voice-activity
detector that tells speech from tones, noise and music, and the per-utterance normalisation."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

from conftest import MEAD, RAVDESS, ffmpeg

SR = 16000
SPEECH = RAVDESS / "Actor_02" / "03-01-05-02-01-01-02.flac"  # angry, strong intensity


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    wave, sr = sf.read(SPEECH, dtype="float32")
    assert sr == SR
    return wave


def band_energy_db(wave: np.ndarray, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(wave)) ** 2
    f = np.fft.rfftfreq(wave.size, 1 / SR)
    return float(10 * np.log10(spectrum[(f >= low) & (f < high)].sum() + 1e-12))


def median_f0(wave: np.ndarray) -> float:
    import librosa

    f0, voiced, _ = librosa.pyin(wave, fmin=60, fmax=500, sr=SR)
    return float(np.nanmedian(f0[voiced]))


def synthetic_sounds(seconds: float = 4.0) -> dict[str, np.ndarray]:
    """Loud sounds that are not speech: a tone, a beeping alarm, a siren, white noise, and music-like notes
    with harmonics and drum hits."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SR)) / SR
    music = np.zeros_like(t)
    for i, f in enumerate([261.6, 329.6, 392.0, 523.3, 392.0, 329.6, 293.7, 349.2] * 2):
        s, n = int(i * 0.25 * SR), int(0.25 * SR)
        tt = np.arange(min(n, t.size - s)) / SR
        music[s:s + tt.size] += sum(0.2 / k * np.sin(2 * np.pi * f * k * tt) for k in range(1, 6)) * np.exp(-3 * tt)
    for i in range(int(seconds * 2)):
        s, n = int(i * 0.5 * SR), int(0.05 * SR)
        music[s:s + n] += 0.3 * rng.standard_normal(n) * np.exp(-np.arange(n) / 200)
    return {k: v.astype(np.float32) for k, v in {
        "tone": 0.3 * np.sin(2 * np.pi * 440 * t),
        "beeps": np.where(t % 1 < 0.3, 0.3 * np.sin(2 * np.pi * 1000 * t), 0.0),
        "siren": 0.3 * np.sin(2 * np.pi * (600 + 200 * np.sin(2 * np.pi * t)) * t),
        "noise": 0.1 * rng.standard_normal(t.size),
        "music": music,
    }.items()}


# -- degradations -------------------------------------------------------------------------------------------

def test_speed_changes_length_and_pitch_together(speech):
    from train.augment import speed

    fast = speed(speech, SR, 1.1)
    assert fast.dtype == np.float32 and abs(fast.size - speech.size / 1.1) < 0.002 * speech.size
    assert median_f0(fast) / median_f0(speech) == pytest.approx(1.1, abs=0.04)


def test_pitch_shift_keeps_length_and_moves_the_voice(speech):
    from train.augment import pitch_shift

    up = pitch_shift(speech, SR, 2.0)
    assert up.size == speech.size and up.dtype == np.float32
    assert median_f0(up) / median_f0(speech) == pytest.approx(2 ** (2 / 12), abs=0.04)


def test_noise_lands_at_the_asked_snr(speech):
    from train.augment import add_noise

    for snr in (5.0, 20.0):
        noisy = add_noise(speech, snr, np.random.default_rng(1), "pink")
        assert noisy.size == speech.size and noisy.dtype == np.float32
        noise = noisy - speech
        frames = speech[: speech.size // 400 * 400].reshape(-1, 400)
        rms = np.sqrt(np.mean(frames ** 2, axis=1))
        level = np.sqrt(np.mean(np.sort(rms)[len(rms) // 2:] ** 2))
        assert 20 * np.log10(level / np.sqrt(np.mean(noise ** 2))) == pytest.approx(snr, abs=0.5)


def test_reverb_keeps_length_and_level_and_smears_in_time(speech):
    from train.augment import reverb

    wet = reverb(speech, SR, 0.6, np.random.default_rng(2))
    assert wet.size == speech.size and wet.dtype == np.float32
    assert np.sqrt(np.mean(wet ** 2)) == pytest.approx(np.sqrt(np.mean(speech ** 2)), rel=0.01)
    # a room fills the short pauses between syllables: the quietest frames get louder relative to the loudest
    spread = lambda w: np.percentile(np.abs(w), 99) / (np.percentile(np.abs(w[SR // 2:-SR // 2]), 20) + 1e-9)
    assert spread(wet) < spread(speech) / 2


def test_band_limit_removes_what_a_telephone_does_not_carry(speech):
    from train.augment import band_limit

    phone = band_limit(speech, SR, 300, 3400)
    assert phone.size == speech.size
    drop = lambda lo, hi: band_energy_db(speech, lo, hi) - band_energy_db(phone, lo, hi)
    assert drop(5000, 8000) > 20 and drop(0, 150) > 20 and abs(drop(800, 2500)) < 1.5


def test_gain_scales_and_clips(speech):
    from train.augment import gain

    quiet = gain(speech, -12)
    assert np.sqrt(np.mean(quiet ** 2)) / np.sqrt(np.mean(speech ** 2)) == pytest.approx(10 ** (-12 / 20), rel=1e-3)
    assert np.abs(gain(speech, 40)).max() <= 1.0


def test_random_degradation_always_changes_something(speech):
    from train.augment import random_degradation

    rng = np.random.default_rng(3)
    for _ in range(4):
        out = random_degradation(speech, SR, rng)
        assert out.dtype == np.float32 and 0.85 * speech.size < out.size < 1.15 * speech.size
        assert out.size != speech.size or not np.allclose(out, speech, atol=1e-4)


# -- speech or not --------------------------------------------------------------------------------------------

def test_vad_finds_speech_in_real_speech_and_none_in_tones_noise_and_music(speech):
    from emotion.audio import speech_segments, voice_features
    from emotion.config import PipelineConfig

    cfg = PipelineConfig()  # the gate is on by default
    segments = speech_segments(speech, cfg)
    assert segments and 0.8 < sum(b - a for a, b in segments) / SR < speech.size / SR
    assert voice_features(speech, cfg) is not None
    assert voice_features(speech, replace(cfg, voice_vad=True)) is not None  # reading only the speech works too
    for name, sound in synthetic_sounds().items():
        assert speech_segments(sound, cfg) == [], name
        assert voice_features(sound, cfg) is None, name
        assert voice_features(sound, replace(cfg, voice_vad=True)) is None, name
        # the loudness rule alone would have taken each of them for a voice
        assert voice_features(sound, replace(cfg, vad_gate=False)) is not None, name
        assert voice_features(sound, cfg, gate=False) is not None, name  # training's call: no gate


def test_a_tone_file_gives_no_speech_with_a_clear_warning(pipe, tmp_path):
    tone = tmp_path / "tone.wav"
    sf.write(tone, synthetic_sounds()["tone"], SR)
    pred = pipe.with_config(vad_gate=True).predict(tone)
    assert pred.audio is None and not pred.speech_present and pred.label is None
    assert any(w.startswith("No speech found") for w in pred.warnings), pred.warnings


def test_a_video_with_music_for_sound_is_judged_by_the_face_only(pipe, tmp_path):
    music = tmp_path / "music.wav"
    sf.write(music, synthetic_sounds()["music"], SR)
    clip = tmp_path / "face_and_music.mp4"
    ffmpeg("-i", str(MEAD / "M030_front_happy_level3_001.mp4"), "-i", str(music), "-map", "0:v", "-map", "1:a",
           "-c:v", "copy", "-c:a", "aac", "-shortest", str(clip))
    pred = pipe.with_config(vad_gate=True).predict(clip)
    assert pred.modalities == ["face"] and not pred.speech_present
    assert any("No speech found in the sound track" in w for w in pred.warnings), pred.warnings


# -- normalisation ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["mfcc", "logmel"])
def test_utterance_normalisation_takes_out_the_level_and_fills_a_fixed_window(speech, kind):
    from emotion.audio import voice_features
    from emotion.config import PipelineConfig

    cfg = replace(PipelineConfig(), voice_features=kind, voice_norm="utterance")
    loud, quiet = voice_features(speech, cfg), voice_features(speech * 0.1, cfg)
    assert loud.shape == (cfg.voice_rows, 1 + cfg.audio_window_samples // cfg.hop_length) == quiet.shape
    assert np.abs(loud - quiet).mean() < 0.05
    # with the training set's statistics instead, a quieter microphone is another input
    glob = replace(cfg, voice_norm="global")
    assert np.abs(voice_features(speech, glob) - voice_features(speech * 0.1, glob)).mean() > 1.0


# -- prosody beside the CNN -------------------------------------------------------------------------------------

def test_prosody_hears_level_and_pitch_that_the_normalised_cnn_input_hides(speech):
    from emotion.audio import prosody_features, prosody_size
    from emotion.config import PipelineConfig
    from train.augment import pitch_shift

    cfg = PipelineConfig()
    n = cfg.n_mels
    pitch_p50 = 2 * n + 6 + 3  # band means, band sds, energy functionals, then pitch (mean, sd, p10, p50 ...)
    base = prosody_features(speech, cfg)
    assert base.shape == (prosody_size(cfg),) and base.dtype == np.float32 and np.isfinite(base).all()
    quiet = prosody_features(speech * 0.1, cfg)
    assert np.allclose(quiet[:n] - base[:n], -20.0, atol=0.5)  # a microphone 20 dB quieter: every band level
    assert abs(quiet[pitch_p50] - base[pitch_p50]) < 0.5  # the pitch does not move
    higher = prosody_features(pitch_shift(speech, SR, 4.0), cfg)
    assert 2.5 < higher[pitch_p50] - base[pitch_p50] < 5.5  # four semitones up, heard as such
    assert 1.0 < base[-7] < speech.size / SR  # the utterance's length, its silence trimmed
    for tiny in (np.zeros(0, np.float32), speech[:10], speech[:600], np.zeros(SR, np.float32)):
        out = prosody_features(tiny, cfg)  # empty, a few samples, silence: a vector, never an error or NaN
        assert out.shape == base.shape and np.isfinite(out).all()


def test_the_prosody_regression_is_saved_with_the_cnns_and_moves_the_answer(tmp_path):
    import soundfile

    from emotion.audio import AudioCNN, AudioModel, prosody_features, voice_features
    from emotion.config import PipelineConfig
    from train.fit_audio import fit_prosody_head

    cfg = PipelineConfig(voice_features="logmel", voice_norm="utterance")
    cfg.mfcc_mean, cfg.mfcc_std = [0.0] * cfg.voice_rows, [1.0] * cfg.voice_rows
    clips = sorted(RAVDESS.glob("Actor_0[1-4]/03-01-0[35]-*.flac"))  # happy and angry, four actors
    waves = [soundfile.read(c, dtype="float32")[0] for c in clips]
    y = np.array([0 if c.name.split("-")[2] == "03" else 2 for c in clips])
    x = np.stack([prosody_features(w, cfg) for w in waves])
    head = fit_prosody_head(x, y, 0.7, len(cfg.emotions))
    assert np.mean(head.log_probs(x).argmax(1) == y) > 0.8  # it learns from the vectors it is given
    model = AudioModel([AudioCNN(n_classes=len(cfg.emotions), in_channels=cfg.voice_channels)], cfg, head)
    feats = np.stack([voice_features(w, cfg) for w in waves[:4]])
    path = tmp_path / "audio_cnn.safetensors"
    model.save(str(path))
    loaded = AudioModel.load(str(path), cfg)
    assert loaded.prosody is not None and loaded.prosody.weight == pytest.approx(0.7)
    assert np.allclose(loaded.logits(feats, x[:4]), model.logits(feats, x[:4]), atol=1e-5)
    cnn_only = loaded.logits(feats)  # without prosody vectors: the CNNs alone
    assert np.allclose(loaded.logits(feats, x[:4]) - cnn_only, 0.7 * head.log_probs(x[:4]), atol=1e-4)



def test_the_cnn_voice_reads_prosody_on_a_real_clip(six_pipe):
    # the log-mel CNN voice (shipped until 2026-12, still a branch a config can name)
    assert six_pipe.branches["audio"].model.prosody is not None, "those weights have no prosody regression"
    feats = six_pipe.preprocess(SPEECH)
    assert feats.inputs["audio"].windows[0].prosody is not None
    pred = six_pipe.predict(SPEECH)
    assert pred.audio is not None and pred.label is not None
