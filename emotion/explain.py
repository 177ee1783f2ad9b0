"""Why the models decided: the face movements that mattered over time, and the voice's loudness and pitch.

Face: occlusion on the LSTM — how much the predicted emotion's probability drops when one movement
(a Left/Right pair counts as one) is removed, and when a short stretch of frames is blurred to the
clip's median. Voice: loudness (RMS, dB) and pitch (librosa's pyin) beside the per-window voice answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import plotly.graph_objects as go

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
PITCH_MAX_S = 120.0


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
    face_label: str | None = None
    voice_times_s: np.ndarray | None = None
    loudness_db: np.ndarray | None = None
    pitch_hz: np.ndarray | None = None  # NaN where unvoiced


def _face_part(pipe, feats, face_p, expl: Explanation) -> None:
    cfg = pipe.cfg
    used = [i for i, p in enumerate(face_p) if p is not None]
    if not used:
        return
    seqs = np.stack([feats.faces[i].sequence for i in used])  # (W, T, 52)
    probs = np.mean([face_p[i] for i in used], axis=0)
    label = int(np.argmax(probs))
    base = pipe.face.probabilities(seqs)[:, label]
    groups = movement_groups(list(cfg.blendshape_names))
    names = [g for g in groups if g != "neutral"]
    variants = []
    for g in names:
        x = seqs.copy()
        x[:, :, groups[g]] = 0.0
        variants.append(x)
    drops = base[None, :] - pipe.face.probabilities(np.concatenate(variants)).reshape(len(names), len(used), -1)[:, :, label]
    importance = drops.mean(axis=1)
    order = np.argsort(importance)[::-1][:TOP_MOVEMENTS]
    n = seqs.shape[1]
    blocks = []
    starts = list(range(0, n, BLOCK_FRAMES))
    median = np.median(seqs, axis=1, keepdims=True)
    for s in starts:
        x = seqs.copy()
        x[:, s:s + BLOCK_FRAMES] = median
        blocks.append(x)
    block_p = pipe.face.probabilities(np.concatenate(blocks)).reshape(len(starts), len(used), -1)[:, :, label]
    evidence = np.repeat(base[None, :] - block_p, BLOCK_FRAMES, axis=0)[:n].T.reshape(-1)  # (W*T,)
    times = np.concatenate([feats.faces[i].times_s for i in used])
    values = np.concatenate([np.stack([seqs[k][:, groups[names[j]]].mean(1) for j in order]) for k in range(len(used))], axis=1)
    peaks = np.argsort(evidence)[::-1][:3]
    expl.face_times_s = times
    expl.face_movements = [names[j] for j in order]
    expl.face_importance = [float(importance[j]) for j in order]
    expl.face_values = values
    expl.face_evidence = evidence
    expl.face_peak_times_s = sorted(float(times[p]) for p in peaks if evidence[p] > 0)
    expl.face_label = cfg.emotions[label]


def _voice_part(pipe, feats, expl: Explanation, hop: int = 320) -> None:
    import librosa

    cfg = pipe.cfg
    if feats.wave is None or all(m is None for m in feats.mfccs):
        return
    wave = feats.wave[: int(PITCH_MAX_S * cfg.sample_rate)]
    rms = librosa.feature.rms(y=wave, frame_length=1024, hop_length=hop)[0]
    f0, voiced, _ = librosa.pyin(wave, fmin=65, fmax=500, sr=cfg.sample_rate, frame_length=1024, hop_length=hop)
    expl.voice_times_s = librosa.times_like(rms, sr=cfg.sample_rate, hop_length=hop)
    expl.loudness_db = 20 * np.log10(np.maximum(rms, 1e-5))
    expl.pitch_hz = np.where(voiced, f0, np.nan)[: rms.size]


def explain_prediction(pipe, feats, face_p) -> Explanation:
    expl = Explanation()
    _face_part(pipe, feats, face_p, expl)
    _voice_part(pipe, feats, expl)
    return expl


def _not_used(branch: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=f"{branch}: not used for this clip", height=200)
    return fig


def face_figure(expl: Explanation) -> go.Figure:
    """Heatmap of the most telling face movements over time, with the strongest moments marked."""
    if expl.face_values is None:
        return _not_used("Face")
    fig = go.Figure()
    order = np.argsort(expl.face_times_s)
    t = expl.face_times_s[order]
    fig.add_heatmap(x=t, y=expl.face_movements, z=expl.face_values[:, order], colorscale="Viridis", zmin=0, zmax=1,
                    colorbar=dict(title="strength"))
    for p in expl.face_peak_times_s:
        fig.add_vline(x=p, line_color="red", line_dash="dash")
    fig.update_layout(title=f"Face: movements that most support “{expl.face_label}” (red: strongest moments)",
                      xaxis_title="time (s)", yaxis_autorange="reversed", height=360, margin=dict(l=160, r=20, t=50, b=40))
    return fig


def voice_figure(expl: Explanation) -> go.Figure:
    """Loudness and pitch over time (two y axes)."""
    if expl.loudness_db is None:
        return _not_used("Voice")
    fig = go.Figure()
    fig.add_scatter(x=expl.voice_times_s, y=expl.loudness_db, name="loudness (dB)", line=dict(color="#1f77b4"))
    fig.add_scatter(x=expl.voice_times_s, y=expl.pitch_hz, name="pitch (Hz)", yaxis="y2", mode="lines",
                    line=dict(color="#d62728"), connectgaps=False)
    fig.update_layout(title="Voice: loudness and pitch", xaxis_title="time (s)",
                      yaxis=dict(title="loudness (dB)"), yaxis2=dict(title="pitch (Hz)", overlaying="y", side="right"),
                      height=320, margin=dict(l=60, r=60, t=50, b=40))
    return fig
