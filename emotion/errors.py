"""The one exception type for problems a user can cause (a bad file, a missing model)."""

from __future__ import annotations


class EmotionError(Exception):
    """A problem with the input or the set-up, with a message a non-programmer understands.

    `code` is a short stable tag (e.g. "not_media", "empty_file") for programs and tests.
    """

    def __init__(self, message: str, code: str = "error") -> None:
        super().__init__(message)
        self.code = code


def as_emotion_error(exc: Exception, subject: str = "This file") -> EmotionError:
    """Any failure while analysing a file, as an EmotionError: itself when it is one, otherwise a plain sentence
    with code "internal" (the caller logs the traceback where someone can read it)."""
    if isinstance(exc, EmotionError):
        return exc
    return EmotionError(f"{subject} could not be analysed because of an unexpected problem "
                        f"({exc.__class__.__name__}); it may be damaged.", code="internal")
