"""EmotionPipeline: from a media file to a Prediction, in three steps (preprocess, forward, postprocess)."""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .appearance import AppearanceModel
from .audio import AudioModel, prosody_features, speech_level, speech_segments, voice_features, window_features
from .config import PipelineConfig
from .decoded import DecodedMedia
from .errors import EmotionError
from .face import FaceModel, FaceWindow, video_blendshapes
from .calibration import calibrate
from .fusion import FusionMLP, bounded_fuse, disagree, evidence_bound, fuse
from .hub import resolve_face_model, resolve_weights
from .media import load_audio, probe, readable_copy
from .names import display_name
from .result import Prediction, WindowResult

MODALITY_WORDS = {("audio", "face"): "voice and face", ("audio",): "the voice only", ("face",): "the face only"}


def split_windows(duration_s: float, cfg: PipelineConfig) -> list[tuple[float, float]]:
    """One window for a short clip; equal windows of about `window_s` for a longer one."""
    if duration_s <= cfg.single_window_max_s:
        return [(0.0, duration_s)]
    n = math.ceil(duration_s / cfg.window_s)
    edges = np.linspace(0.0, duration_s, n + 1)
    return [(float(a), float(b)) for a, b in zip(edges[:-1], edges[1:])]


@dataclass
class Readings:
    """What the models read in each window: each branch's calibrated probabilities (None where that branch could
    not be used), the fused answer, and how long each model took."""

    audio: list[np.ndarray | None]
    face: list[np.ndarray | None]
    fused: list[np.ndarray | None]
    timings_s: dict[str, float] = field(default_factory=dict)


def calibrated_rows(n: int, rows: list[int], logits: np.ndarray, temperature: float) -> list[np.ndarray | None]:
    """n slots holding the calibrated probabilities of `logits` at `rows` (one per row), None elsewhere."""
    out: list[np.ndarray | None] = [None] * n
    for i, p in zip(rows, calibrate(logits, temperature) if rows else []):
        out[i] = p
    return out


@dataclass
class Features:
    """What preprocessing extracted from one file, window by window."""

    info_duration_s: float
    windows: list[tuple[float, float]]
    mfccs: list[np.ndarray | None]  # None where the window has no speech
    faces: list[FaceWindow] | None  # None when the video has no frames or no face model
    wave: np.ndarray | None = None
    warnings: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    prosody: list[np.ndarray | None] | None = None  # per window with speech, when the voice model reads prosody


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
    return f"{label.capitalize()} ({confidence:.0%}), from {source}"


def disagreement_text(audio: np.ndarray, face: np.ndarray, names: list[str]) -> str:
    """Both readings in words, when they conflict."""
    a, f = int(np.argmax(audio)), int(np.argmax(face))
    return (f"Voice and face disagree: the voice sounds {names[a]} ({audio[a]:.0%}), the face looks {names[f]} "
            f"({face[f]:.0%})")


def _load_weights(path: Path, loader: Callable[[str], object], n_emotions: int | None = None):
    """Load one weights file; anything wrong with it (truncated, wrong shapes, not what it claims to
    be) becomes an EmotionError naming the file (and the config's emotion list, when the sizes disagree)."""
    try:
        return loader(str(path))
    except EmotionError:
        raise
    except Exception as exc:
        words = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else exc.__class__.__name__
        if n_emotions is not None and "size mismatch" in str(exc):
            raise EmotionError(f"The weights file {path.name} does not fit the {n_emotions} emotions listed in "
                               f"config.json (`emotions`): {words}", code="bad_weights") from None
        raise EmotionError(f"The weights file {path.name} cannot be loaded: {words}", code="bad_weights") from None


class EmotionPipeline:
    """Loads the three models and the config once; `predict(path)` answers for one file."""

    def __init__(self, cfg: PipelineConfig, audio: AudioModel, face: FaceModel, fusion: FusionMLP,
                 face_model_path: Path | None, face_model_problem: str | None = None,
                 weights_dir: Path | None = None, appearance_path: Path | None = None) -> None:
        if cfg.appearance_model and appearance_path is None:
            raise ValueError(f"the config names the appearance model {cfg.appearance_model}: pass appearance_path")
        self.cfg = cfg
        self.appearance_path = appearance_path  # the expression CNN (cfg.appearance_model), next to the weights
        self.audio = audio
        self.face = face
        self.fusion = fusion
        self.face_model_path = face_model_path
        self.face_model_problem = face_model_problem
        self.weights_dir = weights_dir

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path | None = None, revision: str | None = None,
                        face_model: str | Path | None = None, cache_dir: str | Path | None = None,
                        warmup: bool = True) -> "EmotionPipeline":
        """Load from a weights folder or a Hub repo id (default: the weights shipped with the package).

        `warmup` runs each model once on dummy input, so the first real request is as fast as the rest.
        """
        folder = resolve_weights(name_or_path, revision=revision, cache_dir=cache_dir)
        cfg = PipelineConfig.from_json(folder / "config.json")
        try:
            face_model_path, problem = resolve_face_model(face_model), None
        except EmotionError as exc:
            face_model_path, problem = None, str(exc)
        appearance = folder / cfg.appearance_model if cfg.appearance_model else None
        if appearance is not None:
            _load_weights(appearance, AppearanceModel)  # present and readable
        n = len(cfg.emotions)
        pipe = cls(cfg, _load_weights(folder / "audio_cnn.safetensors", lambda p: AudioModel.load(p, cfg), n),
                   _load_weights(folder / "face_lstm.keras", lambda p: FaceModel.load(p, cfg), n),
                   _load_weights(folder / "fusion_mlp.safetensors", lambda p: FusionMLP.load(p, n), n),
                   face_model_path, problem, folder, appearance)
        if warmup:
            pipe.warmup()
        return pipe

    def with_config(self, **changes) -> "EmotionPipeline":
        """The same models under a changed config (e.g. a stricter length limit, another threshold)."""
        import dataclasses

        return EmotionPipeline(dataclasses.replace(self.cfg, **changes), self.audio, self.face, self.fusion,
                               self.face_model_path, self.face_model_problem, self.weights_dir, self.appearance_path)

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write the config and the three models into `folder`: exactly what `from_pretrained` reads."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.cfg.validate(folder / "config.json")
        self.cfg.to_json(folder / "config.json")
        self.audio.save(str(folder / "audio_cnn.safetensors"))
        self.face.save(str(folder / "face_lstm.keras"))
        self.fusion.save(str(folder / "fusion_mlp.safetensors"))
        if self.appearance_path is not None:
            import shutil

            for src in (self.appearance_path, *self.appearance_path.parent.glob(f"{Path(self.cfg.appearance_model).stem}*LICENSE*")):
                if Path(src).resolve() != (folder / Path(src).name).resolve():
                    shutil.copyfile(src, folder / Path(src).name)
        return folder

    def warmup(self) -> None:
        """Compile what compiles lazily (librosa's numba code, Keras' predict function), and check that
        each model answers with finite numbers (tampered weights would answer NaN)."""
        cfg = self.cfg
        tone = (0.1 * np.sin(np.arange(cfg.sample_rate) * 0.3)).astype(np.float32)
        voice_features(tone, cfg, gate=False)  # compiles librosa's code
        prosody = prosody_features(tone, cfg)[None] if self.audio.prosody is not None else None
        if cfg.vad_gate or cfg.voice_vad:
            speech_segments(tone, cfg)  # loads the voice-activity detector
        outputs = {"audio_cnn.safetensors": self.audio.logits(np.zeros((1, cfg.voice_rows, cfg.voice_frames), np.float32),
                                                              prosody)}
        outputs["face_lstm.keras"] = self.face.probabilities(  # traces the one graph for every batch size
            np.zeros((1, cfg.frames_per_window, len(cfg.face_feature_names)), np.float32))
        p = np.full(len(cfg.emotions), 1 / len(cfg.emotions), np.float32)
        outputs["fusion_mlp.safetensors"] = fuse(self.fusion, [p], [p], cfg.temperature_fused, len(cfg.emotions))[0]
        for name, out in outputs.items():
            if not np.all(np.isfinite(out)):
                raise EmotionError(f"The weights file {name} gives non-finite outputs (NaN or infinity): it is "
                                   "damaged.", code="bad_weights")

    # -- step 1 ---------------------------------------------------------------------------------
    def preprocess(self, source: str | Path | DecodedMedia, keep_wave: bool = False,
                   max_duration_s: float | None = None,
                   progress: Callable[[float, str], None] | None = None) -> Features:
        """Decode (a file) or check (media in memory) and extract both branches' features. `progress(fraction,
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
            return self._features(source.display_name, source.duration_s(), source.wave_at(cfg.sample_rate),
                                  source.has_video, source, None, keep_wave, timings, report, t)
        info = probe(source, limits=limits)
        with readable_copy(info, limits) as info:
            timings = {"probe": time.perf_counter() - t0}
            report(0.05, "Listening to the voice")
            t = time.perf_counter()
            wave = load_audio(info.path, cfg.sample_rate, max_s=limits.max_duration_s) if info.has_audio else None
            return self._features(display_name(source), info.duration_s or 0.0, wave, info.has_video, info.path,
                                  info.decode_pixels, keep_wave, timings, report, t)

    def _features(self, name: str, duration: float, wave: np.ndarray | None, has_video: bool,
                  frames: str | DecodedMedia, max_pixels: int | None, keep_wave: bool, timings: dict[str, float],
                  report: Callable[[float, str], None], t: float) -> Features:
        """Both branches' features from the decoded sound and a source of frames (a file's path or frames in
        memory): one code path for every kind of input. `t`: when reading the sound began."""
        cfg = self.cfg
        warnings: list[str] = []
        if wave is not None and not has_video:
            duration = wave.size / cfg.sample_rate
        windows = split_windows(duration, cfg) if duration > 0 else []
        mfccs: list[np.ndarray | None] = [None] * len(windows)
        prosody: list[np.ndarray | None] | None = [None] * len(windows) if self.audio.prosody is not None else None
        if wave is None:
            warnings.append("No sound track — the result comes from the face only." if has_video
                            else "The file has no sound.")
        else:
            mfccs, prosody = window_features(wave, windows, cfg, with_prosody=self.audio.prosody is not None)
            if windows and all(m is None for m in mfccs):
                silent = speech_level(wave) < cfg.min_speech_rms
                if has_video:
                    warnings.append("The sound track is silent — the result comes from the face only." if silent
                                    else "No speech found in the sound track (music, noise or a tone?) — the "
                                         "result comes from the face only.")
                else:
                    warnings.append("The sound is silent: there is no voice to judge." if silent else
                                    "No speech found in the sound (music, noise or a tone?): there is no voice "
                                    "to judge.")
        timings["audio_features"] = time.perf_counter() - t

        faces = None
        t = time.perf_counter()
        if has_video and windows:
            if self.face_model_path is None:
                warnings.append(f"Face analysis is off: {self.face_model_problem} Result from the voice only.")
            else:
                report(0.15, "Following the face: 0%")
                faces = video_blendshapes(frames, windows, cfg, self.face_model_path,
                                          fast=duration > cfg.long_video_s, appearance_path=self.appearance_path,
                                          timings=timings, max_pixels=max_pixels,
                                          on_frames=lambda f: report(0.15 + 0.7 * f, f"Following the face: {f:.0%}"))
                if max(f.max_faces for f in faces) > 1:
                    warnings.append("Several faces are visible — the largest one was followed.")
        timings["face_features"] = time.perf_counter() - t
        if not windows:
            raise EmotionError(f"{name} contains nothing that could be decoded; it may be truncated "
                               "or damaged.", code="corrupt")
        return Features(duration, windows, mfccs, faces, wave if keep_wave else None, warnings, timings, prosody)

    # -- step 2 ---------------------------------------------------------------------------------
    def forward(self, feats: Features) -> Readings:
        """Each branch's model on the windows it can read, calibrated, then the stacker. `feats` is not changed."""
        cfg = self.cfg
        n = len(feats.windows)
        timings: dict[str, float] = {}
        t = time.perf_counter()
        speech = [i for i, m in enumerate(feats.mfccs) if m is not None]
        audio_p = calibrated_rows(n, speech, self.audio.logits(
            np.stack([feats.mfccs[i] for i in speech]),
            np.stack([feats.prosody[i] for i in speech]) if feats.prosody else None) if speech else None,
            cfg.temperature_audio)
        timings["audio_model"] = time.perf_counter() - t
        t = time.perf_counter()
        usable = [i for i, f in enumerate(feats.faces or []) if f.coverage >= cfg.min_face_coverage]
        face_p = calibrated_rows(n, usable, self.face.logits(np.stack([feats.faces[i].sequence for i in usable]))
                                 if usable else None, cfg.temperature_face)
        timings["face_model"] = time.perf_counter() - t
        t = time.perf_counter()
        fused_p = bounded_fuse(self.fusion, audio_p, face_p, cfg.temperature_fused, cfg.disagreement_min_p,
                               len(cfg.emotions))
        timings["fusion"] = time.perf_counter() - t
        return Readings(audio_p, face_p, fused_p, timings)

    # -- step 3 ---------------------------------------------------------------------------------
    def postprocess(self, name: str, feats: Features, readings: Readings) -> Prediction:
        """The answer for the input shown as `name`: verdict, probabilities, timeline and warnings."""
        cfg = self.cfg
        audio_p, face_p, fused_p = readings.audio, readings.face, readings.fused
        names = cfg.emotions

        def as_dict(p: np.ndarray | None) -> dict[str, float] | None:
            return None if p is None else {e: round(float(v), 4) for e, v in zip(names, p)}

        def mean_of(ps: list) -> np.ndarray | None:
            present = [p for p in ps if p is not None]
            return np.mean(present, axis=0) if present else None

        coverages = [f.coverage for f in feats.faces] if feats.faces else [0.0]
        face_coverage = float(np.mean(coverages))
        warnings = list(feats.warnings)
        if feats.faces is not None and all(p is None for p in face_p):
            if face_coverage == 0:
                warnings.append("No face found — the result comes from the voice only.")
            else:
                warnings.append(f"A face was visible in only {face_coverage:.0%} of the frames — too little "
                                "to judge; the result comes from the voice only.")
        fused, audio, face = mean_of(fused_p), mean_of(audio_p), mean_of(face_p)
        disagreement = disagree(audio, face, cfg.disagreement_min_p)
        if disagreement:
            fused = evidence_bound(audio, face)
        modalities = tuple(m for m, p in (("audio", audio), ("face", face)) if p is not None)
        timeline = []
        for i, (a, b) in enumerate(feats.windows):
            p = fused_p[i]
            timeline.append(WindowResult(round(a, 3), round(b, 3), None if p is None else names[int(np.argmax(p))],
                                         0.0 if p is None else round(float(np.max(p)), 4), as_dict(p),
                                         as_dict(audio_p[i]), as_dict(face_p[i]),
                                         feats.faces[i].coverage if feats.faces else 0.0, feats.mfccs[i] is not None,
                                         disagree(audio_p[i], face_p[i], cfg.disagreement_min_p)))
        if fused is None:
            label, confidence, second, not_sure = None, 0.0, None, True
            warnings = nothing_used(warnings)
        else:
            order = np.argsort(fused)[::-1]
            label, second = names[int(order[0])], names[int(order[1])]
            confidence = float(fused[order[0]])
            not_sure = disagreement or confidence < cfg.not_sure_top_p
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
        readings = self.forward(feats)
        name = source.display_name if isinstance(source, DecodedMedia) else display_name(source)
        pred = self.postprocess(name, feats, readings)
        pred.timings_s["total"] = round(time.perf_counter() - start, 4)
        if explain:
            from .explain import explain_prediction

            report(0.93, "Explaining the answer")
            pred.explanation = explain_prediction(self, feats, readings.face, None if pred.disagreement else pred.label)
        return pred
