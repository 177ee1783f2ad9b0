"""Constants that must agree with MediaPipe, and the config file round trip."""

from __future__ import annotations

import numpy as np

from emotion.config import BLENDSHAPE_NAMES, PipelineConfig, mirror_permutation


def test_blendshape_names_match_mediapipe():
    from mediapipe.tasks.python.vision.face_landmarker import Blendshapes

    assert len(BLENDSHAPE_NAMES) == len(Blendshapes) == 52
    for member in Blendshapes:
        camel = "".join(w.capitalize() for w in member.name.lower().split("_"))
        camel = camel[0].lower() + camel[1:]
        assert BLENDSHAPE_NAMES[member.value] == ("_neutral" if member.name == "NEUTRAL" else camel)


def test_blendshape_names_match_landmarker_output():
    from conftest import FACE_MODEL, MEAD
    import cv2
    from mediapipe.tasks.python.core import base_options
    from mediapipe.tasks.python.vision import face_landmarker
    import mediapipe as mp

    cap = cv2.VideoCapture(str(MEAD / "W009_front_happy_level3_001.mp4"))
    ok, frame = cap.read()
    cap.release()
    options = face_landmarker.FaceLandmarkerOptions(
        base_options=base_options.BaseOptions(model_asset_path=str(FACE_MODEL)), output_face_blendshapes=True)
    with face_landmarker.FaceLandmarker.create_from_options(options) as lm:
        res = lm.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)))
    assert tuple(c.category_name for c in res.face_blendshapes[0]) == BLENDSHAPE_NAMES


def test_mirror_permutation_swaps_left_and_right():
    perm = mirror_permutation()
    names = BLENDSHAPE_NAMES
    assert names[perm[names.index("mouthSmileLeft")]] == "mouthSmileRight"
    assert names[perm[names.index("jawOpen")]] == "jawOpen"
    assert list(np.array(perm)[perm]) == list(range(52))  # swapping twice changes nothing
    assert sum(p != i for i, p in enumerate(perm)) == 2 * sum(n.endswith("Left") for n in names)


def test_config_round_trip(tmp_path):
    cfg = PipelineConfig(n_mfcc=20, mfcc_mean=[0.5] * 20, mfcc_std=[2.0] * 20, temperature_fused=1.7)
    cfg.to_json(tmp_path / "config.json")
    assert PipelineConfig.from_json(tmp_path / "config.json") == cfg
