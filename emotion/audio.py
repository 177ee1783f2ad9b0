"""Voice branch: MFCC features and the CNN that reads them (PyTorch).

`mfcc_features` is the one feature function: training caches its output, inference calls it live.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .config import PipelineConfig


def speech_level(wave: np.ndarray) -> float:
    """Loudness of the loudest 100 ms (RMS), to tell speech from silence."""
    if wave.size == 0:
        return 0.0
    frame = 1600
    n = max(1, wave.size // frame)
    rms = np.sqrt(np.mean(wave[: n * frame].reshape(n, -1) ** 2, axis=1)) if wave.size >= frame else \
        np.array([np.sqrt(np.mean(wave ** 2))])
    return float(rms.max())


def centre_speech(wave: np.ndarray, cfg: PipelineConfig) -> np.ndarray:
    """Trim leading/trailing silence, then centre-crop or zero-pad to the CNN's fixed window."""
    import librosa

    if wave.size > cfg.n_fft:
        trimmed, _ = librosa.effects.trim(wave, top_db=cfg.trim_top_db, frame_length=cfg.n_fft,
                                          hop_length=cfg.hop_length)
        if trimmed.size >= cfg.sample_rate // 10:
            wave = trimmed
    n = cfg.audio_window_samples
    if wave.size >= n:
        start = (wave.size - n) // 2
        return wave[start:start + n]
    pad = n - wave.size
    return np.pad(wave, (pad // 2, pad - pad // 2))


def mfcc_features(wave: np.ndarray, cfg: PipelineConfig) -> np.ndarray:
    """MFCC "spectrogram" (n_mfcc × frames, float32) of the centred speech window."""
    import librosa

    window = centre_speech(np.asarray(wave, dtype=np.float32), cfg)
    mfcc = librosa.feature.mfcc(y=window, sr=cfg.sample_rate, n_mfcc=cfg.n_mfcc, n_fft=cfg.n_fft,
                                hop_length=cfg.hop_length, n_mels=cfg.n_mels)
    return mfcc.astype(np.float32)


class AudioCNN(nn.Module):
    """4 blocks of conv → batch-norm → ReLU → max-pool, then fully connected layers with dropout."""

    def __init__(self, n_classes: int = 6, channels: tuple[int, ...] = (16, 32, 64, 128),
                 hidden: int = 128, dropout: float = 0.4) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        c_in = 1
        for c_out in channels:
            blocks += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2)]
            c_in = c_out
        self.features = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d((2, 4)))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(c_in * 8, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits; x is (batch, n_mfcc, frames), already normalised."""
        return self.classifier(self.features(x.unsqueeze(1)))


def normalise(mfcc: np.ndarray, cfg: PipelineConfig) -> np.ndarray:
    """Standardise each coefficient with the training set's mean and std (stored in the config)."""
    mean = np.asarray(cfg.mfcc_mean, dtype=np.float32)[:, None]
    std = np.asarray(cfg.mfcc_std, dtype=np.float32)[:, None]
    return (mfcc - mean) / std


class AudioModel:
    """One or more CNNs (an ensemble of seeds) that turn MFCCs into six probabilities."""

    def __init__(self, nets: list[AudioCNN], cfg: PipelineConfig) -> None:
        self.nets = [n.eval() for n in nets]
        self.cfg = cfg

    def logits(self, mfccs: np.ndarray, chunk: int = 16) -> np.ndarray:
        """Mean logits of the ensemble for a batch (batch, n_mfcc, frames) of raw MFCCs.

        Runs `chunk` windows at a time, so a long video's memory does not grow with its length.
        """
        out = []
        for s in range(0, len(mfccs), chunk):
            x = torch.from_numpy(normalise(np.asarray(mfccs[s:s + chunk], dtype=np.float32), self.cfg))
            with torch.inference_mode():
                out.append(torch.stack([n(x) for n in self.nets]).mean(0).numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.cfg.emotions)), np.float32)

    def save(self, path: str) -> None:
        from safetensors.torch import save_file

        tensors = {f"net{i}.{k}": v.contiguous() for i, n in enumerate(self.nets) for k, v in n.state_dict().items()}
        save_file(tensors, path, metadata={"n_nets": str(len(self.nets))})

    @classmethod
    def load(cls, path: str, cfg: PipelineConfig) -> "AudioModel":
        from safetensors import safe_open
        from safetensors.torch import load_file

        with safe_open(path, "pt") as f:
            n_nets = int(f.metadata()["n_nets"])
        tensors = load_file(path)
        nets = []
        for i in range(n_nets):
            net = AudioCNN(n_classes=len(cfg.emotions))
            prefix = f"net{i}."
            net.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
            nets.append(net)
        return cls(nets, cfg)
