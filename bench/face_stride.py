"""What the fast reading of long videos does to the face branch, on the shared MEAD clips.

    python bench/face_stride.py [--strides 2 3]

For each clip the face probabilities with all 50 frames read are compared with those from the fast
reading (1 frame in k and all of each window's first and last 5, the rest interpolated; unreferenced
frames not decoded), each run for real through the decoder and the landmarker. Prints figures.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("EMOTION_SHARED", ROOT.parent / "shared"))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--strides", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--weights", default=str(ROOT / "weights"))
    args = p.parse_args()
    from emotion.face import video_blendshapes
    from emotion.media import probe
    from emotion.pipeline import EmotionPipeline, split_windows

    pipe = EmotionPipeline.from_pretrained(args.weights, face_model=SHARED / "models" / "face_landmarker.task")
    cfg, face = pipe.cfg, pipe.branches["face"]
    full, strided = [], {k: [] for k in args.strides}
    for clip in sorted((SHARED / "data" / "mead-clips").glob("*.mp4")):
        windows = split_windows(probe(clip).duration_s, cfg)
        ref = video_blendshapes(clip, windows, cfg, face.landmarker, appearance_path=face.appearance_path)
        if min(w.coverage for w in ref) < cfg.min_face_coverage:
            continue
        full.append(face.model.probabilities(np.stack([w.sequence for w in ref])))
        for k in args.strides:
            cfg.long_video_face_stride = k
            got = video_blendshapes(clip, windows, cfg, face.landmarker, fast=True,
                                    appearance_path=face.appearance_path)
            strided[k].append(face.model.probabilities(np.stack([w.sequence for w in got])))
    ref_p = np.concatenate(full)
    print(f"{len(ref_p)} windows from {len(full)} MEAD clips with a face")
    for k in args.strides:
        p_k = np.concatenate(strided[k])
        diff = np.abs(p_k - ref_p)
        print(f"1 frame in {k} read (and the ends): same top emotion in {np.mean(p_k.argmax(1) == ref_p.argmax(1)):.0%} of windows, "
              f"|delta p| mean {diff.mean():.4f}, max {diff.max():.3f}")


if __name__ == "__main__":
    main()
