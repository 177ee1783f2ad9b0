"""Command line:
    python -m emotion predict FILE... [--json] [--csv OUT] [--weights DIR_OR_REPO]
    python -m emotion batch INPUT... --out results.parquet|.csv|.jsonl [--workers N] [--engine local|ray]

A file that cannot be read gets one line on stderr (and a row with its error); the others are still
processed, and the exit status is 1 at the end (for batch: when the output holds any error row). Library log noise (TensorFlow, MediaPipe, ffmpeg) is
hidden unless --verbose.
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

from .names import printable


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m emotion", description="Recognise emotions in video or audio files.")
    sub = p.add_subparsers(dest="command", required=True)
    pr = sub.add_parser("predict", help="analyse files")
    pr.add_argument("files", nargs="+", metavar="FILE")
    pr.add_argument("--json", action="store_true", help="one JSON object per line on stdout")
    pr.add_argument("--csv", metavar="OUT", help="also write one CSV row per file to OUT")
    b = sub.add_parser("batch", help="analyse a whole corpus into one table (resumable, parallel)",
                       description="INPUT: files, folders (walked for media files) or .txt lists of paths.")
    b.add_argument("inputs", nargs="+", metavar="INPUT")
    b.add_argument("--out", required=True, help="results.parquet (a folder of parts), results.csv or results.jsonl")
    b.add_argument("--timeline", action="store_true", help="also one row per window, in OUT's stem + .timeline")
    b.add_argument("--workers", type=int, default=0, help="processes or Ray actors (default: the number of cores)")
    b.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local processes, or Ray Data (a cluster via RAY_ADDRESS; pip install -r requirements-batch.txt)")
    b.add_argument("--retry-errors", action="store_true",
                   help="analyse again the files whose earlier row is an error (a timeout, say); their rows are replaced")
    b.add_argument("--chunk", type=int, default=16, help="rows written at a time (what an interruption may lose)")
    b.add_argument("--threads", type=int, default=None,
                   help="threads per worker for PyTorch, TensorFlow and the decoder (default: their own)")
    for q in (pr, b):
        q.add_argument("--weights", default=None, help="weights folder or Hugging Face repo id (default: shipped weights)")
        q.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit)")
        q.add_argument("--face-model", default=None, help="face_landmarker.task (default: $EMOTION_FACE_MODEL or download)")
        q.add_argument("--verbose", action="store_true", help="show library logs")
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


def predict(args: argparse.Namespace, err: TextIO) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from tqdm import tqdm

    from .errors import EmotionError, as_emotion_error
    from .names import display_name
    from .pipeline import EmotionPipeline
    from .result import file_fields, file_row

    try:
        pipe = EmotionPipeline.from_pretrained(args.weights, revision=args.revision, face_model=args.face_model)
    except EmotionError as exc:
        print(f"error: {exc}", file=err)
        return 2
    if "face" in pipe.problems:
        print(f"note: {pipe.problems['face']} Videos are analysed from the voice only.", file=err)
    failures = 0
    writer = None
    csv_file = open(args.csv, "w", newline="") if args.csv else None
    if csv_file:
        writer = csv.DictWriter(csv_file, fieldnames=list(file_fields(pipe.cfg.emotions)), restval=None)
        writer.writeheader()
    try:
        bar = tqdm(args.files, file=err, disable=len(args.files) < 2 or not err.isatty(), unit="file")
        for path in bar:
            shown = printable(path)
            try:
                pred = pipe.predict(path)
            except Exception as exc:  # one bad file never stops the others
                failures += 1
                if args.verbose and not isinstance(exc, EmotionError):
                    traceback.print_exc(file=err)
                exc = as_emotion_error(exc, display_name(path))
                print(f"error: {shown}: {exc}", file=err)
                if args.json:
                    print(json.dumps({"file": display_name(path), "error": str(exc), "code": exc.code},
                                     ensure_ascii=False), flush=True)
                if writer:
                    writer.writerow(file_row(path, error=exc))
                continue
            d = pred.to_dict()
            if args.json:
                print(json.dumps(d, ensure_ascii=False), flush=True)
            else:
                print(f"{shown}: {pred.verdict}" + "".join(f"\n  note: {w}" for w in pred.warnings), flush=True)
            if writer:
                writer.writerow(file_row(path, pred))
    finally:
        if csv_file:
            csv_file.close()
    return 1 if failures else 0


def batch(args: argparse.Namespace, err: TextIO) -> int:
    from .batch import run_batch
    from .errors import EmotionError

    try:
        counts = run_batch(args.inputs, args.out, args.workers, args.engine, args.timeline, args.chunk, args.weights,
                           args.revision, args.face_model, args.threads, err, retry_errors=args.retry_errors)
    except (ValueError, EmotionError) as exc:
        print(f"error: {exc}", file=err)
        return 2
    print(f"{counts['inputs']} files: {counts['skipped']} already in {printable(args.out)}, {counts['analysed']} "
          f"analysed, {counts['errors']} could not be read", file=err)
    if counts["earlier_errors"]:
        print(f"{counts['earlier_errors']} earlier rows are errors; --retry-errors analyses those files again",
              file=err)
    return 1 if counts["errors"] or counts["earlier_errors"] else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with quiet_stderr(not args.verbose) as err:
        if args.command == "batch":
            return batch(args, err)
        return predict(args, err)


if __name__ == "__main__":
    sys.exit(main())
