"""Build 50-frame blendshape sequences for the face LSTM from still photos and real clips.

No video of these photo subjects exists, so a sequence is made in blendshape space: from the same
person's neutral photo to the expressive photo, with random onset and apex timing, a random hold,
noise, speech-like mouth and jaw movement (people talk in the clips the app sees: hand-set by default, or
the movement of real talking clips, motion_bank), blinks, and mirroring.

Real clips seldom start on a neutral face: a film scene or a webcam user already smiling starts mid-expression and
stays there. So besides neutral → peak, sequences start at the expression and hold it, start mid-way, or return
towards neutral (ramp); a photo with no neutral photo of its person (FER2013) gives held sequences only
(held_sequence). The face read must not need a neutral first frame.
"""

from __future__ import annotations

import numpy as np

from emotion.config import BLENDSHAPE_NAMES, feature_mirror

SPEECH_SHAPES = {"jawOpen": 0.35, "mouthClose": 0.1, "mouthFunnel": 0.15, "mouthPucker": 0.15,
                 "mouthLowerDownLeft": 0.15, "mouthLowerDownRight": 0.15, "mouthUpperUpLeft": 0.05,
                 "mouthUpperUpRight": 0.05, "mouthRollLower": 0.08, "mouthShrugUpper": 0.05}
SPEECH_IDX = np.array([BLENDSHAPE_NAMES.index(n) for n in SPEECH_SHAPES])
SPEECH_AMP = np.array(list(SPEECH_SHAPES.values()), dtype=np.float32)


SHAPES = {"held": 0.3, "mid-way": 0.15, "returning": 0.1}  # the rest: neutral → peak


def smoothstep(x: np.ndarray) -> np.ndarray:
    """0 → 1 with zero slope at both ends: how an expression comes and goes."""
    return x * x * (3 - 2 * x)


def ramp(n: int, rng: np.random.Generator) -> np.ndarray:
    """Expression intensity per frame (0 the neutral photo, 1 the expressive one): held from the first frame
    (drifting); starting mid-way and rising; starting at the apex and returning part-way towards neutral; or
    0 until onset, a smooth rise to the apex, then a hold (maybe fading)."""
    t = np.arange(n, dtype=np.float32)
    r = rng.random()
    if r < SHAPES["held"]:  # already expressive from the first frame, as in talking clips
        level = rng.uniform(0.6, 1.0)
        return np.clip(level + rng.normal(0, 0.05, n).cumsum() * 0.1, 0.3, 1.0).astype(np.float32)
    if r < SHAPES["held"] + SHAPES["returning"]:  # the clip starts on the expression, which then eases
        start, end = rng.uniform(0.2 * n, 0.7 * n), rng.uniform(0.4, 0.7)
        x = np.clip((t - start) / max(n - start, 1.0), 0, 1)
        return (1 - (1 - end) * smoothstep(x)).astype(np.float32)
    begin = rng.uniform(0.3, 0.7) if r < SHAPES["held"] + SHAPES["returning"] + SHAPES["mid-way"] else 0.0
    onset = 0.0 if begin else rng.uniform(0, 0.5 * n)
    apex = onset + rng.uniform(0.1 * n, 0.4 * n)
    x = np.clip((t - onset) / max(apex - onset, 1.0), 0, 1)
    curve = begin + (1 - begin) * smoothstep(x)
    fade = rng.uniform(0.0, 0.4) if rng.random() < 0.3 else 0.0
    after = np.clip((t - apex) / max(n - apex, 1.0), 0, 1)
    return (curve * (1 - fade * after)).astype(np.float32)


MOTION_SMOOTH = 5  # frames (~0.4 s): movement faster than this moving average is talking, blinking, jitter


def motion_bank(sequences: list[np.ndarray], smooth: int = MOTION_SMOOTH) -> np.ndarray:
    """(k, frames, 52) the fast movement of real talking-face windows: each blendshape minus its centred moving
    average over `smooth` frames. Speech, blinks and the tracker's jitter as they really are, to be added to the
    photo-built sequences (which have none) instead of movement with hand-set amplitudes; the slow part — the
    expression itself — stays out, so a window's emotion does not travel with its movement."""
    n_shapes = len(BLENDSHAPE_NAMES)
    if not sequences:
        return np.zeros((0, 0, n_shapes), np.float32)
    x = np.stack([s[:, :n_shapes] for s in sequences]).astype(np.float32)
    pad = smooth // 2
    padded = np.pad(x, ((0, 0), (pad, smooth - 1 - pad), (0, 0)), mode="edge")
    kernel = np.ones(smooth, np.float32) / smooth
    trend = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="valid"), 1, padded)
    return (x - trend).astype(np.float32)


def speech_motion(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 52) additive mouth/jaw movement that looks like talking (2–6 Hz at 25 fps-ish sampling): hand-set.
    The default: it measured better than motion_bank's real movement (too few real windows; README)."""
    out = np.zeros((n, len(BLENDSHAPE_NAMES)), dtype=np.float32)
    t = np.arange(n) * 0.08
    for k, (idx, amp) in enumerate(zip(SPEECH_IDX, SPEECH_AMP)):
        freq = rng.uniform(2, 6)
        phase = rng.uniform(0, 2 * np.pi)
        env = np.abs(np.sin(2 * np.pi * freq * t + phase)) * rng.uniform(0.3, 1.0)
        out[:, idx] = amp * env
    return out


BLINK_IDX = np.array([BLENDSHAPE_NAMES.index("eyeBlinkLeft"), BLENDSHAPE_NAMES.index("eyeBlinkRight")])


def blinks(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 52) additive blinks: 0–2 per window, each 1–3 frames of both eyelids closing (0.5–0.9)."""
    out = np.zeros((n, len(BLENDSHAPE_NAMES)), dtype=np.float32)
    for _ in range(rng.integers(0, 3)):
        at, length = rng.integers(n), rng.integers(1, 4)
        out[at:at + length, BLINK_IDX] = rng.uniform(0.5, 0.9)
    return out


def mirror(seq: np.ndarray) -> np.ndarray:
    """The sequence of the mirrored face (see emotion.config.feature_mirror)."""
    return seq[:, feature_mirror(seq.shape[1])]


def photo_sequence(neutral: np.ndarray, peak: np.ndarray, n: int, rng: np.random.Generator,
                   motion: np.ndarray | None = None) -> np.ndarray:
    """One sequence from a neutral photo to an expressive one, with timing, noise and augmentation.

    Every frame feature is blended with the same intensity curve: the blendshapes move from the neutral
    photo's to the peak's, and the appearance (the expression CNN's probabilities) shifts between the two
    crops' readings at the same pace. Half the sequences talk: a random real window's movement from `motion`
    (see motion_bank; scaled 0.5–1.5×) when given, else hand-set mouth movement."""
    return moving(neutral[None, :] + (peak - neutral)[None, :] * ramp(n, rng)[:, None], n, rng, motion)


def held_sequence(peak: np.ndarray, n: int, rng: np.random.Generator, motion: np.ndarray | None = None) -> np.ndarray:
    """A sequence that holds one photo's expression from the first frame to the last, as a clip cut from the
    middle of a scene does: its blendshapes drift slowly (±0.05), with the movement, blinks and noise of
    photo_sequence. For a photo with no neutral photo of its person (FER2013), and as neutral sequences of it."""
    drift = np.cumsum(rng.normal(0, 0.01, (n, peak.size)), axis=0).astype(np.float32)
    drift[:, len(BLENDSHAPE_NAMES):] = 0.0  # the appearance (probabilities) stays the crop's own reading
    return moving(peak[None, :] + np.clip(drift, -0.05, 0.05), n, rng, motion)


def moving(seq: np.ndarray, n: int, rng: np.random.Generator, motion: np.ndarray | None) -> np.ndarray:
    """A built sequence made to look filmed: talking (half), blinks (half), noise, mirroring (half)."""
    if rng.random() < 0.5:
        if motion is not None and len(motion) and motion.shape[1] == n:
            seq[:, :len(BLENDSHAPE_NAMES)] += motion[rng.integers(len(motion))] * rng.uniform(0.5, 1.5)
        else:
            seq[:, :len(BLENDSHAPE_NAMES)] += speech_motion(n, rng)
    if rng.random() < 0.5:
        seq[:, :len(BLENDSHAPE_NAMES)] += blinks(n, rng)
    seq = seq + rng.normal(0, rng.uniform(0.005, 0.03), seq.shape)
    if rng.random() < 0.5:
        seq = mirror(seq)
    return np.clip(seq, 0, 1).astype(np.float32)


def clip_sequence(sequence: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A real clip's sequence with light noise and random mirroring."""
    seq = sequence + rng.normal(0, 0.01, sequence.shape)
    if rng.random() < 0.5:
        seq = mirror(seq)
    return np.clip(seq, 0, 1).astype(np.float32)


def build_photo_set(photos: list[tuple[np.ndarray, str, str, str]], per_photo: int, n_frames: int,
                    rng: np.random.Generator, with_neutral: bool = False, motion: np.ndarray | None = None
                    ) -> tuple[np.ndarray, list[str], list[str], list[str]]:
    """Sequences for every expressive photo: from a neutral photo of its subject (photo_sequence) or, where
    its subject has none (FER2013), holding the expression (held_sequence).

    photos: (blendshapes, emotion or "neutral", subject, path). Returns (X, emotions, subjects, paths).
    with_neutral: also neutral-to-neutral sequences (emotion "neutral"), which teach the face model to
    stay undecided when no expression is shown (neutral is not one of the six). motion: see photo_sequence.
    """
    neutrals: dict[str, list[np.ndarray]] = {}
    for shapes, emotion, subject, _ in photos:
        if emotion == "neutral":
            neutrals.setdefault(subject, []).append(shapes)
    xs, ys, ss, ps = [], [], [], []
    for shapes, emotion, subject, path in photos:
        if emotion == "neutral" and not with_neutral:
            continue
        for _ in range(per_photo):
            own = neutrals.get(subject) if emotion != "neutral" or len(neutrals.get(subject, ())) > 1 else None
            xs.append(photo_sequence(own[rng.integers(len(own))], shapes, n_frames, rng, motion) if own
                      else held_sequence(shapes, n_frames, rng, motion))
            ys.append(emotion)
            ss.append(subject)
            ps.append(path)
    if not xs:
        width = photos[0][0].size if photos else len(BLENDSHAPE_NAMES)
        return np.zeros((0, n_frames, width), np.float32), [], [], []
    return np.stack(xs), ys, ss, ps
