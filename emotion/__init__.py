"""Multimodal emotion recognition from a short video: voice (CNN), face (LSTM) and both (MLP stacker)."""

from .decoded import DecodedMedia
from .errors import EmotionError
from .labels import EMOTIONS

__all__ = ["EMOTIONS", "DecodedMedia", "EmotionError", "EmotionPipeline", "Prediction"]


def __getattr__(name: str):
    # Heavy imports (torch, TensorFlow, MediaPipe) only when the pipeline is asked for.
    if name == "EmotionPipeline":
        from .pipeline import EmotionPipeline

        return EmotionPipeline
    if name == "Prediction":
        from .result import Prediction

        return Prediction
    raise AttributeError(name)
