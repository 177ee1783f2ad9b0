"""What an adversarial visitor would upload: files longer than their headers say, decompression bombs,
playlists that point at the server's files, odd file types, tampered weights. Each input is made here
with ffmpeg (small and fast) and must get a clear EmotionError or a bounded, correct answer."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from conftest import MEAD, RAVDESS, ROOT, ffmpeg
from emotion import EmotionError
from emotion.media import ffmpeg_exe, ffmpeg_input, load_audio, probe, read_frames

FACE = MEAD / "W011_front_happy_level3_001.mp4"  # 256x256, 4 s, no audio
VOICE = RAVDESS / "Actor_20" / "03-01-03-02-01-01-20.flac"


def make(tmp: Path, name: str, *args: str) -> Path:
    out = tmp / name
    ffmpeg(*args, str(out))
    return out


def limited(pipe, **changes):
    """The same models under a stricter config (e.g. a 10 s length limit)."""
    return pipe.with_config(**changes)


def ffmpeg_children() -> list[int]:
    """ffmpeg processes started by this test process and still alive."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and "ffmpeg" in (stat.parent / "cmdline").read_bytes().decode(errors="replace"):
            if fields[0] != "Z":
                found.append(int(stat.parent.name))
    return found


# -- lengths: what is decoded counts, not what a header says ------------------------------------------

@pytest.fixture(scope="module")
def long_media(tmp_path_factory) -> dict[str, Path]:
    t = tmp_path_factory.mktemp("long")
    tone = ["-f", "lavfi", "-i", "sine=frequency=220:sample_rate=16000"]
    data = bytearray(make(t, "a.mka", *tone, "-t", "60", "-c:a", "libopus").read_bytes())
    at = data.find(b"\x44\x89\x88")  # Matroska's Duration element: an 8-byte float, in milliseconds
    data[at + 3:at + 11] = struct.pack(">d", 2000.0)
    forged = t / "claims_2s.mka"  # its header says 2 s; 60 s of sound follow
    forged.write_bytes(bytes(data))
    return {
        # a browser-style recording: webm without a duration in its header, 2 minutes of sound
        "webm_no_duration": make(t, "rec.webm", *tone, "-t", "120", "-c:a", "libopus", "-live", "1", "-f", "webm"),
        "forged_header": forged,
        # a 4 s video track beside a 60 s sound track: the video alone is within the limit
        "short_video_long_audio": make(t, "mixed.mp4", "-i", str(FACE), "-f", "lavfi", "-i",
                                       "sine=frequency=220:sample_rate=16000:duration=60", "-map", "0:v", "-map", "1:a",
                                       "-c:v", "copy", "-c:a", "aac"),
    }


@pytest.mark.parametrize("case", ["webm_no_duration", "forged_header", "short_video_long_audio"])
def test_length_limit_holds_on_the_longest_stream(pipe, long_media, case):
    with pytest.raises(EmotionError) as err:
        limited(pipe, max_duration_s=10.0).predict(long_media[case])
    assert err.value.code == "too_long" and "10 s" in str(err.value)


def test_forged_header_really_claims_less(long_media):
    # the test above only means something if the header lies
    assert probe(long_media["forged_header"]).header_duration_s < 5


def test_audio_decoding_stops_at_the_limit_and_holds_little(long_media):
    tracemalloc.start()
    try:
        with pytest.raises(EmotionError) as err:
            load_audio(long_media["webm_no_duration"], 16000, max_s=5.0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert err.value.code == "too_long"
    assert peak < 2_000_000  # 5 s of 16 kHz float is 320 kB; the whole 120 s would be 7.7 MB
    assert ffmpeg_children() == []
    wave = load_audio(long_media["webm_no_duration"], 16000, max_s=200.0)
    assert wave.size == pytest.approx(120 * 16000, rel=0.01)  # within the limit, all of it


def test_predict_endpoint_and_analyze_share_the_limit(pipe, long_media):
    # the pipeline's own limit applies when the caller's is looser
    with pytest.raises(EmotionError) as err:
        limited(pipe, max_duration_s=10.0).predict(long_media["short_video_long_audio"], max_duration_s=500)
    assert err.value.code == "too_long"


# -- decompression bombs and deadlines --------------------------------------------------------------

@pytest.mark.parametrize("size, rate, frames, words", [
    ("4608x4608", 1, 2, "4608×4608"),  # a decompression bomb's frame size
    ("1920x1080", 300, 3, "300 frames per second"),  # or its pixel rate
])
def test_huge_frames_and_pixel_rates_are_refused_before_decoding(pipe, tmp_path, size, rate, frames, words):
    bomb = make(tmp_path, "bomb.mp4", "-f", "lavfi", "-i", f"color=c=black:size={size}:rate={rate}", "-frames:v",
                str(frames), "-c:v", "libx264", "-preset", "ultrafast")
    with pytest.raises(EmotionError) as err:
        pipe.predict(bomb)
    assert err.value.code == "too_big_frame" and words in str(err.value)


@pytest.mark.parametrize("copies, words", [(40, "more than 16 streams"), (4, "4 video streams")])
def test_files_with_absurd_stream_counts_are_refused_before_every_stream_is_opened(pipe, tmp_path, copies, words):
    """ffmpeg opens (and decodes a frame of) every stream: 500 copies of a 4K stream cost 4.8 GB. Small here."""
    one = make(tmp_path, "one.mkv", "-f", "lavfi", "-i", "color=c=black:size=64x64:rate=1", "-t", "2",
               "-c:v", "libx264", "-preset", "ultrafast")
    many = make(tmp_path, "many.mkv", "-i", str(one), *["-map", "0:v"] * copies, "-c", "copy")
    with pytest.raises(EmotionError) as err:
        pipe.predict(many)
    assert err.value.code == "too_many_streams" and words in str(err.value)


def wav_claiming(rate: int, channels: int = 1, seconds: float = 1.0) -> bytes:
    """A PCM WAV whose header claims `rate` samples per second (its 32 KB of samples are real)."""
    data = bytes(32000)
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * 2 * channels % 2 ** 32, 2 * channels, 16)
    return b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + struct.pack("<I", 16) + fmt + b"data" + \
        struct.pack("<I", len(data)) + data


@pytest.mark.parametrize("as_track", [False, True])
def test_a_sound_header_claiming_254_mhz_is_refused_at_once(pipe, tmp_path, as_track):
    """The resampler allocates by what the header says: 254,000,003 Hz cost 2.2 GB and 25 s."""
    bomb = tmp_path / "bomb.wav"
    bomb.write_bytes(wav_claiming(254_000_003))
    if as_track:  # the same sound as a video's track: once answered from the face, "No sound track"
        bomb = make(tmp_path, "bomb.mkv", "-i", str(FACE), "-i", str(bomb), "-map", "0:v", "-map", "1:a", "-c", "copy")
    with pytest.raises(EmotionError) as err:
        pipe.predict(bomb)
    assert err.value.code == "bad_audio" and "254,000,003 samples per second" in str(err.value)


def test_a_video_that_grows_its_frames_after_the_first_is_refused_by_the_decoder(pipe, tmp_path):
    """The first header says 32×32; the frames after it are larger: the pixel rate is checked on every decoded
    frame, at the frame rate counted from the packets (made small here with a lower pixel-rate limit)."""
    small = make(tmp_path, "a.h264", "-f", "lavfi", "-i", "testsrc=size=32x32:rate=100", "-frames:v", "1",
                 "-c:v", "libx264", "-preset", "ultrafast", "-bsf:v", "h264_mp4toannexb")
    large = make(tmp_path, "b.h264", "-f", "lavfi", "-i", "testsrc=size=640x480:rate=100", "-frames:v", "150",
                 "-c:v", "libx264", "-preset", "ultrafast")
    joined = tmp_path / "ab.h264"
    joined.write_bytes(small.read_bytes() + large.read_bytes())
    switch = make(tmp_path, "switch.mp4", "-r", "100", "-i", str(joined), "-c", "copy")
    assert probe(switch).width == 32  # what the header says
    strict = limited(pipe, max_pixel_rate=32 * 32 * 100 * 2.0)
    with pytest.raises(EmotionError) as err:
        strict.predict(switch)
    assert err.value.code == "too_big_frame" and "changes to frames larger" in str(err.value)
    assert ffmpeg_children() == []


def test_a_thousand_frames_a_second_is_refused_by_its_packets(pipe, tmp_path):
    fast = make(tmp_path, "fast.mp4", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=1000", "-frames:v", "600",
                "-c:v", "libx264", "-preset", "ultrafast")
    with pytest.raises(EmotionError) as err:
        pipe.predict(fast)
    assert err.value.code == "too_big_frame" and "frames per second; at most 240" in str(err.value)


def test_every_ffmpeg_child_runs_under_a_memory_limit():
    from emotion.media import FFMPEG_MAX_MEMORY_MB, ffmpeg_command

    proc = subprocess.Popen(ffmpeg_command(["-f", "lavfi", "-i", "anullsrc", "-t", "30", "-f", "null", "-"]),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        limits = ""
        for _ in range(50):  # until the shell has set the limit and become ffmpeg
            limits = Path(f"/proc/{proc.pid}/limits").read_text()
            if "ffmpeg" in Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[0]:
                break
            time.sleep(0.02)
        line = next(line for line in limits.splitlines() if line.startswith("Max address space"))
        assert line.split()[3] == str(FFMPEG_MAX_MEMORY_MB * 1024 * 1024)
    finally:
        proc.kill()
        proc.wait()


def test_frame_decoding_has_a_deadline_and_ffmpeg_is_ended():
    frames = read_frames(FACE, 0.0, 0.04, 100, 640, timeout_s=0.0)
    with pytest.raises(EmotionError) as err:
        list(frames)
    assert err.value.code == "timeout"
    assert ffmpeg_children() == []


def test_audio_decoding_has_a_deadline():
    with pytest.raises(EmotionError) as err:
        load_audio(VOICE, 16000, timeout_s=0.0)
    assert err.value.code == "timeout"
    assert ffmpeg_children() == []


@pytest.mark.parametrize("size", ["1:64", "64:1"])
def test_one_pixel_video_is_refused_in_words(pipe, tmp_path, size):
    thin = make(tmp_path, "thin.mkv", "-i", str(FACE), "-t", "1", "-vf", f"scale={size}", "-c:v", "ffv1")
    with pytest.raises(EmotionError) as err:
        pipe.predict(thin)
    assert err.value.code == "too_small"


# -- only the named file is ever read -----------------------------------------------------------------

PLAYLISTS = {
    "list.m3u8": f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{VOICE}\n#EXT-X-ENDLIST\n",
    "list_renamed.mp4": f"#EXTM3U\n#EXTINF:10,\n{VOICE}\n",
    "bom.m3u8": f"\ufeff#EXTM3U\n#EXTINF:10,\n{VOICE}\n",
    "script.ffconcat": f"ffconcat version 1.0\nfile {VOICE}\n",
    "session.sdp": "v=0\no=- 0 0 IN IP4 127.0.0.1\nm=audio 5004 RTP/AVP 0\n",
}


@pytest.mark.parametrize("name", sorted(PLAYLISTS))
def test_playlists_and_scripts_are_refused(pipe, tmp_path, name):
    path = tmp_path / name
    path.write_text(PLAYLISTS[name], encoding="utf-8")
    with pytest.raises(EmotionError) as err:
        pipe.predict(path)
    assert err.value.code == "playlist"


def test_demuxer_allow_list_alone_stops_playlists(tmp_path):
    # a second fence behind the first-bytes check: ffmpeg itself refuses to open an HLS playlist
    path = tmp_path / "list.m3u8"
    path.write_text(PLAYLISTS["list.m3u8"])
    run = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", *ffmpeg_input(path)], capture_output=True,
                         timeout=30)
    text = run.stderr.decode()
    assert "Format not on whitelist" in text and "Input #0" not in text
    opened = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True, timeout=30)
    assert "Input #0, hls" in opened.stderr.decode()  # without the fence ffmpeg would follow it


def test_cli_file_names_are_files_and_are_printed_safely(tmp_path):
    shutil.copy(FACE, tmp_path / "file:x.mp4")  # ffmpeg would read "file:x.mp4" as the file x.mp4
    make(tmp_path, "x.mp4", "-i", str(VOICE), "-c:a", "aac")
    shutil.copy(VOICE, tmp_path / "\x1b[2Jevil.flac")
    run = subprocess.run([sys.executable, "-m", "emotion", "predict", "file:x.mp4", "\x1b[2Jevil.flac"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("file:x.mp4: ") and "from the face only" in lines[0]
    assert "\x1b" not in run.stdout + run.stderr
    assert any(line.startswith("?[2Jevil.flac: ") and "from the voice only" in line for line in lines)


def test_right_to_left_overrides_never_reach_results_or_download_names(pipe, tmp_path):
    """"clip\u202egnp.mp4" shows as "clip4pm.png" wherever the override survives: it is removed."""
    import app

    path = tmp_path / "clip\u202e\u2066gnp.flac"
    shutil.copy(VOICE, path)
    pred = pipe.predict(path)
    assert pred.file == "clipgnp.flac"
    written = app.write_downloads(pred, pipe.cfg.emotions)
    assert [Path(p).name for p in written][:2] == ["clipgnp.emotion.json", "clipgnp.emotion.csv"]
    assert [Path(p).name for p in written][2:] in ([], ["clipgnp.emotion.png"])
    assert not any(c in Path(p).read_text() for p in written if p.endswith((".json", ".csv")) for c in "\u202e\u2066")


# -- odd files get their own words --------------------------------------------------------------------

def test_animated_images_are_named_as_such(pipe, tmp_path):
    for name, codec in (("anim.gif", "gif"), ("anim.webp", "libwebp_anim")):
        path = make(tmp_path, name, "-i", str(FACE), "-t", "1", "-vf", "fps=5", "-c:v", codec, "-loop", "0")
        with pytest.raises(EmotionError) as err:
            pipe.predict(path)
        assert err.value.code == "animated_image", name
    still = make(tmp_path, "still.gif", "-i", str(FACE), "-frames:v", "1", "-c:v", "gif")
    with pytest.raises(EmotionError) as err:
        pipe.predict(still)
    assert err.value.code == "image"


def test_folders_and_pipes_are_not_files(pipe, tmp_path):
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    for path, words in ((tmp_path, "is a folder"), (fifo, "not a regular file")):
        with pytest.raises(EmotionError) as err:
            pipe.predict(path)  # must not hang on the pipe
        assert err.value.code == "not_a_file" and words in str(err.value)
    with pytest.raises(EmotionError) as err:
        pipe.predict(tmp_path / "nothing.mp4")
    assert err.value.code == "not_found"


def test_audio_with_cover_art_is_audio(pipe, tmp_path):
    art = make(tmp_path, "cover.png", "-i", str(FACE), "-frames:v", "1")
    song = make(tmp_path, "song.mp3", "-i", str(VOICE), "-i", str(art), "-map", "0:a", "-map", "1:v", "-c:a",
                "libmp3lame", "-c:v", "copy", "-disposition:v", "attached_pic")
    info = probe(song)
    assert info.cover_art and not info.has_video and info.has_audio
    pred = pipe.predict(song)
    assert pred.modalities == ["audio"]
    assert not any("face" in w.lower() for w in pred.warnings), pred.warnings


# -- tampered weights ------------------------------------------------------------------------------------

@pytest.fixture
def weights_copy(tmp_path) -> Path:
    return Path(shutil.copytree(ROOT / "weights", tmp_path / "weights"))


def voice_file(folder: Path) -> Path:
    """The voice branch's weights file in `folder`, whichever branch its config names."""
    from emotion.branches import branch_class

    return folder / branch_class(json.loads((folder / "config.json").read_text())["branches"]["audio"]).weights_file


@pytest.mark.parametrize("field, value, words", [
    ("temperature_fused", float("nan"), "temperature_fused"),
    ("temperature_audio", 0.0, "temperature_audio"),
    ("not_sure_top_p", 1.5, "not_sure_top_p"),
    ("emotions", ["happy", "sad"], "emotions"),
    # values of the right type that would allocate gigabytes or divide by almost nothing
    ("frames_per_window", 1_000_000_000, "frames_per_window` must be between"),
    ("sample_rate", 1_000_000_000, "sample_rate` must be between"),
    ("n_fft", 1_000_000_000, "n_fft` must be between"),
    ("temperature_audio", 1e-320, "temperature_audio` must be between"),
    ("max_frame_pixels", 16000 * 16000, "max_frame_pixels` must be between"),
    ("window_s", 1e9, "window_s` must be between"),
    ("hop_length", 1024, "hop_length` must not exceed n_fft"),
    ("n_mels", 10 ** 400, "n_mels` must be between"),
])
def test_tampered_config_is_refused_naming_the_field(weights_copy, field, value, words):
    from emotion import EmotionPipeline

    path = weights_copy / "config.json"
    cfg = json.loads(path.read_text())
    if value is None:
        del cfg[field]
    else:
        cfg[field] = value
    path.write_text(json.dumps(cfg))
    with pytest.raises(EmotionError) as err:
        EmotionPipeline.from_pretrained(weights_copy, warmup=False)
    assert err.value.code == "bad_weights" and "config.json" in str(err.value) and words in str(err.value)


@pytest.mark.parametrize("text, words", [
    ("[" * 100_000 + "]" * 100_000, "nests lists or objects"),
    ('{"format_version": 1, "emotions": ' + "[" * 50 + "]" * 50 + "}", "nests lists or objects"),
    ('{"format_version": 1, "sample_rate": ' + "9" * 5000 + "}", "cannot be read"),
    (" " * 1_000_001 + "{}", "a config is at most"),
])
def test_config_files_built_to_exhaust_the_parser_are_refused(weights_copy, text, words):
    from emotion import EmotionPipeline

    (weights_copy / "config.json").write_text(text)
    with pytest.raises(EmotionError) as err:
        EmotionPipeline.from_pretrained(weights_copy, warmup=False)
    assert err.value.code == "bad_weights" and "config.json" in str(err.value) and words in str(err.value)


@pytest.mark.parametrize("field, value, words", [("mfcc_std", [1.0] * 3, "mfcc_std"),
                                                  ("mfcc_mean", None, "mfcc_mean` is missing")])
def test_a_tampered_cnn_voice_config_is_refused_naming_the_field(tmp_path, field, value, words):
    # the CNN voice's own fields, in the six-class weights that name it
    from conftest import SIX_WEIGHTS
    from emotion import EmotionPipeline

    folder = Path(shutil.copytree(SIX_WEIGHTS, tmp_path / "weights"))
    cfg = json.loads((folder / "config.json").read_text())
    if value is None:
        del cfg[field]
    else:
        cfg[field] = value
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(EmotionError) as err:
        EmotionPipeline.from_pretrained(folder, warmup=False)
    assert err.value.code == "bad_weights" and words in str(err.value)


@pytest.mark.parametrize("shipped", [True, False])
def test_truncated_weights_file_is_refused_naming_it(weights_copy, tmp_path, shipped):
    from conftest import SIX_WEIGHTS
    from emotion import EmotionPipeline

    folder = weights_copy if shipped else Path(shutil.copytree(SIX_WEIGHTS, tmp_path / "six"))
    path = voice_file(folder)
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(EmotionError) as err:
        EmotionPipeline.from_pretrained(folder, warmup=False)
    assert err.value.code == "bad_weights" and path.name in str(err.value)


def test_nan_weights_are_caught_at_warm_up(weights_copy):
    from safetensors.torch import load_file, save_file

    from emotion import EmotionPipeline

    path = weights_copy / "fusion_mlp.safetensors"
    tensors = load_file(path)
    first = sorted(tensors)[0]
    tensors[first] = tensors[first] * float("nan")
    save_file(tensors, path)
    with pytest.raises(EmotionError) as err:
        EmotionPipeline.from_pretrained(weights_copy)
    assert err.value.code == "bad_weights" and "fusion_mlp.safetensors" in str(err.value)


# -- nothing of the user's is deleted ----------------------------------------------------------------------

def test_dry_run_never_deletes_the_users_folders(weights_copy, tmp_path):
    from train.push import stage

    before = sorted(p.name for p in weights_copy.iterdir())
    for out in (weights_copy, weights_copy.parent, weights_copy / "preview"):
        with pytest.raises(EmotionError) as err:
            stage(weights_copy, out)
        assert err.value.code == "bad_staging"
    assert sorted(p.name for p in weights_copy.iterdir()) == before
    mine = tmp_path / "my_notes"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(EmotionError):
        stage(weights_copy, mine)
    assert (mine / "notes.txt").read_text() == "keep me"
    preview = tmp_path / "preview"
    stage(weights_copy, preview)
    stage(weights_copy, preview)  # an earlier preview of ours is replaced
    assert (preview / "config.json").is_file()


def test_dry_run_cli_into_the_weights_folder_says_why(weights_copy):
    run = subprocess.run([sys.executable, "-m", "train.push", "--repo-id", "u/n", "--weights", str(weights_copy),
                          "--dry-run", str(weights_copy)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 1 and "overlap" in run.stderr and "Traceback" not in run.stderr
    assert voice_file(weights_copy).is_file()


# -- what already held: kept so, with tests -------------------------------------------------------------------

def test_no_code_runs_from_tampered_weights(weights_copy, tmp_path):
    import pickle

    from emotion import EmotionPipeline

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (weights_copy / "fusion_mlp.safetensors").write_bytes(pickle.dumps(Payload()))  # a pickle renamed
    with pytest.raises(EmotionError) as err:
        EmotionPipeline.from_pretrained(weights_copy, warmup=False)
    assert err.value.code == "bad_weights" and "fusion_mlp.safetensors" in str(err.value)
    assert not marker.exists()


def test_keras_lambda_layers_are_refused(weights_copy, tmp_path):
    import keras

    from emotion import EmotionPipeline

    marker = tmp_path / "pwned"
    inputs = keras.Input((50, 59))
    payload = eval(f"lambda t: t * 0 + float(open({str(marker)!r}, 'w').write('x'))")  # noqa: S307 (the attack)
    x = keras.layers.Lambda(payload)(inputs)
    outputs = keras.layers.Dense(6, activation="softmax")(keras.layers.GlobalMaxPooling1D()(x))
    marker.unlink(missing_ok=True)  # building the layer above ran the lambda once, here, in the test
    keras.Model(inputs, outputs).save(weights_copy / "face_lstm.keras")
    with pytest.raises(EmotionError) as err:
        EmotionPipeline.from_pretrained(weights_copy, warmup=False)
    assert err.value.code == "bad_weights" and "face_lstm.keras" in str(err.value)
    assert not marker.exists()


@pytest.mark.parametrize("value", ["../../../etc/passwd", "/etc/passwd", ".hidden.tflite"])
def test_config_cannot_point_outside_the_weights_folder(weights_copy, value):
    from emotion import EmotionPipeline

    path = weights_copy / "config.json"
    cfg = json.loads(path.read_text())
    cfg["appearance_model"] = value
    path.write_text(json.dumps(cfg))
    with pytest.raises(EmotionError) as err:
        EmotionPipeline.from_pretrained(weights_copy, warmup=False)
    assert err.value.code == "bad_weights" and "appearance_model" in str(err.value)


def test_image_sequences_are_never_expanded(pipe, tmp_path):
    # ffmpeg's image2 demuxer would read the numbered files next to a name with %d: not on the allow-list
    for i in range(1, 4):
        ffmpeg("-f", "lavfi", "-i", "color=c=red:size=64x64", "-frames:v", "1", str(tmp_path / f"img{i:03d}.jpg"))
    pattern = tmp_path / "img%03d.jpg"
    pattern.write_text("not an image")
    with pytest.raises(EmotionError) as err:
        pipe.predict(pattern)
    assert err.value.code == "not_media"  # judged by its own bytes; the neighbours were never opened
