"""Voice branch: spectral features and the CNN that reads them (PyTorch), beside a prosody regression.

`voice_features` and `prosody_features` are the feature functions: training caches their output, inference
calls them live.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .calibration import log_softmax
from .config import PipelineConfig


def speech_level(wave: np.ndarray) -> float:
    """Loudness of the loudest 100 ms (RMS), to tell a silent track from one with sound."""
    if wave.size == 0:
        return 0.0
    frame = 1600
    n = max(1, wave.size // frame)
    rms = np.sqrt(np.mean(wave[: n * frame].reshape(n, -1) ** 2, axis=1)) if wave.size >= frame else \
        np.array([np.sqrt(np.mean(wave ** 2))])
    return float(rms.max())


@lru_cache(maxsize=1)
def _vad_model():
    """Silero VAD as its whole-sequence ONNX export (shipped inside the wheel: nothing is downloaded), run by
    onnxruntime in one call per clip: the same speech as the per-chunk TorchScript model, ~10× faster."""
    from importlib.resources import files

    from silero_vad import SileroVADSequence

    return SileroVADSequence(str(files("silero_vad") / "data" / "silero_vad_16k_sequence.onnx"))


def speech_segments(wave: np.ndarray, cfg: PipelineConfig) -> list[tuple[int, int]]:
    """(start, end) samples where Silero VAD hears speech. Tones, music and noise are loud but not speech,
    which a loudness threshold cannot tell."""
    from silero_vad import get_speech_timestamps_sequence

    if wave.size < 512:
        return []
    found = get_speech_timestamps_sequence(np.ascontiguousarray(wave, dtype=np.float32), _vad_model(),
                                           sampling_rate=cfg.sample_rate, threshold=cfg.vad_threshold,
                                           min_speech_duration_ms=int(cfg.min_speech_s * 1000))
    return [(int(s["start"]), int(s["end"])) for s in found]


def enough_speech(segments: list[tuple[int, int]], cfg: PipelineConfig) -> bool:
    """At least `cfg.min_speech_s` of speech in these segments."""
    return sum(b - a for a, b in segments) >= cfg.min_speech_s * cfg.sample_rate


def has_speech(wave: np.ndarray, cfg: PipelineConfig) -> bool:
    return enough_speech(speech_segments(wave, cfg), cfg)


def speech_only(wave: np.ndarray, cfg: PipelineConfig) -> np.ndarray | None:
    """The speech of `wave`, its pauses and surroundings cut out; None when there is too little speech."""
    segments = speech_segments(wave, cfg)
    return np.concatenate([wave[a:b] for a, b in segments]) if enough_speech(segments, cfg) else None


def trim_silence(wave: np.ndarray, cfg: PipelineConfig) -> np.ndarray:
    """Leading and trailing silence cut by loudness (the branch's first recipe, kept for old weights)."""
    import librosa

    if wave.size > cfg.n_fft:
        trimmed, _ = librosa.effects.trim(wave, top_db=cfg.trim_top_db, frame_length=cfg.n_fft,
                                          hop_length=cfg.hop_length)
        if trimmed.size >= cfg.sample_rate // 10:
            return trimmed
    return wave


def centre_crop(wave: np.ndarray, n: int) -> np.ndarray:
    if wave.size <= n:
        return wave
    start = (wave.size - n) // 2
    return wave[start:start + n]


def spectral_features(wave: np.ndarray, cfg: PipelineConfig) -> np.ndarray:
    """MFCCs, or log-mel energies with their deltas stacked below them (rows × frames, float32)."""
    import librosa

    if cfg.voice_features == "mfcc":
        return librosa.feature.mfcc(y=wave, sr=cfg.sample_rate, n_mfcc=cfg.n_mfcc, n_fft=cfg.n_fft,
                                    hop_length=cfg.hop_length, n_mels=cfg.n_mels).astype(np.float32)
    mel = librosa.feature.melspectrogram(y=wave, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                                         n_mels=cfg.n_mels)
    logmel = librosa.power_to_db(mel, ref=1.0, top_db=None)
    width = min(9, logmel.shape[1] - (1 - logmel.shape[1] % 2))  # deltas need an odd width up to the length
    if width < 3:
        return np.concatenate([logmel, np.zeros_like(logmel), np.zeros_like(logmel)]).astype(np.float32)
    d1 = librosa.feature.delta(logmel, width=width)
    d2 = librosa.feature.delta(logmel, width=width, order=2)
    return np.concatenate([logmel, d1, d2]).astype(np.float32)


def utterance(wave: np.ndarray, cfg: PipelineConfig) -> np.ndarray | None:
    """The part of `wave` the voice is read from: its speech (`cfg.voice_vad`) or the sound with its leading
    and trailing silence trimmed by loudness."""
    return speech_only(wave, cfg) if cfg.voice_vad else trim_silence(wave, cfg)


def _functionals(v: np.ndarray) -> list[float]:
    """Mean, sd, 10th/50th/90th percentiles and the 10–90 range (zeros when nothing was measured)."""
    v = v[np.isfinite(v)]
    if v.size == 0:
        return [0.0] * 6
    p10, p50, p90 = np.percentile(v, [10, 50, 90])
    return [float(v.mean()), float(v.std()), float(p10), float(p50), float(p90), float(p90 - p10)]


def prosody_size(cfg: PipelineConfig) -> int:
    return 2 * cfg.n_mels + 4 * 6 + 2 + 5


def prosody_features(wave: np.ndarray, cfg: PipelineConfig) -> np.ndarray:
    """What the utterance normalisation takes out of the CNN's input, and the pitch, as one vector: each mel
    band's mean and sd in dB (loudness, spectral tilt, breathiness); functionals of the frame energy, the pitch
    (YIN, 60–800 Hz: shouting reaches 600; semitones re 100 Hz, on the louder 60% of frames), its frame-to-frame
    change and the zero-crossing rate; the utterance's length (s) and share of loud frames. Cheap: one mel
    spectrogram and one YIN pass."""
    import librosa

    wave = np.asarray(wave, dtype=np.float32)
    speech = utterance(wave, cfg)
    speech = wave if speech is None or speech.size < cfg.n_fft else speech
    speech = np.pad(speech, (0, max(0, cfg.sample_rate // 10 - speech.size)))  # at least 0.1 s: YIN's frame and more
    mel = librosa.feature.melspectrogram(y=speech, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                                         n_mels=cfg.n_mels)
    db = librosa.power_to_db(mel, ref=1.0, top_db=None)
    energy = 10 * np.log10(mel.mean(axis=0) + 1e-10)
    f0 = librosa.yin(speech, fmin=60, fmax=800, sr=cfg.sample_rate, frame_length=1024, hop_length=cfg.hop_length)
    n = min(f0.size, energy.size)
    loud = energy[:n] > np.percentile(energy[:n], 40)
    pitch = 12 * np.log2(f0[:n][loud] / 100.0)
    zcr = librosa.feature.zero_crossing_rate(speech, frame_length=cfg.n_fft, hop_length=cfg.hop_length)[0]
    parts = [db.mean(axis=1), db.std(axis=1), _functionals(energy), _functionals(pitch),
             _functionals(np.abs(np.diff(pitch))), _functionals(zcr), [speech.size / cfg.sample_rate, loud.mean()],
             _rhythm(loud, energy[:n], cfg.sample_rate / cfg.hop_length)]
    return np.concatenate(parts).astype(np.float32)


def _rhythm(loud: np.ndarray, energy: np.ndarray, fps: float) -> list[float]:
    """Tempo: loud stretches per second, their mean and sd length (s), the mean pause between them (s), and
    energy peaks (syllable-like) per second."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], loud.astype(np.int8), [0]])))
    runs = (edges[1::2] - edges[::2]) / fps
    pauses = (edges[2::2] - edges[1:-1:2]) / fps if len(edges) > 2 else np.zeros(1)
    k = min(5, energy.size)
    smooth = np.convolve(energy, np.ones(k) / k, mode="same")[:energy.size]
    peaks = np.sum((smooth[1:-1] > smooth[:-2]) & (smooth[1:-1] >= smooth[2:]) & loud[1:-1])
    seconds = max(loud.size / fps, 1e-3)
    return [runs.size / seconds, float(runs.mean()) if runs.size else 0.0, float(runs.std()) if runs.size else 0.0,
            float(pauses.mean()), float(peaks) / seconds]


def voice_features(wave: np.ndarray, cfg: PipelineConfig, gate: bool = True) -> np.ndarray | None:
    """The CNN's input (rows × a fixed number of frames) for a piece of sound; None when it holds no speech.

    Silent sound has no voice. With `cfg.vad_gate` (and `gate`), neither has sound in which the voice-activity
    detector finds no speech: a tone, music, noise. Training passes gate=False: its clips are known to be
    speech, and the gate must not decide what the model learns from.
    `cfg.voice_vad`: keep only what the voice-activity detector calls speech (else trim silence by loudness).
    `cfg.voice_norm` "utterance": every row standardised over this utterance's speech frames, which takes out
    much of the speaker and the microphone; the padding is then zeros, the utterance's mean.
    """
    wave = np.asarray(wave, dtype=np.float32)
    if speech_level(wave) < cfg.min_speech_rms:
        return None
    if not cfg.voice_vad and gate and cfg.vad_gate and not has_speech(wave, cfg):
        return None
    wave = utterance(wave, cfg)
    if wave is None:
        return None
    n = cfg.audio_window_samples
    wave = centre_crop(wave, n)
    if cfg.voice_norm != "utterance":  # the first recipe: pad the sound with silence
        pad = n - wave.size
        return spectral_features(np.pad(wave, (pad // 2, pad - pad // 2)), cfg)
    feats = spectral_features(wave, cfg)
    feats = (feats - feats.mean(axis=1, keepdims=True)) / (feats.std(axis=1, keepdims=True) + 1e-3)
    frames = cfg.voice_frames
    pad = max(0, frames - feats.shape[1])
    return np.pad(feats[:, :frames], ((0, 0), (pad // 2, pad - pad // 2))).astype(np.float32)


def window_features(wave: np.ndarray, windows: list[tuple[float, float]], cfg: PipelineConfig,
                    with_prosody: bool) -> tuple[list[np.ndarray | None], list[np.ndarray | None] | None]:
    """The voice branch's input for each window of a clip: its features (None where it holds no speech) and,
    `with_prosody`, the prosody vector of each window with speech (else None for the list)."""
    features: list[np.ndarray | None] = [None] * len(windows)
    prosody: list[np.ndarray | None] | None = [None] * len(windows) if with_prosody else None
    for i, (a, b) in enumerate(windows):
        piece = wave[int(a * cfg.sample_rate): int(b * cfg.sample_rate)]
        features[i] = voice_features(piece, cfg)
        if prosody is not None and features[i] is not None:
            prosody[i] = prosody_features(piece, cfg)
    return features, prosody


class AudioCNN(nn.Module):
    """4 blocks of conv → batch-norm → ReLU → max-pool, then fully connected layers with dropout."""

    def __init__(self, n_classes: int, channels: tuple[int, ...] = (16, 32, 64, 128),
                 hidden: int = 128, dropout: float = 0.4, in_channels: int = 1) -> None:
        super().__init__()
        self.in_channels = in_channels
        blocks: list[nn.Module] = []
        c_in = in_channels
        for c_out in channels:
            blocks += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2)]
            c_in = c_out
        self.features = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d((2, 4)))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(c_in * 8, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits; x is (batch, rows, frames), already normalised. With 3 input channels the rows are log-mel,
        deltas and delta-deltas stacked (emotion.audio.spectral_features), seen as 3 planes of one image."""
        return self.classifier(self.features(x.reshape(x.shape[0], self.in_channels, -1, x.shape[-1])))


def normalise(mfcc: np.ndarray, cfg: PipelineConfig) -> np.ndarray:
    """Standardise each coefficient with the training set's mean and std (stored in the config)."""
    mean = np.asarray(cfg.mfcc_mean, dtype=np.float32)[:, None]
    std = np.asarray(cfg.mfcc_std, dtype=np.float32)[:, None]
    return (mfcc - mean) / std


@dataclass
class ProsodyHead:
    """A logistic regression on standardised `prosody_features`. Its log-probabilities, times `weight`, are
    added to the CNNs' logits (a product of the two experts): it hears the speaker's loudness, tilt and pitch
    level, which the CNN's per-utterance normalisation hides from it."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray  # (classes, features)
    intercept: np.ndarray  # (classes,)
    weight: float

    def log_probs(self, x: np.ndarray) -> np.ndarray:
        return log_softmax(((np.asarray(x, np.float32) - self.mean) / self.scale) @ self.coef.T + self.intercept)


class AudioModel:
    """One or more CNNs (an ensemble of seeds) that turn spectral features into six probabilities, and the
    prosody regression beside them when the weights have one."""

    def __init__(self, nets: list[AudioCNN], cfg: PipelineConfig, prosody: ProsodyHead | None = None) -> None:
        self.nets = [n.eval() for n in nets]
        self.cfg = cfg
        self.prosody = prosody

    def logits(self, mfccs: np.ndarray, prosody: np.ndarray | None = None, chunk: int = 16) -> np.ndarray:
        """Mean logits of the ensemble for a batch (batch, rows, frames) of voice features, plus the prosody
        regression's weighted log-probabilities when it exists and `prosody` (batch, prosody_size) is given.

        Runs `chunk` windows at a time, so a long video's memory does not grow with its length.
        """
        out = []
        for s in range(0, len(mfccs), chunk):
            x = torch.from_numpy(normalise(np.asarray(mfccs[s:s + chunk], dtype=np.float32), self.cfg))
            with torch.inference_mode():
                out.append(torch.stack([n(x) for n in self.nets]).mean(0).numpy())
        logits = np.concatenate(out) if out else np.zeros((0, len(self.cfg.emotions)), np.float32)
        if self.prosody is not None and prosody is not None and len(logits):
            logits = logits + self.prosody.weight * self.prosody.log_probs(prosody)
        return logits

    def save(self, path: str) -> None:
        from safetensors.torch import save_file

        tensors = {f"net{i}.{k}": v.contiguous() for i, n in enumerate(self.nets) for k, v in n.state_dict().items()}
        metadata = {"n_nets": str(len(self.nets))}
        if self.prosody is not None:
            for name in ("mean", "scale", "coef", "intercept"):
                tensors[f"prosody.{name}"] = torch.from_numpy(np.ascontiguousarray(getattr(self.prosody, name),
                                                                                   dtype=np.float32))
            metadata["prosody_weight"] = repr(float(self.prosody.weight))
        save_file(tensors, path, metadata=metadata)

    @classmethod
    def load(cls, path: str, cfg: PipelineConfig) -> "AudioModel":
        from safetensors import safe_open
        from safetensors.torch import load_file

        with safe_open(path, "pt") as f:
            metadata = f.metadata()
        n_nets = int(metadata["n_nets"])
        tensors = load_file(path)
        prosody = None
        if "prosody_weight" in metadata:
            prosody = ProsodyHead(*(tensors[f"prosody.{n}"].numpy() for n in ("mean", "scale", "coef", "intercept")),
                                  weight=float(metadata["prosody_weight"]))
        nets = []
        for i in range(n_nets):
            net = AudioCNN(n_classes=len(cfg.emotions), in_channels=cfg.voice_channels)
            prefix = f"net{i}."
            net.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
            nets.append(net)
        return cls(nets, cfg, prosody)


def no_sound_note(media) -> str:
    """What any voice branch says of media without sound."""
    return "No sound track — the result comes from the face only." if media.has_video else "The file has no sound."


def voice_input(windows: list, media, cfg: PipelineConfig):
    """A voice branch's reading from its per-window inputs (None where a window holds no speech), with the note
    that says why there is no voice when no window has speech (any voice branch)."""
    from .branches import BranchInput

    usable = [i for i, w in enumerate(windows) if w is not None]
    notes = []
    if windows and not usable:
        silent = speech_level(media.wave) < cfg.min_speech_rms
        if media.has_video:
            notes.append("The sound track is silent — the result comes from the face only." if silent
                         else "No speech found in the sound track (music, noise or a tone?) — the result comes "
                              "from the face only.")
        else:
            notes.append("The sound is silent: there is no voice to judge." if silent else
                         "No speech found in the sound (music, noise or a tone?): there is no voice to judge.")
    return BranchInput(windows, usable, [float(w is not None) for w in windows], notes)


@dataclass
class VoiceWindow:
    """The voice branch's input for one window with speech: its spectral features and, when the model has a
    prosody regression, its prosody vector."""

    features: np.ndarray  # (rows, frames)
    prosody: np.ndarray | None = None


class VoiceBranch:
    """The voice as a branch (emotion.branches): speech per window → features → the CNN ensemble (+ prosody)."""

    role = "audio"
    weights_file = "audio_cnn.safetensors"
    problem = None

    def __init__(self, model: AudioModel) -> None:
        self.model = model

    def read(self, media, windows: list[tuple[float, float]], cfg: PipelineConfig):
        from .branches import BranchInput

        if media.wave is None:
            return BranchInput.empty(len(windows), [no_sound_note(media)])
        feats, prosody = window_features(media.wave, windows, cfg, with_prosody=self.model.prosody is not None)
        out = [None if f is None else VoiceWindow(f, None if prosody is None else prosody[i])
               for i, f in enumerate(feats)]
        return voice_input(out, media, cfg)

    def logits(self, inputs: list[VoiceWindow]) -> np.ndarray:
        with_prosody = self.model.prosody is not None and all(w.prosody is not None for w in inputs)
        return self.model.logits(np.stack([w.features for w in inputs]),
                                 np.stack([w.prosody for w in inputs]) if with_prosody else None)

    def warmup(self, cfg: PipelineConfig) -> np.ndarray:
        tone = (0.1 * np.sin(np.arange(cfg.sample_rate) * 0.3)).astype(np.float32)
        voice_features(tone, cfg, gate=False)  # compiles librosa's code
        prosody = prosody_features(tone, cfg)[None] if self.model.prosody is not None else None
        if cfg.vad_gate or cfg.voice_vad:
            speech_segments(tone, cfg)  # loads the voice-activity detector
        return self.model.logits(np.zeros((1, cfg.voice_rows, cfg.voice_frames), np.float32), prosody)

    def save(self, folder) -> None:
        self.model.save(str(Path(folder) / self.weights_file))

    @classmethod
    def load(cls, folder, cfg: PipelineConfig, **options) -> "VoiceBranch":
        from .branches import load_checked

        return cls(load_checked(Path(folder) / cls.weights_file, lambda p: AudioModel.load(p, cfg), len(cfg.emotions)))
