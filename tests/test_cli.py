"""The command line on real files: JSON lines, CSV, one stderr line per unreadable file, exit status."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

from conftest import MEAD, RAVDESS, ROOT


def test_cli_two_good_files_and_one_bad(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_text("definitely not a video")
    out_csv = tmp_path / "out.csv"
    files = [str(MEAD / "W009_front_happy_level3_001.mp4"), str(bad),
             str(RAVDESS / "Actor_19" / "03-01-04-01-01-01-19.flac")]
    run = subprocess.run([sys.executable, "-m", "emotion", "predict", *files, "--json", "--csv", str(out_csv)],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 1
    results = [json.loads(line) for line in run.stdout.strip().splitlines()]  # one line per input, in order
    assert [r["file"] for r in results] == ["W009_front_happy_level3_001.mp4", "broken.mp4",
                                            "03-01-04-01-01-01-19.flac"]
    assert results[0]["modalities"] == ["face"] and results[2]["modalities"] == ["audio"]
    assert results[1]["code"] == "not_media" and "label" not in results[1]
    err = run.stderr.strip().splitlines()
    assert len(err) == 1 and "broken.mp4" in err[0] and "Traceback" not in run.stderr
    rows = list(csv.DictReader(out_csv.open()))
    assert [r["file"] for r in rows] == ["W009_front_happy_level3_001.mp4", "broken.mp4", "03-01-04-01-01-01-19.flac"]
    assert rows[1]["error"] and not rows[0]["error"]
    assert float(rows[0]["fused_happy"]) + float(rows[0]["fused_sad"]) <= 1.0


def test_cli_all_good_exits_zero():
    run = subprocess.run([sys.executable, "-m", "emotion", "predict", str(MEAD / "W011_front_sad_level3_001.mp4")],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "W011_front_sad_level3_001.mp4:" in run.stdout
    assert run.stderr == ""


def test_cli_all_files_bad_exits_one_with_a_line_each(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    folder = tmp_path / "a_folder.mp4"
    folder.mkdir()
    run = subprocess.run([sys.executable, "-m", "emotion", "predict", str(empty), str(folder), "--json"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 1
    codes = [json.loads(line)["code"] for line in run.stdout.strip().splitlines()]
    assert codes == ["empty_file", "not_a_file"]
    assert len(run.stderr.strip().splitlines()) == 2 and "Traceback" not in run.stderr


def test_cli_unusable_weights_exit_two(tmp_path):
    run = subprocess.run([sys.executable, "-m", "emotion", "predict", str(MEAD / "W011_front_sad_level3_001.mp4"),
                          "--weights", str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.startswith("error: ") and "lacks config.json" in run.stderr and "Traceback" not in run.stderr
