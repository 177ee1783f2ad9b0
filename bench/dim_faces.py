"""The appearance CNN on dim faces, with and without the lift of dim crops (`emotion.appearance.lifted`): FER2013 faces
from ../shared, as they are and darkened (×0.3; ×0.3 + 20 for a grey black level), read as the app reads a crop.

    python bench/dim_faces.py [--per-class 150] [--seed 1]

The CNN was trained on FER2013, so the accuracies are optimistic; the gap between lit and dark is the point.
Prints figures; not a test.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("EMOTION_SHARED", ROOT.parent / "shared"))
FER = SHARED / "data" / "faces-fer2013"
LIGHT = {"lit": lambda g: g, "dark x0.3": lambda g: (g * 0.3).astype(np.uint8),
         "dark x0.3 + 20": lambda g: (g * 0.3 + 20).astype(np.uint8)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--per-class", type=int, default=150)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    import cv2

    from emotion.appearance import APPEARANCE_NAMES, CROP_PX, AppearanceModel, lifted

    rows = list(csv.DictReader((FER / "manifest.csv").open()))
    random.Random(args.seed).shuffle(rows)
    taken: dict[str, int] = {}
    sample = []
    for r in rows:
        if taken.get(r["emotion"], 0) < args.per_class:
            taken[r["emotion"]] = taken.get(r["emotion"], 0) + 1
            sample.append(r)
    model = AppearanceModel(ROOT / "weights" / "fer2013_mini_xception.tflite")
    faces = [cv2.resize(cv2.imread(str(FER / r["file"]), cv2.IMREAD_GRAYSCALE), (CROP_PX, CROP_PX),
                        interpolation=cv2.INTER_CUBIC) for r in sample]
    print(f"FER2013 mini-Xception on {len(sample)} FER2013 faces ({args.per_class} per class, seed {args.seed}):")
    for light, darken in LIGHT.items():
        row = []
        for name, read in (("as is", lambda g: g), ("lifted", lifted)):
            crops = [read(darken(g)).astype(np.float32) / 127.5 - 1 for g in faces]
            got = model.probabilities(crops).argmax(1)
            right = np.mean([APPEARANCE_NAMES[k][4:] == r["emotion"] for k, r in zip(got, sample)])
            row.append(f"{name} {100 * right:.1f}%")
        print(f"  {light:15s} " + ", ".join(row))


if __name__ == "__main__":
    main()
