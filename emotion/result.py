"""Typed results: a Prediction per file, a WindowResult per window of a long clip."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Sequence

Probabilities = dict[str, float]


@dataclass
class WindowResult:
    """What one window (a few seconds) of the clip shows."""

    start_s: float
    end_s: float
    label: str | None
    confidence: float
    fused: Probabilities | None
    audio: Probabilities | None
    face: Probabilities | None
    face_coverage: float
    speech_present: bool
    disagreement: bool = False  # voice and face read different emotions, both with real confidence


@dataclass
class Prediction:
    """The answer for one file. `label` is the most likely emotion; `not_sure` says when it is a guess."""

    file: str
    label: str | None
    confidence: float
    verdict: str  # the answer in plain words, e.g. "Happy (81%), from voice and face"
    not_sure: bool
    fused: Probabilities | None
    audio: Probabilities | None
    face: Probabilities | None
    modalities: list[str]
    face_coverage: float
    speech_present: bool
    duration_s: float
    warnings: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    # Voice and face read different emotions, both with real confidence: `not_sure` is set, the verdict names
    # both readings, and `fused` is bounded by them (their mean) instead of the stacker's answer.
    disagreement: bool = False
    timeline: list[WindowResult] = field(default_factory=list)
    explanation: Any = field(default=None, repr=False)  # an Explanation, for the "why" plots

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: plain floats, lists and strings (the explanation's arrays are left out)."""
        out = dataclasses.asdict(dataclasses.replace(self, explanation=None))
        out.pop("explanation")
        return out

    def __str__(self) -> str:
        return f"{self.file}: {self.verdict}"


# -- the one export format: a row per file (and, optionally, a row per window) --------------------------------
# Used by `python -m emotion predict --csv` and `python -m emotion batch`, in CSV, JSON lines and Parquet.

def _branch_fields(prefix: str, emotions: Sequence[str]) -> list[str]:
    return [f"{prefix}_{e}" for e in emotions]


def file_fields(emotions: Sequence[str]) -> dict[str, type]:
    """The columns of a file's row, for the emotions of the weights' config (their order)."""
    probs = _branch_fields("fused", emotions) + _branch_fields("audio", emotions) + _branch_fields("face", emotions)
    return {"path": str, "file": str, "size_bytes": int, "mtime": float, "label": str, "confidence": float,
            "not_sure": bool, "disagreement": bool, "verdict": str, "modalities": str, "face_coverage": float,
            "speech_present": bool, "duration_s": float, **{f: float for f in probs},
            "warnings": str, "error_code": str, "error": str}


def timeline_fields(emotions: Sequence[str]) -> dict[str, type]:
    """The columns of a window's row, for the emotions of the weights' config."""
    probs = _branch_fields("fused", emotions) + _branch_fields("audio", emotions) + _branch_fields("face", emotions)
    return {"path": str, "file": str, "start_s": float, "end_s": float, "label": str, "confidence": float,
            **{f: float for f in probs}, "face_coverage": float, "speech_present": bool, "disagreement": bool}


def _probabilities(prefix: str, probs: Probabilities | None) -> dict[str, float | None]:
    return {} if probs is None else {f"{prefix}_{e}": p for e, p in probs.items()}


def file_key(path: str) -> tuple[str, int | None, float | None]:
    """(path, size, mtime): what identifies a file's row (a batch skips files whose key is already written)."""
    import os

    try:
        st = os.stat(path)
        return path, st.st_size, round(st.st_mtime, 3)
    except OSError:
        return path, None, None


def file_row(path: str, pred: Prediction | None = None, error: Exception | None = None,
             size_bytes: int | None = None, mtime: float | None = None) -> dict[str, Any]:
    """One flat row for a file: its answer, or its error (code and message) with the answer's fields empty.
    Size and mtime are read from the file unless given."""
    from .names import display_name

    if size_bytes is None and mtime is None:
        _, size_bytes, mtime = file_key(str(path))
    row: dict[str, Any] = {k: None for k in file_fields(())}  # a writer fills the columns a row lacks with None
    row.update(path=str(path), file=display_name(path), size_bytes=size_bytes, mtime=mtime)
    if pred is not None:
        row.update(label=pred.label, confidence=pred.confidence, not_sure=pred.not_sure,
                   disagreement=pred.disagreement, verdict=pred.verdict,
                   modalities="+".join(pred.modalities), face_coverage=pred.face_coverage,
                   speech_present=pred.speech_present, duration_s=pred.duration_s,
                   warnings=" | ".join(pred.warnings))
        for prefix, probs in (("fused", pred.fused), ("audio", pred.audio), ("face", pred.face)):
            row.update(_probabilities(prefix, probs))
    if error is not None:
        row.update(error_code=getattr(error, "code", "internal"), error=str(error))
    return row


def timeline_rows(path: str, pred: Prediction) -> list[dict[str, Any]]:
    """One row per window of a long clip (none for a clip analysed as one window)."""
    from .names import display_name

    rows = []
    for w in pred.timeline:
        row = {"path": str(path), "file": display_name(path), "start_s": w.start_s, "end_s": w.end_s,
               "label": w.label, "confidence": w.confidence, "face_coverage": w.face_coverage,
               "speech_present": w.speech_present, "disagreement": w.disagreement}
        for prefix, probs in (("fused", w.fused), ("audio", w.audio), ("face", w.face)):
            row.update(_probabilities(prefix, probs))
        rows.append(row)
    return rows
