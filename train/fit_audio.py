"""Fit the voice CNN (PyTorch) on cached MFCCs: one per fold (cross-fitting), best epoch on inner validation."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from emotion.audio import AudioCNN, AudioModel, normalise
from emotion.config import PipelineConfig

from .evaluate import audio_baseline
from .folds import CrossFit, Examples


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
        if len(yv):
            with torch.inference_mode():
                out = net(xv)
                hist.val_loss.append(float(nn.functional.cross_entropy(out, yv)))
                hist.val_acc.append(float((out.argmax(1) == yv).float().mean()))
        hist.train_loss.append(loss_sum / total)
        hist.train_acc.append(correct / total)
        # without validation speakers (tiny runs) the last epoch is kept
        score = float(np.mean(hist.val_acc[-smooth:])) if len(yv) else float(epoch)
        if epoch >= min(smooth, epochs) - 1 and score > best_score:
            best_score, best, hist.best_epoch = score, copy.deepcopy(net.state_dict()), epoch
    net.load_state_dict(best)
    return net.eval(), hist


def normalisation(x: np.ndarray, cfg: PipelineConfig) -> None:
    """Per-coefficient MFCC mean and std over all clips, into `cfg` (label-free, shared by every fold model:
    the shipped ensemble needs one normalisation)."""
    cfg.mfcc_mean = [float(v) for v in x.mean(axis=(0, 2))]
    cfg.mfcc_std = [float(v) for v in x.std(axis=(0, 2)) + 1e-6]


def cross_fit_audio(data: Examples, inner: dict[int, set[str]], cfg: PipelineConfig, epochs: int = 40,
                    seed: int = 0, progress=None) -> CrossFit:
    """One CNN per fold: trained on the other folds' speakers less the inner-validation ones (which pick the
    best epoch), then asked about its own fold. Returns every clip's OOF logits, the fold models and the
    MFCC-statistics baseline's OOF predictions on the same folds."""
    torch.set_num_threads(max(1, torch.get_num_threads()))
    normalisation(data.x, cfg)
    x = normalise(data.x, cfg).astype(np.float32)
    logits = np.zeros((len(data), len(cfg.emotions)), np.float32)
    baseline = np.zeros(len(data), np.int64)
    models, hists, trained = [], [], []
    for k in sorted(set(data.fold.tolist())):
        test = data.fold == k
        val = ~test & np.isin(data.path, list(inner[k]))
        fit = ~test & ~val
        net, hist = fit_one(x[fit], data.y[fit], x[val], data.y[val], seed + k, epochs)
        logits[test] = AudioModel([net], cfg).logits(data.x[test])
        baseline[test] = audio_baseline(data.x[~test], data.y[~test], data.x[test])
        models.append(net)
        hists.append(hist)
        trained.append({s for s, used in zip(data.speaker, fit | val) if used})  # exactly what shaped this model
        if progress:
            progress(k)
    return CrossFit(data, logits, baseline, models, hists, trained)
