"""Fit the voice CNN (PyTorch) on cached MFCCs: one per fold (cross-fitting), best epoch on inner validation."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from emotion.audio import AudioCNN, AudioModel, ProsodyHead, normalise
from emotion.config import PipelineConfig

from .evaluate import audio_baseline, softmax_rows
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


@dataclass
class Recipe:
    """How the voice CNN is trained (the features themselves are set by the config)."""

    epochs: int = 40
    augmented_share: float = 0.0  # chance that an example is replaced by one of its degraded copies, per epoch
    mixup: float = 0.0  # Beta(a, a) mixing of example pairs within a batch; 0 = off
    ema: float = 0.0  # decay of an exponential moving average of the weights (and batch-norm statistics),
    # which is what gets validated and kept; 0 = off (the raw weights)


def epoch_inputs(x: torch.Tensor, augmented: list[torch.Tensor] | None, share: float,
                 rng: np.random.Generator) -> torch.Tensor:
    """The clean examples, each swapped for a random degraded copy of itself with probability `share`."""
    if not augmented or share <= 0:
        return x
    out = x.clone()
    for i in np.flatnonzero(rng.random(len(x)) < share):
        if len(augmented[i]):
            out[i] = augmented[i][int(rng.integers(len(augmented[i])))]
    return out


def fit_one(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, seed: int,
            epochs: int, batch_size: int = 32, lr: float = 2e-3, smooth: int = 3,
            augmented: list[np.ndarray] | None = None, recipe: Recipe | None = None,
            in_channels: int = 1, *, n_classes: int) -> tuple[AudioCNN, History]:
    """Train one CNN; keep the weights of the epoch with the best smoothed validation accuracy.
    `augmented[i]` holds degraded copies of example i (normalised like x_train)."""
    recipe = recipe or Recipe(epochs=epochs)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = AudioCNN(n_classes=n_classes, in_channels=in_channels)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-2)
    steps = epochs * int(np.ceil(len(x_train) / batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.2)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    xv, yv = torch.from_numpy(x_val), torch.from_numpy(y_val)
    aug = [torch.from_numpy(a) for a in augmented] if augmented is not None else None
    hist = History()
    averaged = (torch.optim.swa_utils.AveragedModel(net, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(
        recipe.ema), use_buffers=True) if recipe.ema > 0 else None)
    best, best_score = copy.deepcopy(net.state_dict()), -1.0
    for epoch in range(epochs):
        net.train()
        order = rng.permutation(len(xt))
        x_epoch = epoch_inputs(xt, aug, recipe.augmented_share, rng)
        total, correct, loss_sum = 0, 0, 0.0
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            xb, yb = spec_augment(x_epoch[idx], rng), yt[idx]
            if recipe.mixup > 0:
                lam = float(rng.beta(recipe.mixup, recipe.mixup))
                perm = torch.from_numpy(rng.permutation(len(idx)))
                out = net(lam * xb + (1 - lam) * xb[perm])
                loss = lam * loss_fn(out, yb) + (1 - lam) * loss_fn(out, yb[perm])
            else:
                out = net(xb)
                loss = loss_fn(out, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if averaged is not None:
                averaged.update_parameters(net)
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((out.argmax(1) == yb).sum())
            total += len(idx)
        net.eval()
        judged = averaged.module.eval() if averaged is not None else net  # the weights that would be kept
        if len(yv):
            with torch.inference_mode():
                out = judged(xv)
                hist.val_loss.append(float(nn.functional.cross_entropy(out, yv)))
                hist.val_acc.append(float((out.argmax(1) == yv).float().mean()))
        hist.train_loss.append(loss_sum / total)
        hist.train_acc.append(correct / total)
        # without validation speakers (tiny runs) the last epoch is kept
        score = float(np.mean(hist.val_acc[-smooth:])) if len(yv) else float(epoch)
        if epoch >= min(smooth, epochs) - 1 and score > best_score:
            best_score, best, hist.best_epoch = score, copy.deepcopy(judged.state_dict()), epoch
    net.load_state_dict(best)
    return net.eval(), hist


def normalisation(x: np.ndarray, cfg: PipelineConfig) -> None:
    """Per-coefficient MFCC mean and std over all clips, into `cfg` (label-free, shared by every fold model:
    the shipped ensemble needs one normalisation)."""
    cfg.mfcc_mean = [float(v) for v in x.mean(axis=(0, 2))]
    cfg.mfcc_std = [float(v) for v in x.std(axis=(0, 2)) + 1e-6]


def cross_fit_audio(data: Examples, inner: dict[int, set[str]], cfg: PipelineConfig, epochs: int = 40,
                    seed: int = 0, progress=None, augmented: list[np.ndarray] | None = None,
                    recipe: Recipe | None = None) -> CrossFit:
    """One CNN per fold: trained on the other folds' speakers less the inner-validation ones (which pick the
    best epoch), then asked about its own fold. Returns every clip's OOF logits, the fold models and the
    MFCC-statistics baseline's OOF predictions on the same folds. `augmented[i]`: degraded copies of clip i,
    used for training only (never for choosing the epoch nor for the OOF predictions)."""
    recipe = recipe or Recipe(epochs=epochs)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    normalisation(data.x, cfg)
    x = normalise(data.x, cfg).astype(np.float32)
    aug = [normalise(a, cfg).astype(np.float32) if len(a) else a for a in augmented] if augmented is not None else None
    logits = np.zeros((len(data), len(cfg.emotions)), np.float32)
    baseline = np.zeros(len(data), np.int64)
    models, hists, trained = [], [], []
    for k in sorted(set(data.fold.tolist())):
        test = data.fold == k
        val = ~test & np.isin(data.path, list(inner[k]))
        fit = ~test & ~val
        net, hist = fit_one(x[fit], data.y[fit], x[val], data.y[val], seed + k, recipe.epochs,
                            augmented=[aug[i] for i in np.flatnonzero(fit)] if aug is not None else None, recipe=recipe,
                            in_channels=cfg.voice_channels, n_classes=len(cfg.emotions))
        logits[test] = AudioModel([net], cfg).logits(data.x[test])
        baseline[test] = audio_baseline(data.x[~test], data.y[~test], data.x[test])
        models.append(net)
        hists.append(hist)
        trained.append({s for s, used in zip(data.speaker, fit | val) if used})  # exactly what shaped this model
        if progress:
            progress(k)
    return CrossFit(data, logits, baseline, models, hists, trained)


CROSSFIT_VERSION = 1  # bump when the training code changes, so saved cross-fits are not reused


def oof_baseline(data: Examples) -> np.ndarray:
    """The simple baseline's out-of-fold classes on the same folds (recomputed, never taken from a saved fit)."""
    out = np.zeros(len(data), np.int64)
    for k in sorted(set(data.fold.tolist())):
        test = data.fold == k
        out[test] = audio_baseline(data.x[~test], data.y[~test], data.x[test])
    return out


def crossfit_key(data: Examples, inner: dict[int, set[str]], cfg: PipelineConfig, seed: int,
                 augmented: list[np.ndarray] | None, recipe: Recipe) -> str:
    """Everything a voice cross-fit depends on: the features (their cache key and the clips' content), the
    folds, the inner validation, the recipe and the seed."""
    import hashlib
    import json
    from dataclasses import asdict

    from .features import AUDIO_AUG_COPIES, AUDIO_AUG_VERSION, AUDIO_KEYS

    # the features themselves are hashed below; of the config, only what shapes the network or the features'
    # meaning counts (the voice-activity settings do not, when the features are not cut to its speech)
    keys = [k for k in AUDIO_KEYS if cfg.voice_vad or k not in ("vad_threshold", "min_speech_s")]
    fields = {k: v for k, v in asdict(recipe).items() if k != "ema" or v}  # saved fits from before `ema` stay valid
    h = hashlib.sha256()
    h.update(json.dumps({"cfg": {k: getattr(cfg, k) for k in keys}, "recipe": fields, "seed": seed,
                         "aug": [AUDIO_AUG_COPIES, AUDIO_AUG_VERSION] if augmented is not None else None,
                         "inner": {str(k): sorted(v) for k, v in inner.items()}, "version": CROSSFIT_VERSION,
                         "items": list(zip(data.path, data.fold.tolist(), data.y.tolist()))},
                        sort_keys=True).encode())
    h.update(np.ascontiguousarray(data.x).tobytes())
    return h.hexdigest()[:16]


def cached_cross_fit_audio(cache_dir: str | Path, data: Examples, inner: dict[int, set[str]], cfg: PipelineConfig,
                           seed: int = 0, progress=None, augmented: list[np.ndarray] | None = None,
                           recipe: Recipe | None = None) -> CrossFit:
    """`cross_fit_audio`, saved under `cache_dir/voice_crossfit/` and reused when nothing it depends on
    changed: the voice CNNs are most of a training run's time (the ablation bench and train.run share them)."""
    recipe = recipe or Recipe()
    path = Path(cache_dir) / "voice_crossfit" / f"{crossfit_key(data, inner, cfg, seed, augmented, recipe)}.pt"
    if path.exists():
        saved = torch.load(path, weights_only=True)  # our own cache file
        normalisation(data.x, cfg)
        models = []
        for state in saved["models"]:
            net = AudioCNN(n_classes=len(cfg.emotions), in_channels=cfg.voice_channels)
            net.load_state_dict(state)
            models.append(net.eval())
        return CrossFit(data, saved["logits"].numpy(), oof_baseline(data), models,
                        [History(**h) for h in saved["histories"]], [set(s) for s in saved["trained"]])
    fit = cross_fit_audio(data, inner, cfg, seed=seed, progress=progress, augmented=augmented, recipe=recipe)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"logits": torch.from_numpy(fit.logits), "baseline": torch.from_numpy(fit.baseline),
                "models": [m.state_dict() for m in fit.models], "histories": [h.__dict__ for h in fit.histories],
                "trained": [sorted(s) for s in fit.trained_speakers]}, tmp)
    tmp.replace(path)
    return fit


PROSODY_WEIGHTS = np.round(np.arange(0.0, 2.01, 0.1), 2)  # the grid the prosody regression's weight is chosen on
PROSODY_C = 0.1  # the regression's inverse L2 strength


def fit_prosody_head(x: np.ndarray, y: np.ndarray, weight: float, n_classes: int) -> ProsodyHead:
    """Logistic regression on standardised prosody vectors (sklearn), as a ProsodyHead with one row per class
    (a class absent from `y`, as in tiny runs, gets a log-probability ~10 below the others)."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    clf = LogisticRegression(max_iter=5000, C=PROSODY_C).fit((x - mean) / scale, y)
    coef, intercept = softmax_rows(clf, n_classes, absent=-10.0)
    return ProsodyHead(mean.astype(np.float32), scale.astype(np.float32), coef, intercept, weight)


def best_weight(logits: np.ndarray, log_probs: np.ndarray, y: np.ndarray) -> float:
    """The grid weight with the best accuracy of logits + w × log_probs (the smallest, on ties)."""
    scores = [np.mean((logits + w * log_probs).argmax(1) == y) for w in PROSODY_WEIGHTS]
    return float(PROSODY_WEIGHTS[int(np.argmax(scores))])


def out_of_fold_log_probs(x: np.ndarray, y: np.ndarray, fold: np.ndarray, n_classes: int) -> np.ndarray:
    """Each example's log-probabilities from a regression (`fit_prosody_head`) trained on the other folds."""
    out = np.zeros((len(y), n_classes), np.float32)
    for k in sorted(set(fold.tolist())):
        out[fold == k] = fit_prosody_head(x[fold != k], y[fold != k], 1.0, n_classes).log_probs(x[fold == k])
    return out


def combine_out_of_fold(logits: np.ndarray, log_probs: np.ndarray, y: np.ndarray, fold: np.ndarray
                        ) -> tuple[np.ndarray, dict[int, float]]:
    """logits + w × log_probs per fold, each fold's w chosen on the other folds (never on the fold it scores)."""
    combined = np.zeros_like(logits)
    chosen = {}
    for k in sorted(set(fold.tolist())):
        other = fold != k
        chosen[int(k)] = best_weight(logits[other], log_probs[other], y[other])
        combined[fold == k] = logits[fold == k] + chosen[int(k)] * log_probs[fold == k]
    return combined.astype(np.float32), chosen


def add_prosody(fit: CrossFit, prosody: np.ndarray) -> CrossFit:
    """The prosody regression beside the cross-fitted CNNs, cross-fitted the same way: per fold, the regression
    is trained on the other folds' clips, and its weight chosen on the other folds' out-of-fold predictions, so
    no clip's combined logits used that clip's actor. Returns the cross-fit with the combined out-of-fold
    logits, the shipped head (all clips; weight chosen on all out-of-fold predictions) and what was chosen."""
    from dataclasses import replace

    y, fold = fit.examples.y, fit.examples.fold
    log_probs = out_of_fold_log_probs(prosody, y, fold, fit.logits.shape[1])
    combined, chosen = combine_out_of_fold(fit.logits, log_probs, y, fold)
    head = fit_prosody_head(prosody, y, best_weight(fit.logits, log_probs, y), fit.logits.shape[1])
    info = {"weight": head.weight, "weights_per_fold": chosen, "C": PROSODY_C,
            "cnn_alone_accuracy": round(float(np.mean(fit.logits.argmax(1) == y)), 4),
            "prosody_alone_accuracy": round(float(np.mean(log_probs.argmax(1) == y)), 4)}
    return replace(fit, logits=combined, head=head, head_info=info)
