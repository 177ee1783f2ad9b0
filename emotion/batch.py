"""Analyse a whole corpus: python -m emotion batch INPUT... --out results.parquet|.csv|.jsonl

INPUT: files, folders (walked recursively for media files) or text files listing paths (.txt, .lst).
One row per file (the export format of emotion.result: the answer, or the error code and message), and
with --timeline one row per window in a file beside it. Resumable: files already in the output, by path,
size and modification time, are skipped; rows are appended in chunks (Parquet: one part file per chunk
in a folder), so an interruption loses at most one chunk. One bad file never stops the batch.

Engines: `local` runs --workers processes on this machine, each loading the models once; `ray` spreads
the files over a Ray cluster (RAY_ADDRESS) or a local one, one pipeline per actor (Ray is an optional
extra: pip install -r requirements-batch.txt).
"""

from __future__ import annotations

import csv
import json
import os
import re
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

from .names import display_name, printable
from .result import file_fields, file_key, file_row, timeline_fields, timeline_rows

MEDIA_EXT = {".mp4", ".webm", ".mov", ".avi", ".mkv", ".flv", ".m4v", ".mpg", ".mpeg", ".ts", ".3gp", ".wmv",
             ".wav", ".flac", ".mp3", ".m4a", ".ogg", ".opus", ".aac", ".wma", ".aiff"}
LIST_EXT = {".txt", ".lst"}
FORMATS = (".parquet", ".csv", ".jsonl")
PART_NAME = re.compile(r"part-(\d{6})\.parquet")
RAY_OBJECT_STORE_BYTES = 512 * 1024 ** 2  # Ray's default takes ~30% of RAM; rows are tiny, paths go in, rows out


# -- inputs --------------------------------------------------------------------------------------------------

def collect_inputs(inputs: Iterable[str]) -> list[str]:
    """Files as given, folders walked recursively for media files (sorted), lists read line by line
    (blank lines and # comments skipped); each path once, in order. Missing paths are kept: they get an
    error row, so nothing asked for silently disappears."""
    out: list[str] = []
    seen: set[str] = set()

    def add(p: str) -> None:
        if p not in seen:
            seen.add(p)
            out.append(p)

    for given in inputs:
        p = Path(given)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.suffix.lower() in MEDIA_EXT and f.is_file():
                    add(str(f))
        elif p.suffix.lower() in LIST_EXT and p.is_file():
            for line in p.read_text(errors="replace").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    add(str((p.parent / line) if not Path(line).is_absolute() else Path(line)))
        else:
            add(str(p))
    return out


# -- output ------------------------------------------------------------------------------------------------------

class RowWriter:
    """Appends rows to a .jsonl or .csv file, or to a .parquet folder of part files, one chunk at a time.

    Each chunk is one write (flushed and synced; Parquet parts renamed into place), so an interruption
    loses at most the chunk being written; a half-written last line is cut off when the file is reopened.
    It only ever writes into an output it made: an existing file or folder whose header, lines or part
    schemas are not this table's is refused (ValueError, before anything is analysed), never cut or appended to."""

    def __init__(self, path: str | Path, fields: dict[str, type]) -> None:
        self.path = Path(path)
        self.fields = fields
        self.kind = self.path.suffix.lower()
        if self.kind not in FORMATS:
            raise ValueError(f"--out must end in {', '.join(FORMATS)}")
        if self.kind == ".parquet":
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise ValueError("Parquet output needs pyarrow: pip install -r requirements-batch.txt "
                                 "(or write .csv / .jsonl)") from None
        self._check_ours()

    def _foreign(self, why: str) -> ValueError:
        return ValueError(f"{printable(str(self.path))} {why}: it was not written by this tool, so it is left "
                          "untouched. Choose a new output name.")

    def _check_ours(self) -> None:
        """Refuse an existing output this tool did not write; then cut a half-written last line of ours."""
        if not os.path.lexists(self.path):
            return
        if self.kind == ".parquet":
            if not self.path.is_dir():
                raise self._foreign("exists and is a file, not a folder of Parquet parts")
            import pyarrow.parquet as pq

            for entry in self.path.iterdir():
                if entry.name.startswith(".part-") and entry.name.endswith(".tmp"):
                    continue  # a part being written when the run was stopped
                if not (PART_NAME.fullmatch(entry.name) and entry.is_file()):
                    raise self._foreign(f"holds {printable(entry.name)}")
                try:
                    schema = pq.read_schema(entry)
                except Exception:
                    raise self._foreign(f"holds {entry.name}, which is not readable Parquet") from None
                if not schema.equals(arrow_schema(self.fields)):
                    raise self._foreign(f"holds {entry.name}, whose columns are not this table's")
            return
        if not self.path.is_file() or self.path.is_symlink():
            raise self._foreign("exists and is not a plain file")
        data = self.path.read_bytes()
        complete, _, partial = data.rpartition(b"\n")
        lines = complete.split(b"\n") if data.count(b"\n") else []
        if self.kind == ".csv":
            if data and (lines[:1] or [partial])[0].rstrip(b"\r") != ",".join(self.fields).encode():
                raise self._foreign("does not start with this table's header")
        else:
            for number, line in enumerate(lines, 1):
                if not self._our_json(line):
                    raise self._foreign(f"has line {number} that is not one of this table's rows")
            if partial and not lines and not partial.startswith(b'{"' + next(iter(self.fields)).encode() + b'": '):
                raise self._foreign("does not hold this table's rows")
        if partial:
            _cut_partial_line(self.path)
        try:
            for _ in self.rows():
                pass
        except (ValueError, TypeError):
            raise self._foreign("has rows with values that are not this table's") from None

    def _our_json(self, line: bytes) -> bool:
        try:
            row = json.loads(line)
        except ValueError:
            return False
        return isinstance(row, dict) and list(row) == list(self.fields)

    def rows(self) -> Iterator[dict[str, Any]]:
        """The rows already written (to resume)."""
        if self.kind == ".parquet":
            for part in self._parts():
                import pyarrow.parquet as pq

                yield from pq.read_table(part).to_pylist()
        elif self.path.is_file() and self.kind == ".jsonl":
            with self.path.open() as f:
                for line in f:
                    yield json.loads(line)
        elif self.path.is_file():
            with self.path.open(newline="") as f:
                for row in csv.DictReader(f):
                    yield {k: _from_csv(v, self.fields.get(k, str)) for k, v in row.items()}

    def _parts(self) -> list[Path]:
        return sorted(self.path.glob("part-*.parquet")) if self.path.is_dir() else []

    def append(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if self.kind == ".parquet":
            self.path.mkdir(parents=True, exist_ok=True)
            self._write_part(rows)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.is_file() or self.path.stat().st_size == 0
        with self.path.open("a", newline="") as f:
            f.write(self._text(rows, header=new))
            f.flush()
            os.fsync(f.fileno())

    def _text(self, rows: list[dict[str, Any]], header: bool) -> str:
        if self.kind == ".jsonl":
            return "".join(json.dumps({k: r.get(k) for k in self.fields}, ensure_ascii=False) + "\n" for r in rows)
        import io

        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(self.fields))
        if header:
            w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k) for k in self.fields})
        return buf.getvalue()

    def _write_part(self, rows: list[dict[str, Any]]) -> Path:
        import pyarrow as pa
        import pyarrow.parquet as pq

        parts = self._parts()
        n = int(PART_NAME.fullmatch(parts[-1].name).group(1)) + 1 if parts else 0
        table = pa.Table.from_pylist([{k: r.get(k) for k in self.fields} for r in rows], schema=arrow_schema(self.fields))
        tmp = self.path / f".part-{n:06d}.tmp"
        pq.write_table(table, tmp)
        return tmp.replace(self.path / f"part-{n:06d}.parquet")

    def drop(self, unwanted) -> int:
        """Remove the rows for which `unwanted(row)` is true (to redo them); returns how many. The kept rows are
        written whole first and then put in place, so an interruption leaves the old rows or the new ones."""
        rows = list(self.rows())
        kept = [r for r in rows if not unwanted(r)]
        if len(kept) == len(rows):
            return 0
        if self.kind == ".parquet":
            old = self._parts()
            if kept:
                self._write_part(kept)
            for part in old:
                part.unlink()
        else:
            tmp = self.path.with_name(f".{self.path.name}.rewrite")
            tmp.write_text(self._text(kept, header=True) if kept or self.kind == ".csv" else "", newline="")
            tmp.replace(self.path)
        return len(rows) - len(kept)


def arrow_schema(fields: dict[str, type]):
    import pyarrow as pa

    types = {str: pa.string(), float: pa.float64(), int: pa.int64(), bool: pa.bool_()}
    return pa.schema([(k, types[t]) for k, t in fields.items()])


def _from_csv(value: str | None, kind: type) -> Any:
    if value in (None, ""):
        return None
    if kind is bool:
        return value == "True"
    return kind(value)


def _cut_partial_line(path: Path) -> None:
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)


def timeline_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(f"{out.stem}.timeline{out.suffix}")


# -- one file ------------------------------------------------------------------------------------------------------

def analyse(pipe, path: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(file row, timeline rows) for one file; any failure becomes an error row."""
    from .errors import as_emotion_error
    from .names import display_name

    try:
        pred = pipe.predict(path)
    except Exception as exc:  # one bad file never stops the batch
        return file_row(path, error=as_emotion_error(exc, display_name(path))), []
    return file_row(path, pred), timeline_rows(path, pred)


def load_pipeline(weights: str | None, revision: str | None, face_model: str | None, threads: int | None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if threads:  # several workers on one machine: each keeps to its share of the cores
        import tensorflow as tf
        import torch

        torch.set_num_threads(threads)
        os.environ["EMOTION_DECODER_THREADS"] = str(threads)
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    from .pipeline import EmotionPipeline

    return EmotionPipeline.from_pretrained(weights, revision=revision, face_model=face_model)


def check_setup(weights: str | None, revision: str | None, face_model: str | None) -> tuple[str | None, list[str]]:
    """Fail fast, before any worker starts: unusable weights raise EmotionError; a missing face model is
    returned as a note (videos are then judged by the voice alone, and every row says so), beside the weights'
    emotions (the output's probability columns)."""
    from .config import PipelineConfig
    from .errors import EmotionError
    from .hub import resolve_face_model, resolve_weights

    emotions = list(PipelineConfig.from_json(resolve_weights(weights, revision=revision) / "config.json").emotions)
    try:
        resolve_face_model(face_model)
    except EmotionError as exc:
        return f"{exc} Videos are analysed from the voice only.", emotions
    return None, emotions


# -- engines ------------------------------------------------------------------------------------------------------

_WORKER_PIPE = None


def _init_worker(weights, revision, face_model, threads) -> None:
    global _WORKER_PIPE
    _WORKER_PIPE = load_pipeline(weights, revision, face_model, threads)


def _work(path: str):
    return analyse(_WORKER_PIPE, path)


def run_local(paths: list[str], workers: int, model_args: tuple) -> Iterator[tuple[dict, list[dict]]]:
    """Results as they finish: in this process for one worker, else in `workers` processes (spawned, each
    loading the models once), with at most two files per worker in flight."""
    if workers <= 1:
        pipe = load_pipeline(*model_args)
        for p in paths:
            yield analyse(pipe, p)
        return
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                             initargs=model_args) as pool:
        todo = iter(paths)
        pending = set()
        try:
            while True:
                while len(pending) < 2 * workers:
                    nxt = next(todo, None)
                    if nxt is None:
                        break
                    pending.add(pool.submit(_work, nxt))
                if not pending:
                    return
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    yield f.result()
        finally:
            for f in pending:
                f.cancel()


class RayPredictor:
    """A Ray Data actor: one EmotionPipeline, loaded once, for the rows of many batches.

    On a cluster an actor may run on another machine, in another folder, with another environment: it gets
    this package's code and the driver's EMOTION_* settings (runtime_env), absolute paths, and refuses to start when its weights are not
    the driver's (by fingerprint) or when it has no face model while the driver has one: a worker must never
    answer silently with other models."""

    def __init__(self, weights, revision, face_model, threads, fingerprint: str, face_required: bool) -> None:
        import socket

        from .errors import EmotionError
        from .hub import weights_fingerprint

        self.pipe = load_pipeline(weights, revision, face_model, threads)
        where = socket.gethostname()
        mine = weights_fingerprint(self.pipe.weights_dir)
        if mine != fingerprint:
            raise EmotionError(f"A Ray worker on {where} loaded other weights than the driver ({mine[:12]} instead "
                               f"of {fingerprint[:12]}): give every node the same weights (--weights).",
                               code="other_weights")
        if face_required and "face" in self.pipe.problems:
            raise EmotionError(f"A Ray worker on {where} has no face model ({self.pipe.problems['face']}): give "
                               "every node face_landmarker.task (--face-model or EMOTION_FACE_MODEL).",
                               code="no_face_model")

    def __call__(self, batch: dict) -> dict:
        fields = file_fields(self.pipe.cfg.emotions)
        rows = {k: [] for k in fields}
        rows["timeline_json"] = []
        for given, path in zip(batch["path"], batch["absolute"]):
            row, timeline = analyse(self.pipe, str(path))
            row.update(path=str(given), file=display_name(str(given)))  # named as the user named it
            for window in timeline:
                window.update(path=row["path"], file=row["file"])
            for k in fields:
                rows[k].append(row.get(k))
            rows["timeline_json"].append(json.dumps(timeline))
        return rows


def ray_model_args(model_args: tuple) -> tuple:
    """The model arguments as a worker elsewhere can use them: a local weights folder and the face model as
    absolute paths (the driver's EMOTION_FACE_MODEL included), plus the fingerprint of the driver's weights."""
    from .hub import FACE_MODEL_ENV, resolve_weights, weights_fingerprint

    weights, revision, face_model, threads = model_args
    folder = resolve_weights(weights, revision=revision)
    if weights is None or Path(str(weights)).expanduser().is_dir():
        weights = str(folder.resolve())
    face_model = face_model or os.environ.get(FACE_MODEL_ENV)
    if face_model:
        face_model = os.path.abspath(face_model)
    return weights, revision, face_model, threads, weights_fingerprint(folder)


def run_ray(paths: list[str], workers: int, model_args: tuple, fields: dict[str, type],
            face_required: bool = False) -> Iterator[tuple[dict, list[dict]]]:
    """Results from Ray Data: a dataset of paths, mapped by an actor pool of `workers` pipelines."""
    try:
        import ray
    except ImportError:
        raise SystemExit("--engine ray needs Ray: pip install -r requirements-batch.txt") from None
    from .errors import EmotionError

    settings = {k: v for k, v in os.environ.items() if k.startswith("EMOTION_")}
    if not ray.is_initialized():  # (a session started by the caller keeps its own runtime_env)
        job_env = {"env_vars": settings, "py_modules": [str(Path(__file__).parent)]}  # this package's code
        if os.environ.get("RAY_ADDRESS"):
            ray.init(log_to_driver=False, runtime_env=job_env)  # a running cluster
        else:
            ray.init(num_cpus=max(workers, 1), object_store_memory=RAY_OBJECT_STORE_BYTES,
                     include_dashboard=False, log_to_driver=False, runtime_env=job_env)
    if not paths:
        return
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ds = ray.data.from_items([{"path": p, "absolute": os.path.abspath(p)} for p in paths],
                             override_num_blocks=max(1, len(paths)))
    mapped = ds.map_batches(RayPredictor, fn_constructor_args=(*ray_model_args(model_args), face_required),
                            batch_size=1, num_cpus=1, concurrency=max(workers, 1), batch_format="numpy",
                            runtime_env={"env_vars": settings})
    try:
        for row in mapped.iter_rows():
            row = dict(row)
            timeline = json.loads(row.pop("timeline_json"))
            yield {k: _plain(row.get(k)) for k in fields}, timeline
    except Exception as exc:  # a worker that refused to start: its reason, without Ray's traceback
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
        found = re.search(r"(A Ray worker on .*?)(?:\n|$)", text)
        if found:
            raise EmotionError(found.group(1), code="ray_worker") from None
        causes = re.findall(r"^\s*(\w+(?:Error|Exception): .+)$", text, re.M)
        raise EmotionError(f"The Ray workers failed: {(causes or text.strip().splitlines() or ['?'])[-1][:300]}",
                           code="ray_worker") from None


def _plain(value: Any) -> Any:
    """numpy scalars (from Ray's blocks) as plain Python values; NaN as None."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


# -- the command ------------------------------------------------------------------------------------------------------

def run_batch(inputs: list[str], out: str, workers: int = 0, engine: str = "local", timeline: bool = False,
              chunk: int = 16, weights: str | None = None, revision: str | None = None, face_model: str | None = None,
              threads: int | None = None, err=None, retry_errors: bool = False) -> dict[str, int]:
    """Analyse every input not yet in `out` (with `retry_errors`, also those whose earlier row is an error: that
    row is replaced); returns counts (inputs, skipped, analysed, errors, and earlier_errors: error rows kept)."""
    from tqdm import tqdm

    note, emotions = check_setup(weights, revision, face_model)
    if note and err is not None:
        print(f"note: {note}", file=err)
    paths = collect_inputs(inputs)
    writer = RowWriter(out, file_fields(emotions))
    tl_writer = RowWriter(timeline_path(out), timeline_fields(emotions)) if timeline else None
    key = lambda r: (r["path"], r["size_bytes"], None if r["mtime"] is None else round(float(r["mtime"]), 3))
    if retry_errors:
        wanted = set(paths)
        writer.drop(lambda r: r["error_code"] is not None and r["path"] in wanted)
    written = list(writer.rows())
    done = {key(r) for r in written}
    todo = [p for p in paths if file_key(p) not in done]
    workers = workers or os.cpu_count() or 1
    counts = {"inputs": len(paths), "skipped": len(paths) - len(todo), "analysed": 0, "errors": 0,
              "earlier_errors": sum(r["error_code"] is not None for r in written)}
    model_args = (weights, revision, face_model, threads)
    results = run_ray(todo, workers, model_args, writer.fields, face_required=note is None) if engine == "ray" else \
        run_local(todo, workers, model_args)
    rows: list[dict] = []
    windows: list[dict] = []
    last = time.monotonic()
    started = time.monotonic()
    tty = err is not None and err.isatty()
    bar = tqdm(total=len(todo), unit="file", file=err, disable=err is None or not todo, mininterval=0.5 if tty else 10)
    try:
        for row, tl in results:
            rows.append(row)
            windows += tl
            counts["analysed"] += 1
            counts["errors"] += row["error_code"] is not None
            bar.update()
            bar.set_postfix_str(f"{60 * counts['analysed'] / max(time.monotonic() - started, 1e-9):.1f} files/min")
            if len(rows) >= chunk or time.monotonic() - last > 30:
                if tl_writer:
                    tl_writer.append(windows)
                writer.append(rows)  # the file rows last: a file counts as done only with its windows written
                rows, windows, last = [], [], time.monotonic()
    finally:
        if tl_writer:
            tl_writer.append(windows)
        writer.append(rows)
        bar.close()
    return counts
