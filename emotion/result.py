"""Typed results: a Prediction per file, a WindowResult per window of a long clip."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

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
    timeline: list[WindowResult] = field(default_factory=list)
    explanation: Any = field(default=None, repr=False)  # an Explanation, for the "why" plots

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: plain floats, lists and strings (the explanation's arrays are left out)."""
        out = dataclasses.asdict(dataclasses.replace(self, explanation=None))
        out.pop("explanation")
        return out

    def __str__(self) -> str:
        return f"{self.file}: {self.verdict}"
