"""python -m emotion batch on real clips: one row per input, the same answers as the single-file CLI, error
rows for bad files, a resumed run after a kill, and Ray Data giving the local engine's rows."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import MEAD, RAVDESS, ROOT
from emotion.batch import RowWriter, collect_inputs, run_batch
from emotion.result import file_fields, timeline_fields

EMOTIONS_SHIPPED = json.loads((ROOT / "weights" / "config.json").read_text())["emotions"]
FILE_FIELDS = file_fields(EMOTIONS_SHIPPED)  # the shipped weights' export columns

CLIPS = [MEAD / "W009_front_happy_level3_001.mp4", MEAD / "W011_front_sad_level3_001.mp4",
         MEAD / "M030_sad_eamm1.mp4", RAVDESS / "Actor_19" / "03-01-04-01-01-01-19.flac"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    (root / "sub").mkdir()
    for i, c in enumerate(CLIPS):
        shutil.copy(c, (root / "sub" if i % 2 else root) / c.name)
    (root / "broken.mp4").write_text("not a video")
    (root / "empty.webm").write_bytes(b"")
    (root / "notes.md").write_text("not media: never listed")
    return root


def rows_by_file(rows):
    return {r["file"]: r for r in rows}


def test_batch_gives_one_row_per_input_with_the_clis_answers(corpus, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text(f"# two inputs from a list, one of them missing\n{CLIPS[0]}\n{tmp_path / 'missing.mp4'}\n")
    out = tmp_path / "results.csv"
    counts = run_batch([str(corpus), str(listing)], str(out), workers=1, timeline=True)
    rows = list(RowWriter(out, FILE_FIELDS).rows())
    names = sorted(r["file"] for r in rows)
    assert names == sorted([c.name for c in CLIPS] + ["broken.mp4", "empty.webm", CLIPS[0].name, "missing.mp4"])
    assert counts == {"inputs": 8, "skipped": 0, "analysed": 8, "errors": 3, "earlier_errors": 0}
    errors = {r["file"]: r["error_code"] for r in rows if r["error_code"]}
    assert errors == {"broken.mp4": "not_media", "empty.webm": "empty_file", "missing.mp4": "not_found"}
    cli = subprocess.run([sys.executable, "-m", "emotion", "predict", *map(str, CLIPS), "--json"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    single = {d["file"]: d for d in map(json.loads, cli.stdout.splitlines())}
    mine = {r["file"]: r for r in rows if r["path"].startswith(str(corpus))}
    for name, d in single.items():
        assert mine[name]["label"] == d["label"] and mine[name]["verdict"] == d["verdict"]
        assert mine[name]["fused_sad"] == pytest.approx(d["fused"]["sad"], abs=1e-6)
        assert mine[name]["modalities"] == "+".join(d["modalities"])


def test_collect_inputs_walks_folders_for_media_only(corpus):
    found = collect_inputs([str(corpus), str(corpus / "sub" / CLIPS[1].name)])
    assert len(found) == 6 and not any(p.endswith("notes.md") for p in found)
    assert len(set(found)) == len(found)  # a file named twice is analysed once


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_rows_read_back_as_written(tmp_path, suffix):
    from emotion.errors import EmotionError
    from emotion.result import file_row

    writer = RowWriter(tmp_path / f"r{suffix}", FILE_FIELDS)
    rows = [file_row("/a/b.mp4", error=EmotionError("bad", code="not_media"), size_bytes=3, mtime=1.5),
            file_row("/a/c.mp4", error=EmotionError("worse", code="corrupt"), size_bytes=4, mtime=2.25)]
    writer.append(rows[:1])
    writer.append(rows[1:])
    back = list(RowWriter(tmp_path / f"r{suffix}", FILE_FIELDS).rows())
    assert [(r["path"], r["size_bytes"], r["mtime"], r["error_code"], r["label"]) for r in back] == \
        [("/a/b.mp4", 3, 1.5, "not_media", None), ("/a/c.mp4", 4, 2.25, "corrupt", None)]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_dropped_rows_are_gone_and_the_rest_kept_in_order(tmp_path, suffix):
    from emotion.errors import EmotionError
    from emotion.result import file_row

    out = tmp_path / f"r{suffix}"
    rows = [file_row(f"/a/{i}.mp4", error=EmotionError("x", code="timeout" if i % 2 else "corrupt"), size_bytes=i,
                     mtime=1.0) for i in range(5)]
    RowWriter(out, FILE_FIELDS).append(rows[:3])
    RowWriter(out, FILE_FIELDS).append(rows[3:])
    assert RowWriter(out, FILE_FIELDS).drop(lambda r: r["error_code"] == "timeout") == 2
    again = RowWriter(out, FILE_FIELDS)  # what it rewrote is still its own output
    assert [r["path"] for r in again.rows()] == ["/a/0.mp4", "/a/2.mp4", "/a/4.mp4"]
    again.append([file_row("/a/5.mp4", size_bytes=5, mtime=1.0)])
    assert [r["path"] for r in RowWriter(out, FILE_FIELDS).rows()][-1] == "/a/5.mp4"


def test_interrupted_batch_resumes_without_repeating_or_losing(corpus, tmp_path):
    out = tmp_path / "results.jsonl"
    cmd = [sys.executable, "-m", "emotion", "batch", str(corpus), "--out", str(out), "--workers", "1", "--chunk", "1"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and (not out.exists() or out.read_text().count("\n") < 2):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # as a crash or a pulled plug would
    proc.wait()
    first = [json.loads(line) for line in out.read_text().splitlines()]
    assert 2 <= len(first) < 6  # killed mid-way
    with out.open("a") as f:
        f.write('{"path": "/half/written')  # what a kill during a write could leave
    rerun = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert f"{len(first)} already in" in rerun.stderr
    final = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["path"] for r in final) == sorted(collect_inputs([str(corpus)]))  # each file exactly once
    assert final[:len(first)] == first  # what was written before the kill is kept as it was


@pytest.fixture
def two_node_cluster(tmp_path, monkeypatch):
    """A Ray cluster of a head and a second node, started before the driver from another folder and without the
    driver's EMOTION_FACE_MODEL: as machines of their own would be (their processes share this one's disk)."""
    pytest.importorskip("ray", reason="Ray is an optional extra (requirements-batch.txt); CI installs it")
    import ray
    from ray.cluster_utils import Cluster

    elsewhere = tmp_path / "node-home"
    elsewhere.mkdir()
    face_model = os.environ["EMOTION_FACE_MODEL"]
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("EMOTION_FACE_MODEL")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": 150 * 1024 ** 2,
                                                            "include_dashboard": False})
    cluster.add_node(num_cpus=1, object_store_memory=150 * 1024 ** 2)
    cluster.wait_for_nodes()
    monkeypatch.setenv("EMOTION_FACE_MODEL", face_model)  # set on the driver only
    monkeypatch.setenv("RAY_ADDRESS", cluster.address)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_ray_on_a_two_node_cluster_gives_the_local_engines_rows_and_refuses_other_weights(
        corpus, tmp_path, monkeypatch, two_node_cluster):
    import ray

    import emotion.hub
    from emotion.errors import EmotionError

    monkeypatch.chdir(corpus.parent)  # the driver's folder; inputs relative to it, as a user types them
    given = corpus.name
    local, remote = tmp_path / "local.jsonl", tmp_path / "ray.parquet"
    run_batch([given], str(local), workers=1, timeline=True)
    counts = run_batch([given], str(remote), workers=2, engine="ray", timeline=True)
    assert counts["analysed"] == 6
    nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    assert len(nodes) == 2
    a = rows_by_file(RowWriter(local, FILE_FIELDS).rows())
    b = rows_by_file(RowWriter(remote, FILE_FIELDS).rows())
    assert a.keys() == b.keys()
    assert not any(r["error_code"] == "not_found" for r in b.values())  # relative paths reached the workers
    for name in a:
        for field in ("path", "label", "verdict", "error_code", "modalities", "size_bytes"):
            assert a[name][field] == b[name][field], (name, field)
        for field in ("confidence", "fused_happy", "face_sad", "audio_angry"):
            assert a[name][field] == pytest.approx(b[name][field], abs=1e-6) if a[name][field] is not None \
                else b[name][field] is None
    from emotion.batch import timeline_path
    windows = lambda out: sorted((r["path"], r["start_s"], r["label"]) for r in RowWriter(
        timeline_path(out), timeline_fields(EMOTIONS_SHIPPED)).rows())
    assert windows(local) == windows(remote)
    # A worker whose weights are not the driver's refuses instead of answering (the driver's fingerprint is
    # changed here, in the driver's process only, as if the nodes had other weights).
    monkeypatch.setattr(emotion.hub, "weights_fingerprint", lambda folder: "0" * 64)
    with pytest.raises(EmotionError) as err:
        run_batch([given], str(tmp_path / "other.jsonl"), workers=2, engine="ray")
    assert err.value.code == "ray_worker" and "loaded other weights than the driver" in str(err.value)
    assert not (tmp_path / "other.jsonl").exists()


# -- outputs it did not write, and rows to redo ------------------------------------------------------------------

def foreign_parquet(path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"name": ["a", "b"], "score": [1, 2]}), path)  # what pandas' to_parquet writes


@pytest.mark.parametrize("name, make, words", [
    ("r.jsonl", lambda p: p.write_text('{"id": 1}\n{"id": 2}'), "line 1 that is not one of this table's rows"),
    ("r.jsonl", lambda p: p.write_text("[1, 2]\n"), "line 1 that is not one of this table's rows"),
    ("r.jsonl", lambda p: p.write_text("notes without a newline"), "does not hold this table's rows"),
    ("r.csv", lambda p: p.write_text("name,score\na,1\nb,2"), "does not start with this table's header"),
    ("r.csv", lambda p: p.mkdir(), "is not a plain file"),
    ("r.parquet", foreign_parquet, "is a file, not a folder of Parquet parts"),
    ("r.parquet", lambda p: (p.mkdir(), (p / "notes.txt").write_text("mine")), "holds notes.txt"),
    ("r.parquet", lambda p: (p.mkdir(), foreign_parquet(p / "part-000000.parquet")), "columns are not this table's"),
])
def test_an_output_it_did_not_write_is_refused_before_any_analysis_and_left_as_it_was(tmp_path, name, make, words):
    out = tmp_path / name
    make(out)
    before = {p: p.read_bytes() for p in [out, *out.glob("*")] if p.is_file()}
    started = time.monotonic()
    with pytest.raises(ValueError) as err:
        run_batch([str(CLIPS[0])], str(out), workers=1)
    assert words in str(err.value) and "not written by this tool" in str(err.value)
    assert time.monotonic() - started < 5  # refused before any model was loaded or any file read
    assert {p: p.read_bytes() for p in [out, *out.glob("*")] if p.is_file()} == before


def test_values_that_are_not_this_tables_are_refused_in_our_own_header(tmp_path):
    out = tmp_path / "r.csv"
    RowWriter(out, FILE_FIELDS).append([{"path": "/a.mp4", "size_bytes": 1}])
    out.write_text(out.read_text() + out.read_text().splitlines()[1].replace(",1,", ",one,") + "\n")
    with pytest.raises(ValueError, match="values that are not this table's"):
        RowWriter(out, FILE_FIELDS)


def test_retry_errors_redoes_error_rows_and_the_exit_status_says_when_errors_remain(tmp_path):
    suffix = ".parquet"  # rewriting rows is hardest there (a folder of parts); .jsonl and .csv share RowWriter.drop
    from emotion.__main__ import main
    from emotion.errors import EmotionError
    from emotion.result import file_row

    clip, other = tmp_path / CLIPS[3].name, tmp_path / "other.flac"
    shutil.copy(CLIPS[3], clip)
    shutil.copy(CLIPS[3], other)
    out = tmp_path / f"r{suffix}"
    RowWriter(out, FILE_FIELDS).append([file_row(str(clip), error=EmotionError("slow", code="timeout")),
                                        file_row(str(other), error=EmotionError("slow", code="timeout"))])
    args = ["batch", str(clip), "--out", str(out), "--workers", "1"]
    assert main(args) == 1  # nothing analysed, but the output still holds error rows
    assert [r["error_code"] for r in RowWriter(out, FILE_FIELDS).rows()] == ["timeout", "timeout"]
    assert main([*args, "--retry-errors"]) == 1  # other.flac was not asked for: its error row stays
    rows = {r["path"]: r for r in RowWriter(out, FILE_FIELDS).rows()}
    assert len(rows) == 2 and rows[str(other)]["error_code"] == "timeout"
    assert rows[str(clip)]["error_code"] is None and rows[str(clip)]["label"]
    assert main(["batch", str(clip), str(other), "--out", str(out), "--workers", "1", "--retry-errors"]) == 0
    assert [r["error_code"] for r in RowWriter(out, FILE_FIELDS).rows()] == [None, None]
