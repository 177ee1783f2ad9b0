"""Why the models decided: the face movements that mattered over time, and the voice's loudness and pitch.

Face: occlusion on the LSTM — how much the predicted emotion's probability drops when one movement
(a Left/Right pair counts as one) is removed, and when a short stretch of frames is blurred to the
clip's median. Voice: loudness (RMS, dB) and pitch (librosa's pyin) beside the per-window voice answer.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import plotly.graph_objects as go

from .plots import styled

PLAIN_NAMES = {
    "mouthSmile": "smile", "browInnerUp": "inner brows raised", "browDown": "brows lowered (frown)",
    "browOuterUp": "outer brows raised", "jawOpen": "jaw open", "eyeWide": "eyes wide open",
    "eyeSquint": "eyes squinting", "noseSneer": "nose wrinkled", "mouthFrown": "mouth corners down",
    "mouthPress": "lips pressed", "mouthStretch": "lips stretched", "mouthUpperUp": "upper lip raised",
    "mouthLowerDown": "lower lip lowered", "mouthPucker": "lips puckered", "mouthFunnel": "lips funnelled",
    "cheekSquint": "cheeks raised", "eyeBlink": "eyes closing", "cheekPuff": "cheeks puffed",
    "mouthDimple": "dimples", "mouthRollLower": "lower lip rolled in", "mouthRollUpper": "upper lip rolled in",
    "mouthShrugLower": "chin raised", "mouthShrugUpper": "upper lip shrug", "mouthClose": "lips closed",
    "jawForward": "jaw forward", "jaw": "jaw sideways", "mouth": "mouth sideways", "eyeLookDown": "looking down",
    "eyeLookUp": "looking up", "eyeLookIn": "looking sideways (in)", "eyeLookOut": "looking sideways (out)",
    "_neutral": "neutral",
}
TOP_MOVEMENTS = 8
BLOCK_FRAMES = 5
# The occlusion runs the face model ~40 times per window: on a long clip only the windows that support the
# explained emotion most are occluded (their movements and moments are what the plot is about).
OCCLUDED_WINDOWS = 6
PITCH_CHUNK_S = 15.0  # the pitch is tracked piece by piece, so that the progress bar moves on long clips
PITCH_MAX_S = 120.0
LONG_HOP = 800  # samples between pitch frames for sound longer than LONG_VOICE_S (50 ms at 16 kHz; pYIN's
# transition model refuses hops much longer than its 1024-sample frame) ...
LONG_RESOLUTION = 0.25  # ... and pitch bins of a quarter semitone, not a tenth: 7x faster on 90 s, voicing the same
# in 97% of frames, pitch within 0.05 semitone (median); the plot shows half-second steps anyway
FACE_STEP_S = 0.5  # the face heatmap of a clip longer than LONG_VOICE_S shows half-second means (a phone has ~300 px)
EDGE_S = 0.4  # the "strongest moments" are not looked for this close to a window's ends (blurring there says little)
LONG_VOICE_S = 20.0  # longer sound is drawn in half-second steps, not frame by frame
# Calm speech of the training actors (48 neutral and calm RAVDESS clips in ../shared): how far the pitch moves
# (interquartile range, semitones) and how far loud moments rise above the typical level (90th percentile minus
# median of the voiced frames' loudness, dB).
CALM_PITCH_SPREAD_ST = 3.9
CALM_LOUD_BURST_DB = 7.5
# pYIN's prior on its voicing thresholds, Beta(3, 6) (mean 0.33), not librosa's Beta(2, 18) (mean 0.1): on the six
# CREMA-D examples (compressed sound) the default found no voiced frame in three (an empty pitch plot under a voice
# answer); this finds 55-82 on each, at 112-206 Hz for their male actor. On RAVDESS calm speech it moves the two
# figures above by < 0.5 (every 5th neutral or calm clip: pitch spread 3.97 -> 4.00 st, loud moments 6.5 -> 6.9 dB).
VOICING_BETA = (3, 6)


def movement_groups(names: list[str]) -> dict[str, list[int]]:
    """Blendshapes grouped into movements: a Left/Right pair is one movement, in plain words."""
    groups: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        base = n[:-4] if n.endswith("Left") else n[:-5] if n.endswith("Right") else n
        groups.setdefault(PLAIN_NAMES.get(base, base), []).append(i)
    return groups


@dataclass
class Explanation:
    """Arrays behind the "why" plots (None for a branch that was not used)."""

    face_times_s: np.ndarray | None = None
    face_movements: list[str] = field(default_factory=list)  # the most telling ones, most important first
    face_importance: list[float] = field(default_factory=list)
    face_values: np.ndarray | None = None  # (movements, frames) scores over time
    face_evidence: np.ndarray | None = None  # (frames,) how much each moment supports the face answer
    face_peak_times_s: list[float] = field(default_factory=list)
    face_label: str | None = None  # the emotion the face plot explains: the verdict's when there is one
    face_reads: str | None = None  # what the face branch itself reads, when that differs
    voice_times_s: np.ndarray | None = None
    loudness_db: np.ndarray | None = None
    pitch_hz: np.ndarray | None = None  # NaN where unvoiced
    voice_words: str = ""  # the voice's pitch and loudness, in words


def _face_part(pipe, feats, face_p, expl: Explanation, verdict: str | None) -> None:
    cfg = pipe.cfg
    used = [i for i, p in enumerate(face_p) if p is not None]
    if not used:
        return
    faces = feats.of("face").windows
    seqs = np.stack([faces[i].sequence for i in used])  # (W, T, 52)
    probs = np.mean([face_p[i] for i in used], axis=0)
    own = int(np.argmax(probs))
    label = cfg.emotions.index(verdict) if verdict in cfg.emotions else own
    if label != own:
        expl.face_reads = cfg.emotions[own]
    model = pipe.branches["face"].model
    base = model.probabilities(seqs)[:, label]
    occluded = np.sort(np.argsort(base)[::-1][:OCCLUDED_WINDOWS])  # the windows that support `label` most
    x0, b0 = seqs[occluded], base[occluded]
    groups = movement_groups(list(cfg.blendshape_names))
    names = [g for g in groups if g != "neutral"]
    variants = []
    for g in names:
        x = x0.copy()
        x[:, :, groups[g]] = 0.0
        variants.append(x)
    drops = b0[None, :] - model.probabilities(np.concatenate(variants)).reshape(len(names), len(occluded), -1)[:, :, label]
    importance = drops.mean(axis=1)
    order = np.argsort(importance)[::-1][:TOP_MOVEMENTS]
    n = seqs.shape[1]
    blocks = []
    starts = list(range(0, n, BLOCK_FRAMES))
    median = np.median(x0, axis=1, keepdims=True)
    for s in starts:
        x = x0.copy()
        x[:, s:s + BLOCK_FRAMES] = median
        blocks.append(x)
    block_p = model.probabilities(np.concatenate(blocks)).reshape(len(starts), len(occluded), -1)[:, :, label]
    evidence = np.zeros((len(used), n))  # windows not occluded hold no marked moment
    evidence[occluded] = np.repeat(b0[None, :] - block_p, BLOCK_FRAMES, axis=0)[:n].T
    evidence = evidence.reshape(-1)  # (W*T,)
    times = np.concatenate([faces[i].times_s for i in used])
    values = np.concatenate([np.stack([seqs[k][:, groups[names[j]]].mean(1) for j in order]) for k in range(len(used))], axis=1)
    starts_s = np.concatenate([np.full(n, faces[i].start_s) for i in used])
    ends_s = np.concatenate([np.full(n, faces[i].end_s) for i in used])
    inside = (times >= starts_s + EDGE_S) & (times <= ends_s - EDGE_S)
    peaks = np.argsort(np.where(inside, evidence, -np.inf))[::-1][:3]
    expl.face_times_s = times
    expl.face_movements = [names[j] for j in order]
    expl.face_importance = [float(importance[j]) for j in order]
    expl.face_values = values
    expl.face_evidence = evidence
    expl.face_peak_times_s = sorted(float(times[p]) for p in peaks if inside[p] and evidence[p] > 0)
    expl.face_label = cfg.emotions[label]


@dataclass
class VoiceTrack:
    """The voice's loudness and pitch over time (what the voice plot draws), and how they move in words."""

    times_s: np.ndarray
    loudness_db: np.ndarray
    pitch_hz: np.ndarray  # NaN where unvoiced
    words: str


def voice_track(wave: np.ndarray, sr: int, report=None, hop: int = 320) -> VoiceTrack:
    """Loudness and pitch of the first PITCH_MAX_S of `wave`. Needs nothing but the sound, so an analysis that will
    explain works it out while the face is read (emotion.pipeline); `report` hears of each piece of the pitch."""
    import librosa

    report = report or (lambda fraction, words: None)
    wave = wave[: int(PITCH_MAX_S * sr)]
    resolution = 0.1  # pYIN's default
    if wave.size > LONG_VOICE_S * sr:  # shown in half-second steps: pYIN every 50 ms, not 20 ms
        hop, resolution = LONG_HOP, LONG_RESOLUTION  # (it was most of "Explaining the answer" on long clips)
    rms = librosa.feature.rms(y=wave, frame_length=1024, hop_length=hop)[0]
    f0, voiced = pitch_track(wave, sr, hop, report, resolution)
    times = librosa.times_like(rms, sr=sr, hop_length=hop)
    loudness = 20 * np.log10(np.maximum(rms, 1e-5))
    pitch = np.where(voiced, f0, np.nan)[: rms.size]
    words = voice_words(loudness[: pitch.size], pitch)
    if times.size and times[-1] > LONG_VOICE_S:  # half-second steps: loudest moment, median pitch
        step = int(round(0.5 * sr / hop))
        m = rms.size // step * step
        times = times[:m].reshape(-1, step)[:, 0]
        loudness = loudness[:m].reshape(-1, step).max(axis=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN steps (no voiced frame) stay NaN
            pitch = np.nanmedian(pitch[:m].reshape(-1, step), axis=1)
    return VoiceTrack(times, loudness, pitch, words)


def _voice_part(pipe, feats, expl: Explanation, report) -> None:
    if feats.wave is None or not feats.of("audio").usable:
        return
    track = feats.voice_track or voice_track(feats.wave, pipe.cfg.sample_rate, report)
    expl.voice_words = track.words
    expl.voice_times_s, expl.loudness_db, expl.pitch_hz = track.times_s, track.loudness_db, track.pitch_hz


def pitch_track(wave: np.ndarray, sr: int, hop: int, report, resolution: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """pYIN's pitch (Hz) and voicing per `hop`, read in pieces of about PITCH_CHUNK_S (each a whole number of
    hops, with a frame of context on each side so the pieces join as one run would), reporting each piece."""
    import librosa

    chunk = max(1, int(PITCH_CHUNK_S * sr) // hop) * hop
    pad = 1024 // hop * hop + hop  # context beyond the frame half-width (512 samples) of the first and last frame
    f0s, voiced = [], []
    starts = range(0, wave.size, chunk)
    for k, start in enumerate(starts):
        if len(starts) > 1:
            report(0.95 + 0.04 * k / len(starts), "Explaining the answer: the voice's pitch")
        lo = max(0, start - pad)
        piece = wave[lo:start + chunk + pad]
        f, v, _ = librosa.pyin(piece, fmin=65, fmax=500, sr=sr, frame_length=1024, hop_length=hop,
                               resolution=resolution, beta_parameters=VOICING_BETA)
        skip = (start - lo) // hop
        end = skip + chunk // hop if start + chunk < wave.size else None  # the last piece keeps its last frame
        f0s.append(f[skip:end])
        voiced.append(v[skip:end])
    return np.concatenate(f0s), np.concatenate(voiced)


def voice_words(loudness_db: np.ndarray, pitch_hz: np.ndarray) -> str:
    """How the voice moves, compared with calm speech of the training actors, in a sentence or two."""
    voiced = np.isfinite(pitch_hz)
    if voiced.sum() < 10:
        return "Too little voiced sound to describe the pitch."
    semitones = 12 * np.log2(pitch_hz[voiced] / np.median(pitch_hz[voiced]))
    semitones = semitones[np.abs(semitones) < 9]  # octave slips of the pitch tracker
    spread = float(np.percentile(semitones, 75) - np.percentile(semitones, 25)) if semitones.size else 0.0
    loud = loudness_db[voiced]
    burst = float(np.percentile(loud, 90) - np.median(loud))
    pitch = ("a flat, monotone pitch" if spread < 0.75 * CALM_PITCH_SPREAD_ST else
             "a lively, strongly moving pitch" if spread > 1.3 * CALM_PITCH_SPREAD_ST else "an ordinary pitch movement")
    level = ("even loudness" if burst < 0.75 * CALM_LOUD_BURST_DB else
             "loud bursts" if burst > 1.3 * CALM_LOUD_BURST_DB else "ordinary changes in loudness")
    return (f"The voice has {pitch} (it moves over {spread:.1f} semitones; calm speech: about "
            f"{CALM_PITCH_SPREAD_ST:.0f}) and {level} (loud moments {burst:.0f} dB above its usual level; calm "
            f"speech: about {CALM_LOUD_BURST_DB:.0f} dB). Around {float(np.median(pitch_hz[voiced])):.0f} Hz on "
            "average.")


def explain_prediction(pipe, feats, face_p, verdict: str | None = None, progress=None) -> Explanation:
    """The "why" for a prediction; the face part explains `verdict` (the answer shown), else the face's own read.
    `progress(fraction, words)` hears of each step (fractions 0.94 to 0.99)."""
    report = progress or (lambda fraction, words: None)
    expl = Explanation()
    report(0.94, "Explaining the answer: the face's movements")
    _face_part(pipe, feats, face_p, expl, verdict)
    _voice_part(pipe, feats, expl, report)
    return expl


def face_figure(expl: Explanation) -> go.Figure | None:
    """Heatmap of the most telling face movements over time, with the strongest moments marked (None when the
    face was not used)."""
    if expl.face_values is None:
        return None
    fig = go.Figure()
    order = np.argsort(expl.face_times_s)
    t, z = expl.face_times_s[order], expl.face_values[:, order]
    if t.size and t[-1] - t[0] > LONG_VOICE_S:  # half-second means: readable on a phone, light to draw
        step = np.floor((t - t[0]) / FACE_STEP_S).astype(int)
        first = np.flatnonzero(np.r_[True, np.diff(step) > 0])
        z = np.add.reduceat(z, first, axis=1) / np.diff(np.r_[first, t.size])
        t = t[0] + (step[first] + 0.5) * FACE_STEP_S
    # the colour bar lies under the plot, thin: on a phone a bar beside it left ~65 px for the data
    fig.add_heatmap(x=t, y=expl.face_movements, z=z, colorscale="Viridis", zmin=0, zmax=1,
                    colorbar=dict(title=dict(text="strength", side="right"), orientation="h", y=-0.32, yanchor="top",
                                  thickness=10, len=0.5, x=1, xanchor="right"))
    for p in expl.face_peak_times_s:
        fig.add_vline(x=p, line_color="red", line_dash="dash")
    fig.update_layout(title=dict(text=f"Movements behind “{expl.face_label}”<br><sub>red lines: strongest moments</sub>",
                                 x=0, xanchor="left"),
                      xaxis_title="time (s)", yaxis_autorange="reversed", height=400, margin=dict(l=10, r=10, t=70, b=70))
    fig.update_yaxes(automargin=True)
    return styled(fig)


def face_words(expl: Explanation) -> str:
    """What the face plot shows, or why there is none."""
    if expl.face_values is None:
        return "The face was not used for this clip (no face, or too little of it), so there is no face plot."
    top = ", ".join(expl.face_movements[:3])
    words = f"The face plot explains **{expl.face_label}**: the movements that mattered most were {top}."
    if expl.face_reads:
        words += f" (On its own, the face reads *{expl.face_reads}*.)"
    return words


def voice_figure(expl: Explanation) -> go.Figure | None:
    """Loudness and pitch over time, stacked (None when the voice was not used)."""
    if expl.loudness_db is None:
        return None
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    fig.add_scatter(x=expl.voice_times_s, y=expl.loudness_db, name="loudness", line=dict(color="#1f77b4"),
                    row=1, col=1)
    fig.add_scatter(x=expl.voice_times_s, y=expl.pitch_hz, name="pitch", mode="lines", line=dict(color="#d62728"),
                    connectgaps=False, row=2, col=1)
    fig.update_yaxes(title_text="loudness (dB)", row=1, col=1)
    fig.update_yaxes(title_text="pitch (Hz)", row=2, col=1)
    fig.update_xaxes(title_text="time (s)", row=2, col=1)
    fig.update_layout(title=dict(text="Voice: loudness and pitch", x=0, xanchor="left"), showlegend=False,
                      height=360, margin=dict(l=10, r=10, t=50, b=40))
    return styled(fig)
