"""Degrade a voice clip the way a new user's recording is degraded, without changing its emotion.

RAVDESS is 24 actors in one quiet studio with one microphone; a visitor's clip has another voice, another
microphone, a room and noise. Each function does one of those to a 16 kHz mono float32 wave and keeps the
sample rate; all but `speed` keep the length. `random_degradation` chains a random few (train.features
caches its output as the "audio_aug" branch).
"""

from __future__ import annotations

import numpy as np

SPEED_RANGE = (0.9, 1.1)
PITCH_SEMITONES = 2.0
SNR_DB_RANGE = (5.0, 30.0)
RT60_RANGE_S = (0.2, 0.8)
GAIN_DB_RANGE = (-12.0, 6.0)
BANDS_HZ = {"telephone": (300.0, 3400.0), "laptop": (200.0, 7000.0)}


def speed(wave: np.ndarray, sr: int, rate: float) -> np.ndarray:
    """Play `rate` times faster (tempo and pitch together, like a tape): the length becomes len/rate."""
    import librosa

    return librosa.resample(wave, orig_sr=sr, target_sr=int(round(sr / rate)), res_type="soxr_mq").astype(np.float32)


def pitch_shift(wave: np.ndarray, sr: int, semitones: float) -> np.ndarray:
    """Move the voice up or down by `semitones`, same length and tempo."""
    import librosa

    return librosa.effects.pitch_shift(wave, sr=sr, n_steps=semitones, res_type="soxr_mq").astype(np.float32)


def coloured_noise(n: int, rng: np.random.Generator, colour: str) -> np.ndarray:
    """White, pink (1/f) or brown (1/f²) noise with unit RMS: fans, traffic, room hum."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.fft.rfftfreq(n), 1.0 / n)
    spectrum *= {"white": 1.0, "pink": 1.0 / np.sqrt(f), "brown": 1.0 / f}[colour]
    noise = np.fft.irfft(spectrum, n)
    return (noise / (np.sqrt(np.mean(noise ** 2)) + 1e-12)).astype(np.float32)


def add_noise(wave: np.ndarray, snr_db: float, rng: np.random.Generator, colour: str = "white") -> np.ndarray:
    """Noise at `snr_db` below the speech's loudness (RMS of the louder half of the frames, so pauses do not
    count as speech)."""
    frames = wave[: wave.size // 400 * 400].reshape(-1, 400) if wave.size >= 400 else wave[None]
    rms = np.sqrt(np.mean(frames ** 2, axis=1))
    level = float(np.sqrt(np.mean(np.sort(rms)[len(rms) // 2:] ** 2))) or 1e-4
    return (wave + coloured_noise(wave.size, rng, colour) * level * 10 ** (-snr_db / 20)).astype(np.float32)


def reverb(wave: np.ndarray, sr: int, rt60_s: float, rng: np.random.Generator) -> np.ndarray:
    """A synthetic room: the direct sound, then exponentially decaying noise reaching -60 dB after `rt60_s`."""
    from scipy.signal import fftconvolve

    t = np.arange(int(rt60_s * sr)) / sr
    rir = rng.standard_normal(t.size) * np.exp(-6.9 * t / rt60_s) * 0.3
    rir[0] = 1.0
    wet = fftconvolve(wave, rir)[: wave.size]
    return (wet * np.sqrt(np.mean(wave ** 2) / (np.mean(wet ** 2) + 1e-12))).astype(np.float32)


def gain(wave: np.ndarray, db: float) -> np.ndarray:
    """Louder or quieter, clipped like a real converter."""
    return np.clip(wave * 10 ** (db / 20), -1.0, 1.0).astype(np.float32)


def band_limit(wave: np.ndarray, sr: int, low_hz: float, high_hz: float) -> np.ndarray:
    """Only `low_hz`–`high_hz` passes: a telephone line, a laptop microphone."""
    from scipy.signal import butter, sosfilt

    sos = butter(4, [low_hz, min(high_hz, sr / 2 * 0.95)], btype="band", fs=sr, output="sos")
    return sosfilt(sos, wave).astype(np.float32)


def random_degradation(wave: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A random chain: speed or pitch (the voice), then room, microphone band, noise and level (the channel).
    At least one step is always applied."""
    out = np.asarray(wave, dtype=np.float32)
    steps = rng.random(5) < (0.5, 0.4, 0.3, 0.6, 0.5)
    if not steps.any():
        steps[rng.integers(5)] = True
    if steps[0]:
        if rng.random() < 0.5:
            out = speed(out, sr, float(rng.uniform(*SPEED_RANGE)))
        else:
            out = pitch_shift(out, sr, float(rng.uniform(-PITCH_SEMITONES, PITCH_SEMITONES)))
    if steps[1]:
        out = reverb(out, sr, float(rng.uniform(*RT60_RANGE_S)), rng)
    if steps[2]:
        out = band_limit(out, sr, *BANDS_HZ[str(rng.choice(list(BANDS_HZ)))])
    if steps[3]:
        out = add_noise(out, float(rng.uniform(*SNR_DB_RANGE)), rng, str(rng.choice(["white", "pink", "brown"])))
    if steps[4]:
        out = gain(out, float(rng.uniform(*GAIN_DB_RANGE)))
    return out
