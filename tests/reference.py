"""The shipped pipeline's answers on real clips, kept as a reference: a refactor must not change them.

    python tests/reference.py        # rewrite tests/data/reference_results.json (after a deliberate change)

Every shared MEAD clip and the first RAVDESS file of each of the 20 actors; what is kept is what a user sees:
probabilities, label, verdict, flags, warnings, windows (not timings).
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import FACE_MODEL, MEAD, RAVDESS, ROOT  # tests/ is on the path, run as a script or by pytest

HERE = Path(__file__).resolve().parent


REFERENCE = HERE / "data" / "reference_results.json"


def reference_clips() -> list[Path]:
    return sorted(MEAD.glob("*.mp4")) + [sorted((RAVDESS / f"Actor_{a:02d}").glob("*.flac"))[0] for a in range(1, 21)]


def answer(pipe, clip: Path) -> dict:
    d = pipe.predict(clip).to_dict()
    d.pop("timings_s", None)
    for w in d.get("timeline", []):
        w.pop("timings_s", None)
    return d


def main() -> None:
    from emotion import EmotionPipeline

    pipe = EmotionPipeline.from_pretrained(ROOT / "weights", face_model=FACE_MODEL)
    results = {f"{c.parent.name}/{c.name}": answer(pipe, c) for c in reference_clips()}
    REFERENCE.write_text(json.dumps(results, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
    print(f"{len(results)} answers written to {REFERENCE}")


if __name__ == "__main__":
    main()
