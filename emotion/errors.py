"""The one exception type for problems a user can cause (a bad file, a missing model)."""

from __future__ import annotations


class EmotionError(Exception):
    """A problem with the input or the set-up, with a message a non-programmer understands.

    `code` is a short stable tag (e.g. "not_media", "empty_file") for programs and tests.
    """

    def __init__(self, message: str, code: str = "error") -> None:
        super().__init__(message)
        self.code = code
