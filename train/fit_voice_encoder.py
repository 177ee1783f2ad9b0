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
from .fit_audio import History
from .folds import CrossFit, Examples

POOLED_LAYERS = 6  # the cache keeps every layer's mean and std, so a bench can compare layers without re-encoding


def _encode_item(job: tuple[str, dict]) -> tuple[str, np.ndarray | None, np.ndarray | None]:
    from emotion import speech_encoder as se
    from emotion.media import load_audio

    path, fields = job
    cfg = PipelineConfig(**fields)
    wave = load_audio(path, se.SAMPLE_RATE)  # audio files and videos' sound tracks, as inference reads them
    piece = None if wave is None else se.speech_piece(wave, cfg, gate=False)
    if piece is None or piece.size < se.HOP * 4:
        return path, None, None
    layers = se.encode([piece], POOLED_LAYERS)[0]
    pooled = se.layer_stats(layers)  # (6, 1024): what the "stats" pooling reads, for every layer
    frames = np.mean([layers[i - 1] for i in cfg.encoder_layers], axis=0).astype(np.float16)
    return path, pooled, frames


def _init_worker() -> None:
    torch.set_num_threads(1)


def encoder_fields(cfg: PipelineConfig) -> dict:
    """The settings that decide what the encoder hears and returns (the cache's key; what each worker builds)."""
    return {"encoder_layers": cfg.encoder_layers, "encoder_max_s": cfg.encoder_max_s,
            "trim_top_db": cfg.trim_top_db, "min_speech_rms": cfg.min_speech_rms, "n_fft": cfg.n_fft,
            "hop_length": cfg.hop_length}


def extract(items: list[Item], cfg: PipelineConfig, cache: str | Path, workers: int = 2) -> dict[str, dict]:
    """{path: {"pooled": (6, 1024) per-layer mean and std, "frames": (T, 512) float16 of cfg.encoder_layers}}
    for every clip with sound, cached on disk by the clip list and the settings."""
    fields = encoder_fields(cfg)
    key = hashlib.sha256(json.dumps([sorted(i.path for i in items), fields], sort_keys=True).encode()).hexdigest()[:16]
    file = Path(cache) / "encoder" / f"{key}.npz"
    if file.is_file():
        with np.load(file, allow_pickle=False) as z:
            paths, offsets, pooled, frames = list(z["paths"]), z["offsets"], z["pooled"], z["frames"]
        return {p: {"pooled": pooled[k], "frames": frames[offsets[k]:offsets[k + 1]]} for k, p in enumerate(paths)}
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
    c: float = 0.0  # > 0: a logistic regression (inverse L2 strength C, as scikit-learn's), solved exactly, each
    # corpus weighing the same (the "stats" pooling's head); 0: the head trained by AdamW for `epochs`


def fit_head(frames: list[np.ndarray], y: np.ndarray, present: np.ndarray, n_classes: int,
             recipe: HeadRecipe = HeadRecipe(), history: History | None = None,
             groups: list[str] | None = None) -> HeadEnsemble:
    """Train a head on clips' frames with labels `y`; `present` (clips, classes) is 1 for the classes the clip's
    corpus has: the others are masked out of its softmax, so a corpus never argues against a class it lacks.
    Classes are weighted by their inverse frequency (EmoDB has twice as many angry clips as sad)."""
    if recipe.c > 0:
        return fit_logistic(frames, y, present, n_classes, recipe.c, groups, history)
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
        losses, right = [], 0
        order = rng.permutation(len(frames))
        for s in range(0, len(frames), recipe.batch):
            idx = order[s:s + recipe.batch]
            x, m = batch_of([frames[i] for i in idx], mean, std)
            logits = net(x, m).masked_fill(absent[idx], -1e4)
            loss = nn.functional.cross_entropy(logits, yt[idx], weight=weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item() * len(idx))
            right += int((logits.argmax(1) == yt[idx]).sum())
        if history is not None:  # the fixed recipe keeps the last epoch
            history.train_loss.append(sum(losses) / len(frames))
            history.train_acc.append(right / len(frames))
            history.best_epoch = len(history.train_loss) - 1
    return HeadEnsemble([net], [mean], [std])


def fit_logistic(rows: list[np.ndarray], y: np.ndarray, present: np.ndarray, n_classes: int, c: float,
                 groups: list[str] | None = None, history: History | None = None) -> HeadEnsemble:
    """A linear head (EncoderHead with conv=0) fitted as an L2 logistic regression by L-BFGS on standardised
    one-row inputs (the layers' statistics): deterministic, no epochs to pick. Each group (corpus) weighs the same
    and, within the weighted whole, each class; the loss is masked to each clip's corpus' classes."""
    x = np.concatenate([np.asarray(r, np.float32).reshape(1, -1) for r in rows])
    mean, std = x.mean(0), x.std(0) + 1e-3
    xt, yt = torch.from_numpy((x - mean) / std), torch.from_numpy(y)
    w = np.ones(len(y))
    if groups is not None:
        g = np.asarray(groups)
        for name in set(g.tolist()):
            w[g == name] = 1.0 / np.sum(g == name)
    per_class = np.bincount(y, weights=w, minlength=n_classes)
    w = w * (w.sum() / np.maximum(per_class, 1e-12) / np.count_nonzero(per_class))[y]
    wt = torch.from_numpy((w / w.sum()).astype(np.float32))
    absent = torch.from_numpy((1 - present).astype(bool))
    net = EncoderHead(x.shape[1], n_classes, conv=0)
    weight, bias = net.out.weight, net.out.bias
    with torch.no_grad():
        weight.zero_()
        bias.zero_()
    strength = 1.0 / (c * len(y))  # scikit-learn's C·Σ loss + ½‖W‖², divided by the number of clips
    opt = torch.optim.LBFGS([weight, bias], max_iter=500, history_size=20, line_search_fn="strong_wolfe")

    def scores() -> tuple[torch.Tensor, torch.Tensor]:  # masked logits, and their weighted cross-entropy
        logits = (xt @ weight.T + bias).masked_fill(absent, -1e4)
        return logits, (nn.functional.cross_entropy(logits, yt, reduction="none") * wt).sum()

    def loss_fn() -> torch.Tensor:
        opt.zero_grad()
        loss = scores()[1] + 0.5 * strength * (weight ** 2).sum()
        loss.backward()
        return loss

    def record() -> None:  # the history holds the loss and accuracy before and after the fit
        if history is not None:
            with torch.no_grad():
                logits, loss = scores()
            history.train_loss.append(float(loss))
            history.train_acc.append(float((logits.argmax(1) == yt).float().mean()))
            history.best_epoch = len(history.train_loss) - 1

    record()
    opt.step(loss_fn)
    record()
    return HeadEnsemble([net], [mean], [std])


def mean_frame(row: np.ndarray) -> np.ndarray:
    """The mean frame of the layers (what the conv head's baseline reads) from one "stats" row."""
    from emotion.speech_encoder import WIDTH

    return row.reshape(-1, 2, WIDTH)[:, 0].mean(0, keepdims=True)


def encoder_examples(items: list[Item], fold_of: dict[str, int], cfg: PipelineConfig, cache: str | Path,
                     workers: int = 2) -> Examples:
    """The voice clips' encoder frames (an object array of (frames, width) arrays), labels, folds and sources."""
    voice = [i for i in items if i.kind in ("audio", "video")]
    feats = extract(voice, cfg, cache, workers)
    kept = [i for i in voice if i.path in feats]  # silent tracks have no voice to learn from
    x = np.empty(len(kept), dtype=object)
    if cfg.encoder_pooling == "stats":  # the cache holds every layer's statistics: the layers chosen, as one row
        x[:] = [feats[i.path]["pooled"][np.array(cfg.encoder_layers) - 1].reshape(1, -1) for i in kept]
    else:
        x[:] = [feats[i.path]["frames"] for i in kept]
    return Examples(x, np.array([cfg.emotions.index(i.emotion) for i in kept], dtype=np.int64),
                    np.array([fold_of[i.path] for i in kept], dtype=np.int64), [i.speaker for i in kept],
                    [i.dataset for i in kept], [i.path for i in kept])


def classes_present(data: Examples, n_classes: int) -> np.ndarray:
    """(examples, classes): 1 for the classes the example's dataset has at all (its loss is masked to them)."""
    has = {d: np.isin(np.arange(n_classes), data.y[np.array(data.dataset) == d]) for d in set(data.dataset)}
    return np.stack([has[d] for d in data.dataset]).astype(np.float32) if len(data) else np.zeros((0, n_classes))


def cross_fit_encoder(data: Examples, n_classes: int, recipe: HeadRecipe = HeadRecipe(), progress=None) -> CrossFit:
    """One head per fold, trained on the other folds' speakers and asked about its own fold (the recipe is
    fixed, chosen by speaker-CV in bench/voice_corpora.py: no epoch is picked on held-out data). The baseline
    on the same folds: a linear layer on the mean frame."""
    present = classes_present(data, n_classes)
    logits = np.zeros((len(data), n_classes), np.float32)
    baseline = np.zeros(len(data), np.int64)
    models, trained, histories = [], [], []
    linear = HeadRecipe(conv=0, epochs=40, lr=3e-3, weight_decay=recipe.weight_decay, seed=recipe.seed)
    plain = [mean_frame(r) for r in data.x] if recipe.c > 0 else list(data.x)  # the baseline's input
    groups = np.array(data.dataset)
    for k in sorted(set(data.fold.tolist())):
        test, fit = data.fold == k, data.fold != k
        histories.append(History())
        head = fit_head(list(data.x[fit]), data.y[fit], present[fit], n_classes,
                        HeadRecipe(**{**recipe.__dict__, "seed": recipe.seed + k}), histories[-1], list(groups[fit]))
        logits[test] = head.logits(list(data.x[test]))
        baseline[test] = fit_head([plain[i] for i in np.flatnonzero(fit)], data.y[fit], present[fit], n_classes,
                                  linear).logits([plain[i] for i in np.flatnonzero(test)]).argmax(1)
        models.append(head)
        trained.append({s for s, used in zip(data.speaker, fit) if used})
        if progress:
            progress(k)
    return CrossFit(data, logits, baseline, models, histories, trained)


def leave_one_corpus_out(data: Examples, n_classes: int, recipe: HeadRecipe, min_clips: int = 30
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Per dataset with at least `min_clips` clips: a head trained on all the other datasets, asked about this one
    (speech unlike anything it learned from: other speakers, language, microphones). Returns every clip's logits
    from the head that never heard its corpus, and which clips have them (their corpus was left out)."""
    present = classes_present(data, n_classes)
    datasets = np.array(data.dataset)
    logits = np.zeros((len(data), n_classes), np.float32)
    covered = np.zeros(len(data), bool)
    for d in sorted(set(data.dataset)):
        test, fit = datasets == d, datasets != d
        if test.sum() < min_clips or not fit.any():
            continue
        head = fit_head(list(data.x[fit]), data.y[fit], present[fit], n_classes, recipe, groups=list(datasets[fit]))
        logits[test], covered[test] = head.logits(list(data.x[test])), True
    return logits, covered
