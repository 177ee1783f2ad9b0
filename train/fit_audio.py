"""Fit the voice CNN (PyTorch) on cached MFCCs, with best-epoch checkpointing on validation."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from emotion.audio import AudioCNN, AudioModel, normalise
from emotion.config import PipelineConfig


@dataclass
class History:
    """Loss and accuracy per epoch (train and validation), and the epoch kept."""

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    best_epoch: int = 0


def spec_augment(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Random time shift, two time masks and one frequency mask per example (on normalised MFCCs)."""
    x = x.clone()
    n, f, t = x.shape
    for i in range(n):
        x[i] = torch.roll(x[i], int(rng.integers(-20, 21)), dims=1)
        for _ in range(2):
            w = int(rng.integers(0, 25))
            s = int(rng.integers(0, t - w))
            x[i, :, s:s + w] = 0
        w = int(rng.integers(0, 6))
        s = int(rng.integers(1, f - w))
        x[i, s:s + w, :] = 0
    return x


def fit_one(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, seed: int,
            epochs: int, batch_size: int = 32, lr: float = 2e-3, smooth: int = 3) -> tuple[AudioCNN, History]:
    """Train one CNN; keep the weights of the epoch with the best smoothed validation accuracy."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = AudioCNN()
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-2)
    steps = epochs * int(np.ceil(len(x_train) / batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.2)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    xv, yv = torch.from_numpy(x_val), torch.from_numpy(y_val)
    hist = History()
    best, best_score = copy.deepcopy(net.state_dict()), -1.0
    for epoch in range(epochs):
        net.train()
        order = rng.permutation(len(xt))
        total, correct, loss_sum = 0, 0, 0.0
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            xb, yb = spec_augment(xt[idx], rng), yt[idx]
            out = net(xb)
            loss = loss_fn(out, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((out.argmax(1) == yb).sum())
            total += len(idx)
        net.eval()
        with torch.inference_mode():
            out = net(xv)
            hist.val_loss.append(float(nn.functional.cross_entropy(out, yv)))
            hist.val_acc.append(float((out.argmax(1) == yv).float().mean()))
        hist.train_loss.append(loss_sum / total)
        hist.train_acc.append(correct / total)
        score = float(np.mean(hist.val_acc[-smooth:]))
        if epoch >= smooth - 1 and score > best_score:
            best_score, best, hist.best_epoch = score, copy.deepcopy(net.state_dict()), epoch
    net.load_state_dict(best)
    return net.eval(), hist


def fit_audio(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
              cfg: PipelineConfig, epochs: int = 60, seeds: tuple[int, ...] = (0, 1, 2)) -> tuple[AudioModel, list[History]]:
    """An ensemble of CNNs (one per seed); the normalisation statistics go into `cfg`."""
    torch.set_num_threads(max(1, torch.get_num_threads()))
    cfg.mfcc_mean = [float(v) for v in x_train.mean(axis=(0, 2))]
    cfg.mfcc_std = [float(v) for v in x_train.std(axis=(0, 2)) + 1e-6]
    xt = normalise(x_train, cfg).astype(np.float32)
    xv = normalise(x_val, cfg).astype(np.float32)
    nets, hists = [], []
    for seed in seeds:
        net, hist = fit_one(xt, y_train.astype(np.int64), xv, y_val.astype(np.int64), seed, epochs)
        nets.append(net)
        hists.append(hist)
    return AudioModel(nets, cfg), hists
