"""The default emotion list, for new configs. The weights' own list (`emotions` in weights/config.json) is
what every head, export and plot follows; how each dataset spells emotions lives with its adapter in train/.
"""

from __future__ import annotations

# "neutral" (no clear emotion) is the seventh answer since the 2026-12 weights; older weights list six.
EMOTIONS: tuple[str, ...] = ("happy", "sad", "angry", "fearful", "disgust", "surprised", "neutral")
NEUTRAL = "neutral"  # an answer, but not an emotion: the verdict reads "Neutral — no clear emotion"

# Plain-language names, for people reading the app.
EMOTION_EMOJI = {
    "happy": "😀", "sad": "😢", "angry": "😠", "fearful": "😨", "disgust": "🤢", "surprised": "😮", "neutral": "😐",
}

