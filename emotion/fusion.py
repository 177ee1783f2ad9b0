"""Fusion: an MLP stacker over both branches' probabilities plus a presence mask (PyTorch).

A missing modality enters as zeros with its presence flag at 0, and training drops modalities at random.
Still, with one branch alone the stacker has nothing to combine, and its answer drifted far from that
branch's calibrated probabilities (e.g. a 40% face read became 90%): so `fuse` passes a lone branch's
calibrated probabilities through unchanged, and uses the stacker when both are present.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .calibration import calibrate


def stacker_input(audio_p: np.ndarray | None, face_p: np.ndarray | None, n_classes: int) -> np.ndarray:
    """[audio probabilities, face probabilities, audio present, face present] for one example."""
    zeros = np.zeros(n_classes, dtype=np.float32)
    a = zeros if audio_p is None else np.asarray(audio_p, dtype=np.float32)
    f = zeros if face_p is None else np.asarray(face_p, dtype=np.float32)
    return np.concatenate([a, f, [float(audio_p is not None), float(face_p is not None)]]).astype(np.float32)


class FusionMLP(nn.Module):
    """linear → ReLU → dropout → linear → ReLU → dropout → linear (logits)."""

    def __init__(self, n_classes: int, hidden: int = 32, dropout: float = 0.2) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2 * n_classes + 2, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def logits(self, inputs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.eval()(torch.from_numpy(np.asarray(inputs, dtype=np.float32))).numpy()

    def save(self, path: str) -> None:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, path)

    @classmethod
    def load(cls, path: str, n_classes: int) -> "FusionMLP":
        from safetensors.torch import load_file

        net = cls(n_classes)
        net.load_state_dict(load_file(path))
        return net.eval()


def fuse(stacker: "FusionMLP", audio_p: list, face_p: list, temperature: float, n_classes: int) -> list:
    """Final probabilities per example: the stacker (scaled by `temperature`) when both branches are
    present, the lone branch's probabilities when only one is, None when neither is."""
    out: list = [None] * len(audio_p)
    both = [i for i, (a, f) in enumerate(zip(audio_p, face_p)) if a is not None and f is not None]
    if both:
        x = np.stack([stacker_input(audio_p[i], face_p[i], n_classes) for i in both])
        for i, p in zip(both, calibrate(stacker.logits(x), temperature)):
            out[i] = p
    for i, (a, f) in enumerate(zip(audio_p, face_p)):
        if out[i] is None and (a is not None or f is not None):
            out[i] = np.asarray(a if a is not None else f, dtype=np.float32)
    return out


def disagree(audio_p: np.ndarray | None, face_p: np.ndarray | None, min_p: float) -> bool:
    """Voice and face both read an emotion with real confidence (top probability ≥ `min_p`), and not the same
    one. The stacker never trained on real conflicting clips, so it would turn such a pair into one confident
    answer; the pipeline reports the conflict instead."""
    if audio_p is None or face_p is None:
        return False
    a, f = np.asarray(audio_p), np.asarray(face_p)
    return int(a.argmax()) != int(f.argmax()) and min(float(a.max()), float(f.max())) >= min_p


def within(p: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """`p` capped per emotion at `cap`, the mass cut off given to the other emotions in proportion to their room
    under their own caps (enough whenever the caps sum to ≥ 1). Row by row on (..., emotions) arrays."""
    cap = np.asarray(cap, np.float32)
    p = np.minimum(np.asarray(p, np.float32), cap)
    room = cap - p
    total = room.sum(axis=-1, keepdims=True)
    short = np.maximum(0.0, 1 - p.sum(axis=-1, keepdims=True))
    p = p + np.where(total > 0, short * room / np.where(total > 0, total, 1), 0)
    return p.astype(np.float32)


def evidence_bound(audio_p: np.ndarray, face_p: np.ndarray, pool_weight: float = 0.0) -> np.ndarray:
    """What two branches that rank different emotions first support together. `pool_weight` 0: the mean of
    their calibrated readings (a face happy at 99% and a voice angry at 84% make happy ~51%, angry ~43%).
    Above 0: the log-linear pool p ∝ (voice · face)^pool_weight — an emotion both find plausible beats one only
    one of them sees — with the weight fitted on corpora the models never learnt from (train.run), so its
    confidence is calibrated there; capped per emotion at the stronger of the two readings: never more sure of
    an emotion than the branch most sure of it."""
    a, f = np.asarray(audio_p, np.float32), np.asarray(face_p, np.float32)
    if pool_weight <= 0:
        return ((a + f) / 2).astype(np.float32)
    z = pool_weight * (np.log(np.clip(a, 1e-7, 1)) + np.log(np.clip(f, 1e-7, 1)))
    pooled = np.exp(z - z.max())
    return within(pooled / pooled.sum(), np.maximum(a, f))


def supported(audio_p: np.ndarray, face_p: np.ndarray) -> np.ndarray:
    """Per emotion, the most two agreeing readings support together: 1 − (1 − a)(1 − f), as if each were an
    independent witness (two readings at 60% support 84%; one at 0% adds nothing to the other)."""
    a, f = np.asarray(audio_p, np.float32), np.asarray(face_p, np.float32)
    return (1 - (1 - a) * (1 - f)).astype(np.float32)


def bound(audio_p: np.ndarray, face_p: np.ndarray) -> np.ndarray:
    """The most a pair's answer may give each emotion: `supported` where the branches rank the same emotion
    first, the stronger of the two readings where they do not. Row by row on (..., emotions) arrays."""
    a, f = np.asarray(audio_p, np.float32), np.asarray(face_p, np.float32)
    agree = (a.argmax(axis=-1) == f.argmax(axis=-1))[..., None]
    return np.where(agree, supported(a, f), np.maximum(a, f)).astype(np.float32)


def held_to_evidence(stacked: np.ndarray, audio_p: np.ndarray, face_p: np.ndarray,
                     pool_weight: float = 0.0) -> np.ndarray:
    """The stacker's answer held to what the branches show. Where they rank different emotions first, the
    stacker is not used (`evidence_bound` of the two readings): it learnt on pairs of one emotion, so it turned a
    face happy at 69% and a voice fearful at 43% into "fearful 55%", more than the voice itself said. Where they
    agree, the stacker's probabilities capped per emotion at `supported`. Applying it twice changes nothing (the
    pipeline holds each window's answer and the clip's)."""
    a, f = np.asarray(audio_p, np.float32), np.asarray(face_p, np.float32)
    if int(a.argmax()) != int(f.argmax()):
        return evidence_bound(a, f, pool_weight)
    return within(stacked, supported(a, f))


def answer_calibrated(held: np.ndarray, audio_p: np.ndarray, face_p: np.ndarray, temperature: float = 1.0,
                      floor: float = 0.0) -> np.ndarray:
    """A pair's held answer as shown: sharpened (`temperature` < 1) or softened, then a `floor` share spread
    evenly, then capped again by `bound`. Both fitted where neither branch learnt the corpus (train.run): the
    caps left answers timid in the middle (at ~35%, right 48% of the time) and too sure at the top (at ~95%,
    90%); the two numbers fix both ends and keep the order of the emotions. Applied once to each answer shown
    (not idempotent)."""
    return tempered(np.log(np.clip(np.asarray(held, np.float64), 1e-7, 1.0)), bound(audio_p, face_p), temperature,
                    floor)


def tempered(log_p: np.ndarray, cap: np.ndarray, temperature: float, floor: float) -> np.ndarray:
    """answer_calibrated's steps on log-probabilities and caps already computed (its fit tries ~800 settings on
    the same pairs)."""
    z = log_p / temperature
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    p = p / p.sum(axis=-1, keepdims=True)
    return within((1 - floor) * p + floor / p.shape[-1], cap)


def bounded_fuse(stacker: "FusionMLP", audio_p: list, face_p: list, temperature: float,
                 n_classes: int, pool_weight: float = 0.0) -> list:
    """`fuse`, each pair's answer held to its evidence (`held_to_evidence`)."""
    out = fuse(stacker, audio_p, face_p, temperature, n_classes)
    return [held_to_evidence(p, a, f, pool_weight) if a is not None and f is not None else p
            for p, a, f in zip(out, audio_p, face_p)]
