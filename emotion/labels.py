"""The six emotions and their order (how each dataset spells them lives with its adapter in train/datasets).

The order of EMOTIONS is the order of every probability vector in the project.
"""

from __future__ import annotations

EMOTIONS: tuple[str, ...] = ("happy", "sad", "angry", "fearful", "disgust", "surprised")

# Plain-language names, for people reading the app.
EMOTION_EMOJI = {
    "happy": "😀", "sad": "😢", "angry": "😠", "fearful": "😨", "disgust": "🤢", "surprised": "😮",
}


def index_of(emotion: str) -> int:
    """Position of an emotion in every probability vector."""
    return EMOTIONS.index(emotion)
