"""Feature cache: MFCCs as .npy, blendshape sequences as .pkl, keyed by file content + feature config.

The features come from the very functions the pipeline calls at inference (emotion.audio,
emotion.face), so training and serving can never drift apart. Extraction runs on all cores, shows a
progress bar, and resumes after an interruption (finished files are kept, written atomically).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np

from emotion.config import PipelineConfig
from emotion.pipeline import split_windows

from .datasets import Item

AUDIO_KEYS = ("sample_rate", "n_mfcc", "n_mels", "n_fft", "hop_length", "audio_window_s", "trim_top_db",
              "voice_features", "voice_norm", "voice_vad", "vad_threshold", "min_speech_s")
FACE_KEYS = ("frames_per_window", "blendshape_names", "face_confidence", "max_faces", "face_max_side_px",
             "window_s", "single_window_max_s", "appearance_model", "appearance_min_side_px")
EXTRA_FACE_WINDOWS = 4  # extra random sub-windows per clip, for augmentation
PHOTO_REPEATS = 4
FEATURE_VERSION = 3  # 3: appearance beside the blendshapes. Bump when the extraction code changes, so old cache files are not reused
AUDIO_FEATURE_VERSION = 2  # 2: silent tracks give no features (nothing to learn a voice from)
AUDIO_AUG_COPIES = 4  # degraded versions of each voice clip (branch "audio_aug"), see train.augment
AUDIO_AUG_VERSION = 1  # bump when train.augment changes
PROSODY_VERSION = 3  # bump when emotion.audio.prosody_features changes
VIDEO_READER_VERSION = 2  # bump when clip frames are read differently (2: ffmpeg pipe on a time grid)
FACE_FEATURE_VERSION = 2  # bump when the face features change (2: dim crops lifted, tiny stills enlarged)


def file_hash(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:20]


def config_hash(cfg: PipelineConfig, keys: tuple[str, ...], extra: str = "") -> str:
    d = asdict(cfg)
    return hashlib.sha256((json.dumps({k: d[k] for k in keys}, sort_keys=True) + extra).encode()).hexdigest()[:12]


def cache_path(cache_dir: str | Path, item: Item, cfg: PipelineConfig, branch: str, appearance_digest: str = "") -> Path:
    """Where an item's features live; any change to the file or the branch's parameters changes it, and for the
    face a change to the expression CNN's contents (`appearance_digest`: its file_hash; the config holds only its
    name)."""
    if branch == "audio":
        key, ext = config_hash(cfg, AUDIO_KEYS + ("min_speech_rms",), f"{FEATURE_VERSION}-{AUDIO_FEATURE_VERSION}"), ".npy"
    elif branch == "audio_aug":
        key = config_hash(cfg, AUDIO_KEYS + ("min_speech_rms",),
                          f"{FEATURE_VERSION}-{AUDIO_FEATURE_VERSION}-{AUDIO_AUG_COPIES}-{AUDIO_AUG_VERSION}")
        ext = ".npy"
    elif branch == "prosody":
        key, ext = config_hash(cfg, AUDIO_KEYS + ("min_speech_rms",), f"{FEATURE_VERSION}-prosody{PROSODY_VERSION}"), ".npy"
    else:
        reader = "" if item.kind == "photo" else f"-{VIDEO_READER_VERSION}"
        key = config_hash(cfg, FACE_KEYS, f"{item.kind}-{PHOTO_REPEATS}-{EXTRA_FACE_WINDOWS}-{FEATURE_VERSION}{reader}"
                          f"-{FACE_FEATURE_VERSION}{'-' + appearance_digest if appearance_digest else ''}")
        ext = ".pkl"
    return Path(cache_dir) / branch / f"{file_hash(item.path)}-{key}{ext}"


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        write(f)
    tmp.replace(path)


def audio_features(item: Item, cfg: PipelineConfig) -> np.ndarray | None:
    """The voice CNN's input for a clip; None when it has no speech (e.g. a digitally silent track)."""
    from emotion.audio import voice_features
    from emotion.media import load_audio

    wave = load_audio(item.path, cfg.sample_rate)
    return None if wave is None else voice_features(wave, cfg, gate=False)


def prosody_of(item: Item, cfg: PipelineConfig) -> np.ndarray:
    """The prosody regression's input for a clip (empty when it has no sound track)."""
    from emotion.audio import prosody_features
    from emotion.media import load_audio

    wave = load_audio(item.path, cfg.sample_rate)
    return np.zeros(0, np.float32) if wave is None else prosody_features(wave, cfg)


def augmented_audio_features(item: Item, cfg: PipelineConfig, copies: int) -> np.ndarray:
    """`copies` randomly degraded versions of a clip (emotion-preserving: see train.augment), as voice features
    (copies × rows × frames); the ones in which no speech is left are dropped. Seeded by the file's content."""
    from emotion.audio import voice_features
    from emotion.media import load_audio

    from .augment import random_degradation

    wave = load_audio(item.path, cfg.sample_rate)
    rng = np.random.default_rng(int(file_hash(item.path)[:8], 16))
    out = []
    for _ in range(copies if wave is not None else 0):
        f = voice_features(random_degradation(wave, cfg.sample_rate, rng), cfg, gate=False)
        if f is not None:
            out.append(f)
    return np.stack(out) if out else np.zeros((0, 0, 0), np.float32)


def face_features(item: Item, cfg: PipelineConfig, face_model: str, appearance: str | None = None) -> dict:
    """Photos: one 52-score vector. Clips: the inference windows plus a few random sub-windows."""
    import cv2

    from emotion.face import photo_blendshapes, video_blendshapes
    from emotion.media import probe

    if item.kind == "photo":
        bgr = cv2.imread(item.path, cv2.IMREAD_COLOR)
        shapes = None if bgr is None else photo_blendshapes(bgr, cfg, face_model, PHOTO_REPEATS, appearance)
        return {"kind": "photo", "blendshapes": shapes}
    duration = probe(item.path).duration_s or 0.0
    windows = split_windows(duration, cfg)
    rng = np.random.default_rng(int(file_hash(item.path)[:8], 16))
    extra = []
    for _ in range(EXTRA_FACE_WINDOWS):
        length = min(duration, cfg.window_s) * rng.uniform(0.6, 1.0)
        start = rng.uniform(0, max(0.0, duration - length))
        extra.append((float(start), float(start + length)))
    pack = lambda fs: [{"sequence": f.sequence, "detected": f.detected, "start_s": f.start_s, "end_s": f.end_s}
                       for f in fs]
    # Two passes: the first sees exactly the frames inference sees (same tracking), the second adds crops.
    return {"kind": "clip", "windows": pack(video_blendshapes(item.path, windows, cfg, face_model,
                                                              appearance_path=appearance)),
            "augmented": pack(video_blendshapes(item.path, extra, cfg, face_model, appearance_path=appearance))}


def _extract(args: tuple) -> tuple[str, str | None]:
    item, cfg, branch, out, face_model, appearance = args
    try:
        if branch == "audio":
            mfcc = audio_features(item, cfg)
            _atomic_write(out, lambda f: np.save(f, mfcc if mfcc is not None else np.zeros((0, 0), np.float32)))
        elif branch == "prosody":
            vector = prosody_of(item, cfg)
            _atomic_write(out, lambda f: np.save(f, vector))
        elif branch == "audio_aug":
            copies = augmented_audio_features(item, cfg, AUDIO_AUG_COPIES)
            _atomic_write(out, lambda f: np.save(f, copies))
        else:
            data = face_features(item, cfg, face_model, appearance)
            _atomic_write(out, lambda f: pickle.dump(data, f))
        return item.path, None
    except Exception as exc:  # reported, and the file is retried on the next run
        return item.path, f"{exc.__class__.__name__}: {exc}"


def extract_all(items: list[Item], cfg: PipelineConfig, cache_dir: str | Path, branch: str,
                face_model: str | None = None, workers: int | None = None,
                appearance: str | None = None) -> tuple[dict[str, Path], list[str]]:
    """Compute the missing features of `items` for one branch; returns {path: cache file} and failures.
    `appearance` is the expression CNN's file when cfg.appearance_model is set."""
    from tqdm import tqdm

    if branch == "face" and cfg.appearance_model and not appearance:
        raise ValueError("the config reads appearance: extract_all needs the expression CNN's file (appearance=)")
    digest = file_hash(appearance) if branch == "face" and cfg.appearance_model and appearance else ""
    targets = {it.path: cache_path(cache_dir, it, cfg, branch, digest) for it in items}
    todo = [(it, cfg, branch, targets[it.path], face_model, appearance) for it in items if not targets[it.path].exists()]
    failures = []
    if todo:
        workers = workers or min(len(todo), os.cpu_count() or 1)
        desc = f"{branch} features ({len(items) - len(todo)} cached)"
        if workers == 1:
            results = map(_extract, todo)
            for path, err in tqdm(results, total=len(todo), desc=desc):
                if err:
                    failures.append(f"{path}: {err}")
        else:
            with ProcessPoolExecutor(workers) as pool:
                for path, err in tqdm(pool.map(_extract, todo, chunksize=4), total=len(todo), desc=desc):
                    if err:
                        failures.append(f"{path}: {err}")
    ok = {p: t for p, t in targets.items() if t.exists()}
    return ok, failures


def load_audio_cache(path: Path) -> np.ndarray | None:
    a = np.load(path)
    return None if a.size == 0 else a


def load_face_cache(path: Path) -> dict:
    with open(path, "rb") as f:
        return pickle.load(f)  # our own cache files only, never downloaded ones
