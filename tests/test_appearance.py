"""The appearance step on real frames: the crop from the landmarker's landmarks, the real expression CNN,
its label order, mirror blindness, and the frames that give no appearance (tiny face, face at the border)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import FACE_MODEL, MEAD, SHARED
from emotion.appearance import APPEARANCE_NAMES, AppearanceModel, face_crop
from emotion.config import PipelineConfig
from emotion.face import FaceTracker, video_blendshapes
from emotion.media import read_frames

CNN = SHARED / "models" / "fer2013-mini-xception" / "emotion_model_quantized.tflite"
CFG = PipelineConfig(appearance_model="fer2013_mini_xception.tflite")


def frame_and_landmarks(clip, at_s: float = 2.0, transform=None):
    import cv2

    _, rgb = next(read_frames(clip, at_s, 0.04, 1, 640))
    if transform is not None:
        rgb = np.ascontiguousarray(transform(rgb))
    with FaceTracker(FACE_MODEL, CFG) as tracker:
        _, _, landmarks = tracker.read(rgb, 0.0)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), landmarks


def test_crop_and_appearance_of_a_real_face():
    grey, landmarks = frame_and_landmarks(MEAD / "W009_front_happy_level3_001.mp4")
    crop = face_crop(grey, landmarks, 40)
    assert crop.shape == (64, 64) and crop.dtype == np.float32 and -1 <= crop.min() < crop.max() <= 1
    p = AppearanceModel(CNN).probabilities([crop])
    assert p.shape == (1, 7) and p.sum() == pytest.approx(1, abs=1e-3)
    # the CNN's own order (angry, disgust, fear, happy, ...) is mapped onto ours: a smile reads as happy
    assert APPEARANCE_NAMES[int(p.argmax())] == "fer_happy"


def test_appearance_is_blind_to_mirroring():
    model = AppearanceModel(CNN)
    grey, landmarks = frame_and_landmarks(MEAD / "W011_front_angry_level3_001.mp4")
    flipped, flipped_landmarks = frame_and_landmarks(MEAD / "W011_front_angry_level3_001.mp4",
                                                     transform=lambda rgb: rgb[:, ::-1])
    crop = face_crop(grey, landmarks, 40)
    a = model.probabilities([crop])[0]
    np.testing.assert_allclose(model.probabilities([np.ascontiguousarray(crop[:, ::-1])])[0], a, atol=1e-6)
    # the mirrored frame: the landmarker's box moves by a pixel or so, the reading stays the same
    b = model.probabilities([face_crop(flipped, flipped_landmarks, 40)])[0]
    assert a.argmax() == b.argmax() and np.abs(a - b).max() < 0.15


def test_frames_without_a_usable_crop_give_no_appearance():
    grey, landmarks = frame_and_landmarks(MEAD / "W009_front_happy_level3_001.mp4")
    assert face_crop(grey, landmarks, min_side_px=1000) is None  # smaller than asked: a tiny face
    shifted = landmarks.copy()
    shifted[:, 0] += 0.6  # most of the face past the right edge
    assert face_crop(grey, shifted, 40) is None
    nudged = landmarks.copy()
    nudged[:, 0] += 0.08  # a little past the edge: padded, still a crop
    assert face_crop(grey, nudged, 40).shape == (64, 64)


def test_clip_sequences_carry_appearance_per_frame(tmp_path):
    windows = video_blendshapes(MEAD / "W009_front_sad_level3_001.mp4", [(0.0, 3.0)], CFG, FACE_MODEL,
                                appearance_path=CNN, timings=(timings := {}))
    seq = windows[0].sequence
    assert seq.shape == (50, 52 + 7) and windows[0].coverage == 1.0
    np.testing.assert_allclose(seq[:, 52:].sum(1), 1.0, atol=1e-3)
    assert timings["appearance"] > 0
    # a 40 px face in a 640×480 frame is below the size limit: no frame counts as showing a face
    from conftest import ffmpeg

    tiny = tmp_path / "tiny_face.mp4"
    ffmpeg("-i", str(MEAD / "W009_front_sad_level3_001.mp4"), "-t", "2", "-vf", "scale=60:60,pad=640:480:300:220",
           "-c:v", "libx264", str(tiny))
    small = video_blendshapes(tiny, [(0.0, 2.0)], CFG, FACE_MODEL, appearance_path=CNN)[0]
    plain = video_blendshapes(tiny, [(0.0, 2.0)], PipelineConfig(), FACE_MODEL)[0]
    assert small.coverage < plain.coverage or plain.coverage == 0


def test_a_dim_crop_is_lifted_to_read_as_the_lit_one():
    from emotion.appearance import lifted

    grey, landmarks = frame_and_landmarks(MEAD / "W009_front_sad_level3_001.mp4")
    lit = np.round((face_crop(grey, landmarks, 40) + 1) * 127.5).astype(np.uint8)
    assert np.array_equal(lifted(lit), lit)  # a lit face is left as it is
    dim = (lit * 0.3).astype(np.uint8)
    assert np.abs(dim.astype(int) - lit).mean() > 50
    assert np.abs(lifted(dim).astype(int) - lifted(lit)).mean() < 12  # brought back to about the lit face
    model = AppearanceModel(CNN)
    a, b = (model.probabilities([x.astype(np.float32) / 127.5 - 1])[0] for x in (lifted(lit), lifted(dim)))
    assert a.argmax() == b.argmax() and np.abs(a - b).max() < 0.1


@pytest.mark.parametrize("clip", ["X_sad_eamm.mp4", "M030_front_sad_level3_001.mp4"])
def test_a_clip_in_a_dim_room_reads_as_its_lit_twin(pipe, tmp_path, clip):
    # the same clip, lit and darkened (luma × 0.3), both re-encoded alike and without sound: the face reads the same
    # emotion (before dim crops were lifted these two read disgust in the dark)
    from conftest import ffmpeg

    faces = []
    for name, light in (("lit", []), ("dark", ["-vf", "lutyuv=y=val*0.3"])):
        out = tmp_path / f"{name}.mp4"
        ffmpeg("-i", str(MEAD / clip), "-an", *light, "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", str(out))
        faces.append(pipe.predict(out).face)
    lit, dark = faces
    assert max(lit, key=lit.get) == max(dark, key=dark.get)
    assert max(abs(lit[e] - dark[e]) for e in lit) < 0.1


def test_tiny_faces_in_the_wild_are_enlarged_before_the_landmarker():
    # FER2013's 48×48 faces: too small for an appearance crop (40 px at least) and for the detector as they are
    import csv

    import cv2

    from emotion.face import enlarge_small, photo_blendshapes

    fer = SHARED / "data" / "faces-fer2013"
    rows = sorted(csv.DictReader(open(fer / "manifest.csv")), key=lambda r: r["file"])
    picked = [r for e in ("angry", "fearful", "happy", "neutral", "sad", "surprised") for r in
              [x for x in rows if x["emotion"] == e][:2]]
    found = [photo_blendshapes(cv2.imread(str(fer / r["file"])), CFG, FACE_MODEL, appearance_path=CNN) for r in picked]
    assert sum(f is not None for f in found) >= 9
    assert all(f.shape == (len(CFG.blendshape_names) + 7,) for f in found if f is not None)
    big = np.zeros((480, 640, 3), np.uint8)
    assert enlarge_small(big) is big  # a frame of ordinary size is left alone


@pytest.mark.parametrize("clip", ["X_happy_eamm.mp4", "W011_front_surprised_level3_001.mp4"])
def test_a_clip_read_from_mid_expression_reads_as_from_its_start(pipe, tmp_path, clip):
    # a clip cut 1.5 s in starts on the expression, with no resting face first (a film scene, a webcam user already
    # smiling): the face names the same emotion as from the clip's start, where the face builds up from rest
    from conftest import ffmpeg

    faces = []
    for name, seek in (("start", []), ("mid", ["-ss", "1.5"])):
        out = tmp_path / f"{name}.mp4"
        ffmpeg(*seek, "-i", str(MEAD / clip), "-an", "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", str(out))
        faces.append(pipe.predict(out).face)
    start, mid = faces
    assert max(start, key=start.get) == max(mid, key=mid.get)
