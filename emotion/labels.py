"""The default emotion list, for new configs. The weights' own list (`emotions` in weights/config.json) is
what every head, export and plot follows; how each dataset spells emotions lives with its adapter in train/.
"""

from __future__ import annotations

EMOTIONS: tuple[str, ...] = ("happy", "sad", "angry", "fearful", "disgust", "surprised")

# Plain-language names, for people reading the app.
EMOTION_EMOJI = {
    "happy": "😀", "sad": "😢", "angry": "😠", "fearful": "😨", "disgust": "🤢", "surprised": "😮", "neutral": "😐",
}

