"""The voice as a pretrained speech encoder and a small head (the `voice_encoder` branch, emotion.branches).

Each window's speech → Whisper-base encoder (emotion.speech_encoder), layers `cfg.encoder_layers` → the head.
Pooling "stats" (shipped): each layer's mean and sd over time, one row → a linear layer (a logistic regression).
Pooling "frames": the layers averaged frame by frame → a 1-D convolution, mean and max over time → the emotions.
The shipped head is the K fold heads of training, averaged (like the voice CNN's ensemble).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from .config import PipelineConfig
from .errors import EmotionError


class EncoderHead(nn.Module):
    """A 1-D convolution (kernel 5) over the encoder's frames, ReLU, mean and max over time, dropout, linear.
    `conv=0`: a linear layer on the mean frame (the baseline it is measured against)."""

    def __init__(self, width: int, n_classes: int, conv: int = 64, dropout: float = 0.3) -> None:
        super().__init__()
        self.conv = nn.Conv1d(width, conv, 5, padding=2) if conv else None
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(2 * conv if conv else width, n_classes)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (batch, frames, width), standardised; mask (batch, frames): 1 where a frame is real, 0 for padding."""
        m = mask[..., None]
        if self.conv is None:
            return self.out(self.drop((x * m).sum(1) / m.sum(1)))
        h = torch.relu(self.conv(x.transpose(1, 2))).transpose(1, 2)
        mean = (h * m).sum(1) / m.sum(1)
        peak = (h + (m - 1) * 1e4).max(1).values
        return self.out(self.drop(torch.cat([mean, peak], 1)))


def batch_of(frames: list[np.ndarray], mean: np.ndarray, std: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames standardised with the training set's statistics, zero-padded to the longest; and the mask."""
    n = max(len(f) for f in frames)
    x = np.zeros((len(frames), n, frames[0].shape[1]), np.float32)
    mask = np.zeros((len(frames), n), np.float32)
    for k, f in enumerate(frames):
        x[k, : len(f)] = (np.asarray(f, np.float32) - mean) / std
        mask[k, : len(f)] = 1
    return torch.from_numpy(x), torch.from_numpy(mask)


class HeadEnsemble:
    """One or more fitted heads (the training folds'), each with its training set's frame statistics."""

    def __init__(self, nets: list[EncoderHead], means: list[np.ndarray], stds: list[np.ndarray]) -> None:
        self.nets = [n.eval() for n in nets]
        self.means = [np.asarray(m, np.float32) for m in means]
        self.stds = [np.asarray(s, np.float32) for s in stds]

    @classmethod
    def joined(cls, parts: list["HeadEnsemble"]) -> "HeadEnsemble":
        return cls([n for p in parts for n in p.nets], [m for p in parts for m in p.means],
                   [s for p in parts for s in p.stds])

    def logits(self, frames: list[np.ndarray], chunk: int = 64) -> np.ndarray:
        """Mean logits of the heads, (len(frames), emotions)."""
        out = []
        with torch.inference_mode():
            for s in range(0, len(frames), chunk):
                part = frames[s:s + chunk]
                out.append(torch.stack([net(*batch_of(part, m, sd))
                                        for net, m, sd in zip(self.nets, self.means, self.stds)]).mean(0).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.nets[0].out.out_features), np.float32)

    def save(self, path: str) -> None:
        from safetensors.torch import save_file

        tensors = {f"head{i}.{k}": v.contiguous() for i, n in enumerate(self.nets) for k, v in n.state_dict().items()}
        for i, (m, sd) in enumerate(zip(self.means, self.stds)):
            tensors[f"mean{i}"], tensors[f"std{i}"] = torch.from_numpy(m), torch.from_numpy(sd)
        conv = self.nets[0].conv.out_channels if self.nets[0].conv is not None else 0
        save_file(tensors, path, metadata={"n_heads": str(len(self.nets)), "conv": str(conv)})

    @classmethod
    def load(cls, path: str, n_classes: int) -> "HeadEnsemble":
        from safetensors import safe_open
        from safetensors.torch import load_file

        with safe_open(path, "pt") as f:
            meta = f.metadata()
        tensors = load_file(path)
        nets, means, stds = [], [], []
        for i in range(int(meta["n_heads"])):
            net = EncoderHead(tensors[f"mean{i}"].shape[0], n_classes, int(meta["conv"]))
            prefix = f"head{i}."
            net.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
            nets.append(net)
            means.append(tensors[f"mean{i}"].numpy())
            stds.append(tensors[f"std{i}"].numpy())
        return cls(nets, means, stds)


class VoiceEncoderBranch:
    """The voice as a branch: speech per window → Whisper-base encoder → the head. Without the encoder's weights
    (not installed, or changed: emotion.speech_encoder checks them) it says why and the face answers alone."""

    role = "audio"
    weights_file = "voice_encoder_head.safetensors"

    def __init__(self, head: HeadEnsemble, problem: str | None = None) -> None:
        self.head = head
        self.problem = problem

    def read(self, media, windows: list[tuple[float, float]], cfg: PipelineConfig):
        from .audio import no_sound_note, voice_input
        from .branches import BranchInput
        from .speech_encoder import encoder_frames, speech_piece

        if media.wave is None:
            return BranchInput.empty(len(windows), [no_sound_note(media)])
        if self.problem:
            tail = " — the result comes from the face only." if media.has_video else ""
            return BranchInput.empty(len(windows), [f"Voice analysis is off: {self.problem}{tail}"])
        rate = cfg.sample_rate
        frames = []
        for k, (a, b) in enumerate(windows):
            if len(windows) > 1:  # a long clip: the progress bar moves window by window (0.05 to 0.15)
                media.progress(0.05 + 0.1 * k / len(windows), "Listening to the voice")
            piece = speech_piece(media.wave[int(a * rate): int(b * rate)], cfg)
            frames.append(None if piece is None else encoder_frames(piece, cfg))
        return voice_input(frames, media, cfg)

    def logits(self, inputs: list[np.ndarray]) -> np.ndarray:
        return self.head.logits(inputs)

    def warmup(self, cfg: PipelineConfig) -> np.ndarray:
        from .audio import speech_segments
        from .speech_encoder import encoder_frames

        if cfg.vad_gate:
            speech_segments(np.zeros(cfg.sample_rate, np.float32), cfg)  # loads the voice-activity detector
        if self.problem:
            return np.zeros((1, 1), np.float32)
        tone = (0.1 * np.sin(np.arange(cfg.sample_rate) * 0.3)).astype(np.float32)
        return self.head.logits([encoder_frames(tone, cfg)])

    def save(self, folder) -> None:
        self.head.save(str(Path(folder) / self.weights_file))

    @classmethod
    def load(cls, folder, cfg: PipelineConfig, **options) -> "VoiceEncoderBranch":
        from .branches import load_checked
        from .speech_encoder import load_encoder

        head = load_checked(Path(folder) / cls.weights_file, lambda p: HeadEnsemble.load(p, len(cfg.emotions)),
                            len(cfg.emotions))
        try:
            load_encoder()
        except EmotionError as exc:
            return cls(head, str(exc))
        return cls(head)
