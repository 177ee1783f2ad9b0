"""EmotionPipeline: from a media file (or media in memory) to a Prediction, in three steps (preprocess: each branch
reads its part; forward: each branch's model, then the stacker; postprocess: the answer in words)."""

from __future__ import annotations

import contextvars
import math
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from .branches import FUSION_FILE, ROLES, Branch, BranchInput, Media, branch_class, load_checked, weight_files
from .calibration import calibrate
from .config import PipelineConfig
from .decoded import DecodedMedia
from .errors import EmotionError
from .fusion import FusionMLP, answer_calibrated, bounded_fuse, disagree, fuse, held_to_evidence
from .hub import resolve_weights
from .labels import NEUTRAL
from .media import load_audio, probe, readable_copy
from .names import display_name
from .result import Prediction, WindowResult

if TYPE_CHECKING:
    from .explain import VoiceTrack

MODALITY_WORDS = {("audio", "face"): "voice and face", ("audio",): "the voice only", ("face",): "the face only"}


def split_windows(duration_s: float, cfg: PipelineConfig) -> list[tuple[float, float]]:
    """One window for a short clip; equal windows of about `window_s` for a longer one."""
    if duration_s <= cfg.single_window_max_s:
        return [(0.0, duration_s)]
    n = math.ceil(duration_s / cfg.window_s)
    edges = np.linspace(0.0, duration_s, n + 1)
    return [(float(a), float(b)) for a, b in zip(edges[:-1], edges[1:])]


def forward_only(progress: Callable[[float, str], None]) -> Callable[[float, str], None]:
    """`progress` told only of steps forward: branches read side by side and report their own fractions (the voice
    0.05-0.15, the face 0.15-0.85), and the bar must not jump back."""
    last = [-1.0]
    lock = threading.Lock()

    def report(fraction: float, words: str) -> None:
        with lock:
            if fraction < last[0]:
                return
            last[0] = fraction
        progress(fraction, words)

    return report


@dataclass
class Readings:
    """What the models read in each window: each branch's calibrated probabilities by role (None where that branch
    could not be used), the fused answer held to its evidence (calibrated as an answer only where it is shown,
    once: `postprocess`), and how long each model took."""

    branches: dict[str, list[np.ndarray | None]]
    fused: list[np.ndarray | None]
    timings_s: dict[str, float] = field(default_factory=dict)

    def of(self, role: str) -> list[np.ndarray | None]:
        """One role's probabilities per window (all None when the weights have no such branch)."""
        return self.branches.get(role) or [None] * len(self.fused)


def calibrated_rows(n: int, rows: list[int], logits: np.ndarray, temperature: float) -> list[np.ndarray | None]:
    """n slots holding the calibrated probabilities of `logits` at `rows` (one per row), None elsewhere."""
    out: list[np.ndarray | None] = [None] * n
    for i, p in zip(rows, calibrate(logits, temperature) if rows else []):
        out[i] = p
    return out


@dataclass
class Features:
    """What preprocessing extracted from one input, window by window: each branch's reading, by role."""

    info_duration_s: float
    windows: list[tuple[float, float]]
    inputs: dict[str, BranchInput]
    wave: np.ndarray | None = None
    warnings: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    voice_track: VoiceTrack | None = None  # with `wave`: the voice plot's loudness and pitch, worked out ahead

    def of(self, role: str) -> BranchInput:
        """One role's reading (empty when the weights have no such branch)."""
        return self.inputs.get(role) or BranchInput.empty(len(self.windows))


ONE_BRANCH = re.compile(r"\s*(?:—|;|\.)\s*(?:the result comes|result) from the (?:face|voice) only\.$", re.I)


def nothing_used(warnings: list[str]) -> list[str]:
    """When neither branch could be used, its notes become one sentence: "No speech found … — the result comes
    from the face only" beside "No face found — … from the voice only" contradicted each other."""
    reasons = [ONE_BRANCH.sub("", w) for w in warnings if ONE_BRANCH.search(w)]
    others = [w for w in warnings if not ONE_BRANCH.search(w)]
    why = "; ".join(r[0].lower() + r[1:] for r in reasons)
    return others + [f"Neither a voice nor a face could be used, so there is no answer{': ' + why if why else ''}."]


def verdict_text(label: str | None, confidence: float, not_sure: bool, second: str | None,
                 modalities: tuple[str, ...]) -> str:
    """The answer in words, saying what it rests on."""
    if label is None:
        return "No answer: neither a voice nor a face could be used."
    source = MODALITY_WORDS.get(modalities, "")
    if not_sure:
        maybe = f"maybe {label} or {second}" if second else f"maybe {label}"
        return f"Not sure — {maybe} (from {source})"
    if label == NEUTRAL:
        return f"Neutral — no clear emotion ({confidence:.0%}), from {source}"
    return f"{label.capitalize()} ({confidence:.0%}), from {source}"


def disagreement_text(audio: np.ndarray, face: np.ndarray, names: list[str]) -> str:
    """Both readings in words, when they conflict."""
    a, f = int(np.argmax(audio)), int(np.argmax(face))
    return (f"Voice and face disagree: the voice sounds {names[a]} ({audio[a]:.0%}), the face looks {names[f]} "
            f"({face[f]:.0%})")


class EmotionPipeline:
    """Loads the config, the branches it names (emotion.branches) and the stacker once; `predict` answers for one
    input (a file, or media in memory)."""

    def __init__(self, cfg: PipelineConfig, branches: dict[str, Branch], fusion: FusionMLP,
                 weights_dir: Path | None = None) -> None:
        unknown = set(branches) - set(ROLES)
        if unknown or not branches:
            raise ValueError(f"branches are keyed by role ({', '.join(ROLES)}); got {sorted(branches)}")
        self.cfg = cfg
        self.branches = {role: branches[role] for role in ROLES if role in branches}  # always in role order
        self.fusion = fusion
        self.weights_dir = weights_dir

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path | None = None, revision: str | None = None,
                        face_model: str | Path | None = None, cache_dir: str | Path | None = None,
                        warmup: bool = True) -> "EmotionPipeline":
        """Load from a weights folder or a Hub repo id (default: the weights shipped with the package).

        `face_model`: MediaPipe's Face Landmarker file for the face branch (default: found or downloaded).
        `warmup` runs each model once on dummy input, so the first real request is as fast as the rest.
        """
        folder = resolve_weights(name_or_path, revision=revision, cache_dir=cache_dir)
        cfg = PipelineConfig.from_json(folder / "config.json")
        missing = [f for f in weight_files(cfg) if not (folder / f).is_file()]
        if missing:
            raise EmotionError(f"The weights folder {folder} lacks {', '.join(missing)}.", code="bad_weights")
        branches = {role: branch_class(name).load(folder, cfg, face_model=face_model)
                    for role, name in cfg.branches.items()}
        fusion = load_checked(folder / FUSION_FILE, lambda p: FusionMLP.load(p, len(cfg.emotions)), len(cfg.emotions))
        pipe = cls(cfg, branches, fusion, folder)
        if warmup:
            pipe.warmup()
        return pipe

    def with_config(self, **changes) -> "EmotionPipeline":
        """The same models under a changed config (e.g. a stricter length limit, another threshold)."""
        import dataclasses

        return EmotionPipeline(dataclasses.replace(self.cfg, **changes), self.branches, self.fusion, self.weights_dir)

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write the config, each branch's weights and the stacker into `folder`: exactly what `from_pretrained`
        reads."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.cfg.validate(folder / "config.json")
        self.cfg.to_json(folder / "config.json")
        for branch in self.branches.values():
            branch.save(folder)
        self.fusion.save(str(folder / FUSION_FILE))
        return folder

    @property
    def problems(self) -> dict[str, str]:
        """Why a branch cannot run on this machine, by role (e.g. no face model file): empty when all can."""
        return {role: b.problem for role, b in self.branches.items() if b.problem}

    def warmup(self) -> None:
        """Compile what compiles lazily (librosa's numba code, Keras' predict function), and check that
        each model answers with finite numbers (tampered weights would answer NaN)."""
        cfg = self.cfg
        outputs = {b.weights_file: b.warmup(cfg) for b in self.branches.values()}
        p = np.full(len(cfg.emotions), 1 / len(cfg.emotions), np.float32)
        outputs[FUSION_FILE] = fuse(self.fusion, [p], [p], cfg.temperature_fused, len(cfg.emotions))[0]
        for name, out in outputs.items():
            if not np.all(np.isfinite(out)):
                raise EmotionError(f"The weights file {name} gives non-finite outputs (NaN or infinity): it is "
                                   "damaged.", code="bad_weights")

    # -- step 1 ---------------------------------------------------------------------------------
    def preprocess(self, source: str | Path | DecodedMedia, keep_wave: bool = False,
                   max_duration_s: float | None = None,
                   progress: Callable[[float, str], None] | None = None) -> Features:
        """Decode (a file) or check (media in memory), then let each branch read its part. `progress(fraction,
        words)` hears of each stage, and of the face frames read (the longest stage) as fractions from 0.15 to 0.85."""
        cfg = self.cfg
        report = progress or (lambda fraction, words: None)
        limits = cfg.limits(max_duration_s)
        t0 = time.perf_counter()
        if isinstance(source, DecodedMedia):
            source.check(limits)
            timings = {"probe": time.perf_counter() - t0}
            report(0.05, "Listening to the voice")
            t = time.perf_counter()
            media = Media(source.display_name, source.duration_s(), source.wave_at(cfg.sample_rate), source.has_video,
                          source, None, report, timings)
            return self._features(media, keep_wave, t)
        info = probe(source, limits=limits)
        with readable_copy(info, limits) as info:
            timings = {"probe": time.perf_counter() - t0}
            report(0.05, "Listening to the voice")
            t = time.perf_counter()
            wave = load_audio(info.path, cfg.sample_rate, max_s=limits.max_duration_s) if info.has_audio else None
            media = Media(display_name(source), info.duration_s or 0.0, wave, info.has_video, info.path,
                          info.decode_pixels, report, timings)
            return self._features(media, keep_wave, t)

    def _features(self, media: Media, keep_wave: bool, t: float) -> Features:
        """Every branch's reading of the media, window by window: one code path for every kind of input.
        `t`: when reading the sound began."""
        cfg = self.cfg
        if media.wave is not None and not media.has_video:
            media.duration_s = media.wave.size / cfg.sample_rate
        windows = split_windows(media.duration_s, cfg) if media.duration_s > 0 else []
        media.timings["sound"] = time.perf_counter() - t
        media.progress = forward_only(media.progress)

        def read(role: str, branch: Branch) -> BranchInput:
            start = time.perf_counter()
            reading = branch.read(media, windows, cfg)
            media.timings[f"{role}_features"] = time.perf_counter() - start
            return reading

        # The branches read side by side: the voice's encoder works while the face waits on the decoder and the
        # landmarker (a 90 s clip: 1.9 s sooner). Each thread gets the caller's context (Gradio's progress lives there).
        # Keeping the sound means the answer will be explained: the voice plot's pitch is tracked meanwhile too.
        ahead = keep_wave and media.wave is not None and "audio" in self.branches
        if ahead:
            from .explain import voice_track  # (with plotly: imported only by analyses that explain)
        with ThreadPoolExecutor(len(self.branches) + 1) as pool:
            jobs = {role: pool.submit(contextvars.copy_context().run, read, role, branch)
                    for role, branch in self.branches.items()}
            pitch_job = pool.submit(voice_track, media.wave, cfg.sample_rate) if ahead else None
            inputs = {role: job.result() for role, job in jobs.items()}
            track = pitch_job.result() if pitch_job else None
        if not windows:
            raise EmotionError(f"{media.name} contains nothing that could be decoded; it may be truncated "
                               "or damaged.", code="corrupt")
        warnings = [note for reading in inputs.values() for note in reading.notes]
        return Features(media.duration_s, windows, inputs, media.wave if keep_wave else None, warnings, media.timings,
                        track)

    # -- step 2 ---------------------------------------------------------------------------------
    def forward(self, feats: Features) -> Readings:
        """Each branch's model on the windows it can read, calibrated, then the stacker. `feats` is not changed."""
        cfg = self.cfg
        n = len(feats.windows)
        timings: dict[str, float] = {}
        probs: dict[str, list[np.ndarray | None]] = {}
        for role, branch in self.branches.items():
            t = time.perf_counter()
            reading = feats.inputs[role]
            logits = branch.logits([reading.windows[i] for i in reading.usable]) if reading.usable else None
            probs[role] = calibrated_rows(n, reading.usable, logits, getattr(cfg, f"temperature_{role}"))
            timings[f"{role}_model"] = time.perf_counter() - t
        t = time.perf_counter()
        none = [None] * n
        fused_p = bounded_fuse(self.fusion, probs.get("audio", none), probs.get("face", none), cfg.temperature_fused,
                               len(cfg.emotions), cfg.split_pool_weight)
        timings["fusion"] = time.perf_counter() - t
        return Readings(probs, fused_p, timings)

    # -- step 3 ---------------------------------------------------------------------------------
    def postprocess(self, name: str, feats: Features, readings: Readings) -> Prediction:
        """The answer for the input shown as `name`: verdict, probabilities, timeline and warnings."""
        cfg = self.cfg
        audio_p, face_p, fused_p = readings.of("audio"), readings.of("face"), readings.fused
        names = cfg.emotions

        def as_dict(p: np.ndarray | None) -> dict[str, float] | None:
            return None if p is None else {e: round(float(v), 4) for e, v in zip(names, p)}

        def mean_of(ps: list) -> np.ndarray | None:
            present = [p for p in ps if p is not None]
            return np.mean(present, axis=0) if present else None

        face_seen, speech_seen = feats.of("face").seen, feats.of("audio").seen
        face_coverage = float(np.mean(face_seen)) if face_seen else 0.0
        warnings = list(feats.warnings)

        def shown(p: np.ndarray | None, a: np.ndarray | None, f: np.ndarray | None) -> np.ndarray | None:
            """A pair's held answer calibrated as an answer, once; a lone branch's reading as it is."""
            if p is None or a is None or f is None:
                return p
            return answer_calibrated(p, a, f, cfg.answer_temperature, cfg.answer_floor)

        fused, audio, face = mean_of(fused_p), mean_of(audio_p), mean_of(face_p)
        disagreement = disagree(audio, face, cfg.disagreement_min_p)
        if audio is not None and face is not None:  # the clip's answer, like each window's, held to its evidence
            fused = held_to_evidence(fused, audio, face, cfg.split_pool_weight)
        fused = shown(fused, audio, face)
        modalities = tuple(m for m, p in (("audio", audio), ("face", face)) if p is not None)
        timeline = []
        for i, (a, b) in enumerate(feats.windows):
            p = shown(fused_p[i], audio_p[i], face_p[i])
            timeline.append(WindowResult(round(a, 3), round(b, 3), None if p is None else names[int(np.argmax(p))],
                                         0.0 if p is None else round(float(np.max(p)), 4), as_dict(p),
                                         as_dict(audio_p[i]), as_dict(face_p[i]),
                                         face_seen[i], speech_seen[i] > 0,
                                         disagree(audio_p[i], face_p[i], cfg.disagreement_min_p)))
        if fused is None:
            label, confidence, second, not_sure = None, 0.0, None, True
            warnings = nothing_used(warnings)
        else:
            order = np.argsort(fused)[::-1]
            label, second = names[int(order[0])], names[int(order[1])]
            confidence = float(fused[order[0]])
            # an emotion that neither branch reads first is no answer either, whatever its share
            unranked = audio is not None and face is not None and int(order[0]) not in (int(np.argmax(audio)),
                                                                                        int(np.argmax(face)))
            not_sure = disagreement or unranked or confidence < cfg.not_sure_top_p
        verdict = disagreement_text(audio, face, names) if disagreement else \
            verdict_text(label, confidence, not_sure, second, modalities)
        return Prediction(
            file=name, label=label, confidence=round(confidence, 4),
            verdict=verdict, not_sure=not_sure, disagreement=disagreement,
            fused=as_dict(fused), audio=as_dict(audio), face=as_dict(face), modalities=list(modalities),
            face_coverage=round(face_coverage, 4), speech_present=audio is not None,
            duration_s=round(feats.info_duration_s, 3), warnings=warnings,
            timings_s={k: round(v, 4) for k, v in {**feats.timings_s, **readings.timings_s}.items()},
            timeline=timeline if len(timeline) > 1 else [])

    def predict(self, source: str | Path | DecodedMedia, explain: bool = False, max_duration_s: float | None = None,
                progress: Callable[[float, str], None] | None = None) -> Prediction:
        """Analyse one video or audio file, or media already in memory (`DecodedMedia`: a wave and/or frames with
        their times). Raises EmotionError (with a plain message) for unusable input.

        `max_duration_s` tightens the config's length limit (the web demo takes shorter clips);
        `progress(fraction, words)` is told about each stage.
        """
        report = progress or (lambda fraction, words: None)
        start = time.perf_counter()
        feats = self.preprocess(source, keep_wave=explain, max_duration_s=max_duration_s, progress=report)
        report(0.86, "Weighing voice and face")
        name = source.display_name if isinstance(source, DecodedMedia) else display_name(source)
        pred = self.answer(name, feats, explain, report)
        pred.timings_s["total"] = round(time.perf_counter() - start, 4)
        return pred

    def answer(self, name: str, feats: Features, explain: bool = False,
               progress: Callable[[float, str], None] | None = None) -> Prediction:
        """Steps 2 and 3 (and the "why" with `explain`, which needs `feats.wave`) on what the branches read: an
        upload's features, or a live stream's (emotion.live), judged by the same models and rules."""
        readings = self.forward(feats)
        pred = self.postprocess(name, feats, readings)
        if explain:
            from .explain import explain_prediction

            report = progress or (lambda fraction, words: None)
            report(0.93, "Explaining the answer")
            t = time.perf_counter()
            pred.explanation = explain_prediction(self, feats, readings.of("face"),
                                                  None if pred.disagreement else pred.label, report)
            pred.timings_s["explain"] = round(time.perf_counter() - t, 4)
        return pred
