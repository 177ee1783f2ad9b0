"""Face appearance per frame: a crop taken from the Face Landmarker's own landmarks, read by a small
pretrained facial-expression CNN (mini-Xception trained on FER2013's ~28,000 faces, MIT licence; the
quantized TFLite file ships in weights/).

Blendshapes are geometry only; the CNN sees texture (wrinkles, teeth, eye shape) that geometry misses,
and it has a "neutral" output that tells an expressionless face. Its answer is averaged over the crop and
its mirror image, so it is blind to mirroring like the rest of the face branch. A face too small or too
far outside the frame gives no appearance for that frame (filled in like a frame without a face).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

# The CNN's outputs, in its own order, and where each goes in ours (EMOTIONS + neutral).
FER_ORDER = ("angry", "disgust", "fearful", "happy", "sad", "surprised", "neutral")
APPEARANCE_NAMES = ("fer_happy", "fer_sad", "fer_angry", "fer_fearful", "fer_disgust", "fer_surprised", "fer_neutral")
_TO_OURS = [FER_ORDER.index(n[4:]) for n in APPEARANCE_NAMES]
CROP_PX = 64
MARGIN = 0.15  # added around the landmarks' box on each side: FER2013 crops include the brows and chin
MAX_OUTSIDE = 0.25  # a crop with more than this share outside the frame (a face at the border) is not used
DIM_TARGET, MAX_GAIN = 200, 8.0  # a dim crop is brightened until its 99th percentile reaches 200 (at most 8×): the
# CNN was right on 49% of 1,050 FER2013 faces darkened ×0.3 against 72% lit; lifted, 72% and 72%
# (python bench/dim_faces.py)


def face_crop(grey: np.ndarray, landmarks_xy: np.ndarray, min_side_px: int) -> np.ndarray | None:
    """A 64×64 crop in [-1, 1] of the face whose landmarks (normalised x, y) are given, or None when the face
    is smaller than `min_side_px` or too far outside the frame. Square, with a margin; padded by repeating
    the border where it leaves the frame a little; brightened when dim (lifted)."""
    import cv2

    h, w = grey.shape[:2]
    xs, ys = landmarks_xy[:, 0] * w, landmarks_xy[:, 1] * h
    side = max(xs.max() - xs.min(), ys.max() - ys.min()) * (1 + 2 * MARGIN)
    if side < min_side_px:
        return None
    cx, cy = (xs.max() + xs.min()) / 2, (ys.max() + ys.min()) / 2
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    s = int(round(side))
    inside = max(0, min(w, x0 + s) - max(0, x0)) * max(0, min(h, y0 + s) - max(0, y0))
    if inside < (1 - MAX_OUTSIDE) * s * s:
        return None
    pad = max(0, -x0, -y0, x0 + s - w, y0 + s - h)
    if pad:
        grey = cv2.copyMakeBorder(grey, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0 = x0 + pad, y0 + pad
    crop = cv2.resize(grey[y0:y0 + s, x0:x0 + s], (CROP_PX, CROP_PX), interpolation=cv2.INTER_AREA)
    return lifted(crop).astype(np.float32) / 127.5 - 1.0


def lifted(crop: np.ndarray) -> np.ndarray:
    """A grey crop (uint8) with a dim face brightened: a gain that brings its 99th percentile up to DIM_TARGET, at
    most MAX_GAIN, never below 1 — a face in a dim room reads as the same face lit; a lit one is left as it is,
    and the gain moves smoothly with the light (no threshold to jump across)."""
    gain = min(MAX_GAIN, DIM_TARGET / max(float(np.percentile(crop, 99)), 1.0))
    if gain <= 1.0:
        return crop
    return np.clip(crop.astype(np.float32) * gain, 0, 255).astype(np.uint8)


class AppearanceModel:
    """The FER2013 mini-Xception (TFLite). One per clip or thread: an interpreter is not shared."""

    def __init__(self, path: str | Path) -> None:
        import tensorflow as tf

        with warnings.catch_warnings():  # tf.lite.Interpreter is deprecated in favour of a separate package
            warnings.simplefilter("ignore")
            self._interpreter = tf.lite.Interpreter(model_path=str(path), num_threads=1)
        self._interpreter.allocate_tensors()
        self._in = self._interpreter.get_input_details()[0]["index"]
        self._out = self._interpreter.get_output_details()[0]["index"]

    def _run(self, crop: np.ndarray) -> np.ndarray:
        self._interpreter.set_tensor(self._in, crop[None, :, :, None])
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._out)[0]

    def probabilities(self, crops: list[np.ndarray]) -> np.ndarray:
        """(n, 7) probabilities in APPEARANCE_NAMES order, each the mean over the crop and its mirror image."""
        out = np.zeros((len(crops), len(APPEARANCE_NAMES)), np.float32)
        for i, crop in enumerate(crops):
            p = (self._run(crop) + self._run(np.ascontiguousarray(crop[:, ::-1]))) / 2
            out[i] = p[_TO_OURS]
        return out
