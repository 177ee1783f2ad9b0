"""The voice over a pretrained speech encoder: cached Whisper-base features per clip, and the small head that reads
them, fitted with a loss masked to the classes each corpus has (nEMO has no disgust, EmoDB no surprise: a clip of
theirs must not teach the head that the class it lacks is unlikely)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from emotion.config import PipelineConfig
from emotion.voice_encoder import EncoderHead, HeadEnsemble, batch_of

from .datasets import Item

POOLED_LAYERS = 6  # the cache keeps every layer's mean and std, so a bench can compare layers without re-encoding


def _encode_item(job: tuple[str, dict]) -> tuple[str, np.ndarray | None, np.ndarray | None]:
    import librosa

    from emotion import speech_encoder as se

    path, fields = job
    cfg = PipelineConfig(**fields)
    wave, _ = librosa.load(path, sr=se.SAMPLE_RATE, mono=True)
    piece = se.speech_piece(wave, cfg, gate=False)
    if piece is None or piece.size < se.HOP * 4:
        return path, None, None
    layers = se.encode([piece], POOLED_LAYERS)[0]
    pooled = np.stack([np.concatenate([h.mean(0), h.std(0)]) for h in layers]).astype(np.float32)  # (6, 1024)
    frames = np.mean([layers[i - 1] for i in cfg.encoder_layers], axis=0).astype(np.float16)
    return path, pooled, frames


def _init_worker() -> None:
    torch.set_num_threads(1)


def extract(items: list[Item], cfg: PipelineConfig, cache: str | Path, workers: int = 2) -> dict[str, dict]:
    """{path: {"pooled": (6, 1024) per-layer mean and std, "frames": (T, 512) float16 of cfg.encoder_layers}}
    for every clip with sound, cached on disk by the clip list and the settings."""
    fields = {"encoder_layers": cfg.encoder_layers, "encoder_max_s": cfg.encoder_max_s,
              "trim_top_db": cfg.trim_top_db, "min_speech_rms": cfg.min_speech_rms, "n_fft": cfg.n_fft,
              "hop_length": cfg.hop_length}
    key = hashlib.sha256(json.dumps([sorted(i.path for i in items), fields], sort_keys=True).encode()).hexdigest()[:16]
    file = Path(cache) / "encoder" / f"{key}.npz"
    if file.is_file():
        with np.load(file, allow_pickle=False) as z:
            paths = list(z["paths"])
            offsets = z["offsets"]
            return {p: {"pooled": z["pooled"][k], "frames": z["frames"][offsets[k]:offsets[k + 1]]}
                    for k, p in enumerate(paths)}
    from multiprocessing import get_context

    from tqdm import tqdm

    jobs = [(i.path, fields) for i in items]
    out: dict[str, dict] = {}
    with get_context("spawn").Pool(workers, initializer=_init_worker) as pool:
        for path, pooled, frames in tqdm(pool.imap(_encode_item, jobs, chunksize=8), total=len(jobs),
                                         desc="speech encoder", unit="clip"):
            if pooled is not None:
                out[path] = {"pooled": pooled, "frames": frames}
    paths = sorted(out)
    offsets = np.cumsum([0] + [len(out[p]["frames"]) for p in paths])
    file.parent.mkdir(parents=True, exist_ok=True)
    np.savez(file, paths=np.array(paths), offsets=offsets, pooled=np.stack([out[p]["pooled"] for p in paths]),
             frames=np.concatenate([out[p]["frames"] for p in paths]))
    return out


@dataclass
class HeadRecipe:
    conv: int = 64
    epochs: int = 30
    lr: float = 1e-3
    weight_decay: float = 1e-2
    batch: int = 32
    seed: int = 0


def fit_head(frames: list[np.ndarray], y: np.ndarray, present: np.ndarray, n_classes: int,
             recipe: HeadRecipe = HeadRecipe()) -> HeadEnsemble:
    """Train a head on clips' frames with labels `y`; `present` (clips, classes) is 1 for the classes the clip's
    corpus has: the others are masked out of its softmax, so a corpus never argues against a class it lacks.
    Classes are weighted by their inverse frequency (EmoDB has twice as many angry clips as sad)."""
    torch.manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    stacked = np.concatenate([f.astype(np.float32) for f in frames])
    mean, std = stacked.mean(0), stacked.std(0) + 1e-3
    net = EncoderHead(stacked.shape[1], n_classes, recipe.conv)
    opt = torch.optim.AdamW(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    counts = np.bincount(y, minlength=n_classes).astype(np.float32)
    weight = torch.from_numpy(counts.sum() / np.maximum(counts, 1) / n_classes)
    yt, absent = torch.from_numpy(y), torch.from_numpy((1 - present).astype(bool))
    for _ in range(recipe.epochs):
        net.train()
        order = rng.permutation(len(frames))
        for s in range(0, len(frames), recipe.batch):
            idx = order[s:s + recipe.batch]
            x, m = batch_of([frames[i] for i in idx], mean, std)
            logits = net(x, m).masked_fill(absent[idx], -1e4)
            loss = nn.functional.cross_entropy(logits, yt[idx], weight=weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return HeadEnsemble([net], mean, std)
