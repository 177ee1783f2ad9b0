"""The six emotions, their order, and how each dataset spells them.

The order of EMOTIONS is the order of every probability vector in the project.
"""

from __future__ import annotations

EMOTIONS: tuple[str, ...] = ("happy", "sad", "angry", "fearful", "disgust", "surprised")

# Plain-language names, for people reading the app.
EMOTION_EMOJI = {
    "happy": "😀", "sad": "😢", "angry": "😠", "fearful": "😨", "disgust": "🤢", "surprised": "😮",
}

# RAVDESS 7-part code, third field. 01 neutral and 02 calm are left out.
RAVDESS_CODES = {"03": "happy", "04": "sad", "05": "angry", "06": "fearful", "07": "disgust", "08": "surprised"}
RAVDESS_DROPPED = {"01", "02"}

# RML (Ryerson Multimedia Lab): the emotion letters in the file name.
RML_CODES = {"ha": "happy", "sa": "sad", "an": "angry", "fe": "fearful", "di": "disgust", "su": "surprised"}

# CREMA-D: third field of 1001_DFA_ANG_XX. NEU is dropped; CREMA-D has no surprise.
CREMAD_CODES = {"HAP": "happy", "SAD": "sad", "ANG": "angry", "FEA": "fearful", "DIS": "disgust"}
CREMAD_DROPPED = {"NEU"}

# MEAD manifest spellings (neutral and contempt are dropped).
MEAD_CODES = {e: e for e in EMOTIONS}
MEAD_DROPPED = {"neutral", "contempt"}

# Taiwanese facial-expression database, 5th character (a is calm/neutral).
TAIWANESE_CODES = {"b": "happy", "c": "sad", "d": "angry", "e": "disgust", "f": "fearful", "g": "surprised"}
TAIWANESE_NEUTRAL = "a"

# JAFFE two-letter code.
JAFFE_CODES = {"HA": "happy", "SA": "sad", "AN": "angry", "FE": "fearful", "DI": "disgust", "SU": "surprised"}
JAFFE_NEUTRAL = "NE"


def index_of(emotion: str) -> int:
    """Position of an emotion in every probability vector."""
    return EMOTIONS.index(emotion)
