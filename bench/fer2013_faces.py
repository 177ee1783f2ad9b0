"""How many FER2013 faces (48×48 grey, cropped tight) the Face Landmarker finds, by how they are enlarged before
it: the first step of training the face on faces in the wild (#28). Each photo is read as training reads photos
(`emotion.face.photo_blendshapes`: a fresh tracker, the photo fed as 4 frames).

    python bench/fer2013_faces.py [--per-class 60] [--seed 0]

Prints the share found per variant and per class; not a test.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("EMOTION_SHARED", ROOT.parent / "shared"))
FER = SHARED / "data" / "faces-fer2013"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--per-class", type=int, default=60)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    import cv2

    from emotion.config import PipelineConfig
    from emotion.face import enlarge_small, photo_blendshapes

    cfg = PipelineConfig.from_json(ROOT / "weights" / "config.json")
    model = SHARED / "models" / "face_landmarker.task"
    rows = list(csv.DictReader((FER / "manifest.csv").open()))
    by_class: dict[str, list[str]] = {}
    for r in rows:
        by_class.setdefault(r["emotion"], []).append(r["file"])
    rng = random.Random(args.seed)
    sample = [(e, f) for e, files in sorted(by_class.items()) for f in rng.sample(files, min(args.per_class, len(files)))]
    variants = {"48 px as is": (48, 0.0), "96 px": (96, 0.0), "192 px": (192, 0.0), "192 px + 25% border": (192, 0.25),
                "256 px + 40% border": (256, 0.4)}
    print(f"FER2013 ({len(rows)} faces in ../shared), {len(sample)} sampled ({args.per_class} per class, seed {args.seed}):")
    for name, (side, margin) in variants.items():
        found: dict[str, list[bool]] = {}
        t = time.perf_counter()
        for emotion, file in sample:
            grey = cv2.imread(str(FER / file), cv2.IMREAD_GRAYSCALE)
            bgr = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
            img = enlarge_small(bgr, side, margin) if side != 48 else bgr
            found.setdefault(emotion, []).append(photo_blendshapes(img, cfg, model, enlarge=side != 48) is not None)
        every = [x for v in found.values() for x in v]
        per = ", ".join(f"{e} {100 * sum(v) / len(v):.0f}%" for e, v in found.items())
        print(f"  {name:22s} found {100 * sum(every) / len(every):5.1f}%  ({per}); "
              f"{1000 * (time.perf_counter() - t) / len(sample):.0f} ms per photo")


if __name__ == "__main__":
    main()
