"""Command line: python -m emotion predict FILE... [--json] [--csv OUT] [--weights DIR_OR_REPO]

A file that cannot be read gets one line on stderr; the others are still processed, and the exit
status is 1 at the end. Library log noise (TensorFlow, MediaPipe, ffmpeg) is hidden unless --verbose.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import sys
import traceback
from typing import TextIO

from .labels import EMOTIONS


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m emotion", description="Recognise emotions in video or audio files.")
    sub = p.add_subparsers(dest="command", required=True)
    pr = sub.add_parser("predict", help="analyse files")
    pr.add_argument("files", nargs="+", metavar="FILE")
    pr.add_argument("--json", action="store_true", help="one JSON object per line on stdout")
    pr.add_argument("--csv", metavar="OUT", help="also write one CSV row per file to OUT")
    pr.add_argument("--weights", default=None, help="weights folder or Hugging Face repo id (default: shipped weights)")
    pr.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit)")
    pr.add_argument("--face-model", default=None, help="face_landmarker.task (default: $EMOTION_FACE_MODEL or download)")
    pr.add_argument("--verbose", action="store_true", help="show library logs")
    return p.parse_args(argv)


@contextlib.contextmanager
def quiet_stderr(enabled: bool):
    """Send fd 2 (where C++ libraries log) to /dev/null; yield a stream to the real stderr."""
    if not enabled:
        yield sys.stderr
        return
    sys.stderr.flush()
    saved = os.dup(2)
    real = os.fdopen(os.dup(saved), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield real
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
        real.close()


CSV_FIELDS = ["file", "label", "confidence", "not_sure", "verdict", "modalities", "face_coverage", "speech_present",
              "duration_s", *[f"fused_{e}" for e in EMOTIONS], *[f"audio_{e}" for e in EMOTIONS],
              *[f"face_{e}" for e in EMOTIONS], "warnings", "error"]


def csv_row(d: dict) -> dict:
    row = {k: d.get(k) for k in CSV_FIELDS if k in d}
    row["modalities"] = "+".join(d.get("modalities", []))
    row["warnings"] = " | ".join(d.get("warnings", []))
    for branch in ("fused", "audio", "face"):
        for e in EMOTIONS:
            row[f"{branch}_{e}"] = (d.get(branch) or {}).get(e, "")
    return row


def predict(args: argparse.Namespace, err: TextIO) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from tqdm import tqdm

    from .errors import EmotionError
    from .media import display_name, printable
    from .pipeline import EmotionPipeline

    try:
        pipe = EmotionPipeline.from_pretrained(args.weights, revision=args.revision, face_model=args.face_model)
    except EmotionError as exc:
        print(f"error: {exc}", file=err)
        return 2
    if pipe.face_model_problem:
        print(f"note: {pipe.face_model_problem} Videos are analysed from the voice only.", file=err)
    failures = 0
    writer = None
    csv_file = open(args.csv, "w", newline="") if args.csv else None
    if csv_file:
        writer = csv.DictWriter(csv_file, fieldnames=CSV_FIELDS)
        writer.writeheader()
    try:
        bar = tqdm(args.files, file=err, disable=len(args.files) < 2 or not err.isatty(), unit="file")
        for path in bar:
            shown = printable(path)
            try:
                pred = pipe.predict(path)
            except Exception as exc:  # one bad file never stops the others
                failures += 1
                if not isinstance(exc, EmotionError):
                    if args.verbose:
                        traceback.print_exc(file=err)
                    exc = EmotionError(f"{display_name(path)} could not be analysed because of an unexpected "
                                       f"problem ({exc.__class__.__name__}); it may be damaged.", code="internal")
                print(f"error: {shown}: {exc}", file=err)
                if args.json:
                    print(json.dumps({"file": display_name(path), "error": str(exc), "code": exc.code},
                                     ensure_ascii=False), flush=True)
                if writer:
                    writer.writerow({"file": display_name(path), "error": str(exc)})
                continue
            d = pred.to_dict()
            if args.json:
                print(json.dumps(d, ensure_ascii=False), flush=True)
            else:
                print(f"{shown}: {pred.verdict}" + "".join(f"\n  note: {w}" for w in pred.warnings), flush=True)
            if writer:
                writer.writerow(csv_row(d))
    finally:
        if csv_file:
            csv_file.close()
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with quiet_stderr(not args.verbose) as err:
        return predict(args, err)


if __name__ == "__main__":
    sys.exit(main())
