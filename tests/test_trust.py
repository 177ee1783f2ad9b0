"""Calibrated confidence and an honest "not sure": the fitting code is run and its numbers checked (on
made-up logits with a known answer, and on the shipped voice model's logits for real held-out-style clips),
and the pipeline is checked to apply what was fitted. Also the "why" figures."""

from __future__ import annotations


import numpy as np
import pytest

from conftest import MEAD, RAVDESS, ROOT
from emotion.calibration import as_logits, calibrate
from emotion.explain import PLAIN_NAMES, face_figure, voice_figure
from emotion.fusion import fuse
from emotion.pipeline import verdict_text
from train.calibration import (expected_calibration_error, fit_temperature, not_sure_threshold, reliability,
                               temperature_report, threshold_report)

FLAC = RAVDESS / "Actor_19" / "03-01-04-01-01-01-19.flac"


def sampled(n: int, temperature: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose labels were drawn from softmax(logits / temperature): the right temperature is known."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2.5, (n, 7))
    p = calibrate(logits, temperature)
    y = np.array([rng.choice(7, p=row / row.sum()) for row in p.astype(np.float64)])
    return logits, y


# -- the fitting code, on data with a known answer --------------------------------------------------------

@pytest.mark.parametrize("true_t", [0.5, 1.0, 3.0])
def test_fit_temperature_recovers_the_true_temperature(true_t):
    logits, y = sampled(4000, true_t)
    assert fit_temperature(logits, y) == pytest.approx(true_t, rel=0.12)


def test_ece_of_known_cases():
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    # bin 0.9: both right (accuracy 1 vs 0.9); bin 0.6: one of two right (0.5 vs 0.6)
    assert expected_calibration_error(probs, np.array([0, 0, 0, 1])) == pytest.approx(0.5 * 0.1 + 0.5 * 0.1)
    assert expected_calibration_error(np.eye(3)[[0, 1, 2]], np.array([0, 1, 2])) == 0.0
    r = reliability(probs, np.array([0, 0, 0, 1]))
    assert r["count"] == [2, 2] and r["accuracy"] == [0.5, 1.0]


def test_temperature_scaling_lowers_ece_measured_on_other_folds():
    logits, y = sampled(3000, 3.0, seed=1)  # logits 3× too confident
    folds = np.arange(len(y)) % 5
    report, calibrated = temperature_report(logits, y, folds)
    assert report["ece_after"] < 0.5 * report["ece_before"]
    assert all(t == pytest.approx(3.0, rel=0.2) for t in report["temperature_per_fold"].values())
    assert calibrated.shape == logits.shape and np.allclose(calibrated.sum(1), 1, atol=1e-5)


def test_not_sure_threshold_keeps_answers_precise():
    rng = np.random.default_rng(2)
    conf = rng.uniform(0.2, 1.0, 2000)
    right = rng.random(2000) < conf  # the more confident, the more often right
    probs = np.stack([conf, 1 - conf], 1)
    y = np.where(right, 0, 1)
    t = not_sure_threshold(probs, y, target_precision=0.8)
    answered = conf >= t
    assert 0.35 <= t <= 0.85 and right[answered].mean() >= 0.8
    assert right[conf >= t - 0.1].mean() < right[answered].mean()  # a lower threshold would be less precise
    report = threshold_report(probs, y, np.arange(2000) % 4)
    assert report["accuracy_when_answered"] > report["accuracy_when_not_sure"]


def test_fitting_on_the_voice_models_real_logits(pipe):
    # 24 real RAVDESS clips through the shipped voice: the fitted temperature must lower their NLL
    clips = sorted(RAVDESS.glob("Actor_1[6-9]/03-01-0[3-8]-01-01-0*.flac"))[:24]
    logits = pipe.branches["audio"].logits([pipe.preprocess(c).inputs["audio"].windows[0] for c in clips])
    codes = {"03": "happy", "04": "sad", "05": "angry", "06": "fearful", "07": "disgust", "08": "surprised"}
    y = np.array([pipe.cfg.emotions.index(codes[c.name.split("-")[2]]) for c in clips])
    t = fit_temperature(logits, y)
    nll = lambda temp: -np.mean(np.log(calibrate(logits, temp)[np.arange(len(y)), y]))
    assert nll(t) <= min(nll(1.0), nll(t * 1.5), nll(t / 1.5)) + 1e-9


# -- the pipeline applies what was fitted ------------------------------------------------------------------

def with_cfg(pipe, **changes):
    return pipe.with_config(**changes)


def test_temperature_is_applied_at_prediction(pipe):
    feats = pipe.preprocess(FLAC)
    voice = feats.inputs["audio"].windows[0]
    logits = pipe.branches["audio"].logits([voice])  # the branch's own model, uncalibrated
    for t in (0.5, 4.0):
        pred = with_cfg(pipe, temperature_audio=t).predict(FLAC)
        got = np.array([pred.audio[e] for e in pipe.cfg.emotions])
        np.testing.assert_allclose(got, calibrate(logits, t)[0], atol=1e-4)


def test_lone_branch_passes_its_calibrated_probabilities_through(pipe):
    n = len(pipe.cfg.emotions)
    face = calibrate(np.array([[2.0, 0.1, 0.3, -1.0, 0.0, 0.5, 0.2][:n]]))[0]
    audio = calibrate(np.array([[0.0, 1.0, 3.0, 0.0, -1.0, 0.2, -0.5][:n]]))[0]
    out = fuse(pipe.fusion, [None, audio, None, audio], [face, None, None, face], pipe.cfg.temperature_fused,
               len(pipe.cfg.emotions))
    np.testing.assert_array_equal(out[0], face)
    np.testing.assert_array_equal(out[1], audio)
    assert out[2] is None
    assert not np.allclose(out[3], face) and out[3].sum() == pytest.approx(1, abs=1e-5)  # both: the stacker
    pred = pipe.predict(FLAC)  # voice only: the fused answer is the voice's own
    assert pred.modalities == ["audio"] and pred.fused == pred.audio


def test_not_sure_threshold_is_applied(pipe):
    clip = MEAD / "W009_front_happy_level3_001.mp4"
    base = pipe.predict(clip)
    above = with_cfg(pipe, not_sure_top_p=max(0.0, base.confidence - 0.05)).predict(clip)
    below = with_cfg(pipe, not_sure_top_p=min(1.0, base.confidence + 0.05)).predict(clip)
    assert not above.not_sure and above.verdict.startswith(base.label.capitalize())
    assert below.not_sure and below.verdict.startswith("Not sure — maybe " + base.label)


def test_as_logits_inverts_calibrate():
    p = calibrate(np.array([[1.0, 2.0, 0.5, -1.0, 0.0, 0.3]]))
    np.testing.assert_allclose(calibrate(as_logits(p)), p, atol=1e-6)


@pytest.mark.parametrize("subject", ["M030", "W009", "W011"])
def test_neutral_faces_read_neutral(pipe, subject):
    pred = pipe.predict(next(MEAD.glob(f"{subject}_front_neutral_*.mp4")))
    assert pred.label == "neutral" and pred.verdict.startswith(("Neutral — no clear emotion", "Not sure — maybe neutral")), \
        pred.verdict


def test_neutral_voices_read_neutral(pipe):
    # RAVDESS "neutral" (01), one statement per actor of the 20 shared
    clips = sorted(RAVDESS.glob("Actor_*/03-01-01-01-01-01-*.flac"))
    assert len(clips) == 20
    labels = [pipe.predict(c).label for c in clips]
    assert labels.count("neutral") >= 18, labels


def test_six_class_weights_still_load_and_answer(six_pipe):
    assert six_pipe.cfg.emotions == ["happy", "sad", "angry", "fearful", "disgust", "surprised"]
    pred = six_pipe.predict(MEAD / "M030_sad_eamm1.mp4")
    assert set(pred.fused) == set(six_pipe.cfg.emotions) and pred.label == "sad"


def test_not_sure_wording():
    assert verdict_text("sad", 0.31, True, "fearful", ("audio", "face")) == \
        "Not sure — maybe sad or fearful (from voice and face)"
    assert verdict_text("happy", 0.81, False, "sad", ("face",)) == "Happy (81%), from the face only"
    assert "voice only" in verdict_text("angry", 0.7, False, "sad", ("audio",))


def test_explanation_figures(pipe):
    pred = pipe.predict(MEAD / "M030_sad_eamm1.mp4", explain=True)
    e = pred.explanation
    assert e.face_values.shape == (len(e.face_movements), len(e.face_times_s))
    assert set(e.face_movements) <= set(PLAIN_NAMES.values())  # plain words, not blendshape codes
    assert e.face_importance == sorted(e.face_importance, reverse=True)
    fig = face_figure(e)
    heat = [t for t in fig.data if t.type == "heatmap"][0]
    assert list(heat.y) == e.face_movements
    assert len(fig.layout.shapes) == len(e.face_peak_times_s) >= 1  # the strongest moments are marked
    assert e.face_label == pred.label  # the face plot explains the verdict, not the face's own guess
    assert all(0.4 <= t <= pred.duration_s - 0.4 for t in e.face_peak_times_s)  # not bunched at the clip's ends
    assert "semitones" in e.voice_words
    vfig = voice_figure(e)
    names = [t.name for t in vfig.data]
    assert names == ["loudness", "pitch"]
    pitch = np.asarray(vfig.data[1].y, dtype=float)
    voiced = pitch[~np.isnan(pitch)]
    assert voiced.size > 20 and 70 < np.median(voiced) < 300  # a speaking voice
    assert "explanation" not in pred.to_dict()


def test_the_voice_plot_worked_out_while_the_face_is_read_is_the_one_worked_out_after(pipe):
    from emotion.explain import voice_track

    clip = MEAD / "M030_sad_eamm1.mp4"
    feats = pipe.preprocess(clip, keep_wave=True)
    assert feats.voice_track is not None and pipe.preprocess(clip).voice_track is None  # only when explaining
    after = voice_track(feats.wave, pipe.cfg.sample_rate)
    shown = pipe.predict(clip, explain=True).explanation
    for got in (feats.voice_track, after):
        np.testing.assert_array_equal(got.pitch_hz, shown.pitch_hz)
        np.testing.assert_array_equal(got.loudness_db, shown.loudness_db)
    assert after.words == shown.voice_words and np.isfinite(shown.pitch_hz).sum() > 20


def test_the_shipped_examples_voices_have_a_pitch_to_show():
    """The compressed sound of the CREMA-D examples: librosa's default voicing prior found no voiced frame in three
    of the six, so the "why" said "Too little voiced sound" under a voice that was answering."""
    from emotion.explain import pitch_track
    from emotion.media import load_audio

    for clip in sorted((ROOT / "examples").glob("*.flv")):
        f0, voiced = pitch_track(load_audio(str(clip), 16000), 16000, 320, lambda fraction, words: None)
        assert voiced.sum() > 40 and 90 < np.median(f0[voiced]) < 260, (clip.name, int(voiced.sum()))  # one man


def test_the_pitch_read_in_pieces_is_the_pitch_read_at_once_and_reports_its_progress():
    import librosa

    from emotion.explain import VOICING_BETA, pitch_track
    from emotion.media import load_audio

    speech = [load_audio(p, 16000) for p in sorted((RAVDESS / "Actor_19").glob("*.flac"))[:12]]
    wave = np.concatenate(speech * 2)  # ~80 s of real speech and pauses
    hop = 800
    whole, whole_voiced, _ = librosa.pyin(wave, fmin=65, fmax=500, sr=16000, frame_length=1024, hop_length=hop,
                                          resolution=0.25, beta_parameters=VOICING_BETA)
    heard = []
    pieces, voiced = pitch_track(wave, 16000, hop, lambda fraction, words: heard.append(fraction), 0.25)
    assert pieces.shape == whole.shape and voiced.shape == whole_voiced.shape
    assert np.mean(voiced == whole_voiced) > 0.97
    both = voiced & whole_voiced
    assert both.sum() > 100 and np.median(np.abs(12 * np.log2(pieces[both] / whole[both]))) < 0.05
    assert len(heard) >= 5 and heard == sorted(heard) and 0.94 <= heard[0] and heard[-1] < 1  # it moves, forwards


def test_disagreeing_branches_are_reported_not_fused_into_a_confident_answer(pipe, tmp_path):
    from conftest import RAVDESS, ffmpeg
    from emotion.result import file_row

    clip = tmp_path / "happy_face_angry_voice.mp4"  # a real smiling face with a real angry voice
    ffmpeg("-i", str(MEAD / "W009_front_happy_level3_001.mp4"), "-i", str(RAVDESS / "Actor_02" / "03-01-05-02-01-01-02.flac"),
           "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-shortest", str(clip))
    pred = pipe.predict(clip)
    assert max(pred.audio, key=pred.audio.get) == "angry" and max(pred.face, key=pred.face.get) == "happy"
    assert pred.disagreement and pred.not_sure
    assert pred.verdict.startswith("Voice and face disagree: the voice sounds angry")
    # the fused answer claims no more than the two readings support together
    for e in pred.fused:
        assert pred.fused[e] <= max(pred.audio[e], pred.face[e]) + 1e-3
    # and the contrary voice costs the surer face a good share (face happy 85%, voice angry 64% → happy 63%, angry
    # 27%: split pairs' answers were calibrated on corpora the models never learnt from)
    assert pred.confidence < max(pred.face.values()) - 0.15 and pred.fused["angry"] > 0.15
    row = file_row(str(clip), pred)
    assert row["disagreement"] is True and row["not_sure"] is True and row["audio_angry"] > 0.5


def test_the_disagreement_rule():
    from emotion.fusion import disagree, evidence_bound

    happy, angry = np.array([.9, .02, .02, .02, .02, .02]), np.array([.05, .05, .8, .04, .03, .03])
    weak_angry = np.array([.2, .15, .3, .15, .1, .1])
    assert disagree(angry, happy, 0.5) and not disagree(weak_angry, happy, 0.5)
    assert not disagree(happy, happy, 0.5) and not disagree(None, happy, 0.5)
    bound = evidence_bound(angry, happy)
    assert bound.sum() == pytest.approx(1) and bound.max() < 0.5


def spread(top: str, p: float, names: list[str]) -> np.ndarray:
    """A reading that gives `top` the probability p and shares the rest evenly."""
    out = np.full(len(names), (1 - p) / (len(names) - 1), np.float32)
    out[names.index(top)] = p
    return out


def test_a_fused_answer_never_outruns_its_evidence(pipe):
    """The smiling child of issue #27: face happy 0.69, voice fearful 0.43 read "Fearful (55%)" — more than
    the voice itself gave fearful, against a face that says happy."""
    from emotion.fusion import bounded_fuse

    names = pipe.cfg.emotions
    face, voice = spread("happy", 0.69, names), spread("fearful", 0.43, names)
    held = bounded_fuse(pipe.fusion, [voice], [face], pipe.cfg.temperature_fused, len(names))[0]
    assert names[int(held.argmax())] == "happy"
    assert held[names.index("fearful")] <= 0.43 and held.sum() == pytest.approx(1, abs=1e-5)
    # where the two agree, the stacker may add their evidence up, but never past 1 − (1 − voice)(1 − face)
    for a, f in [(spread("sad", 0.4, names), spread("sad", 0.5, names)),
                 (spread("angry", 0.9, names), spread("angry", 0.35, names))]:
        got = bounded_fuse(pipe.fusion, [a], [f], pipe.cfg.temperature_fused, len(names))[0]
        assert np.all(got <= 1 - (1 - a) * (1 - f) + 1e-6) and got.sum() == pytest.approx(1, abs=1e-5)
        assert got.argmax() == a.argmax()  # (the raw stacker put "fearful" first on the sad pair)


def test_the_verdict_on_a_split_pair_names_a_branch_top_or_is_not_sure(pipe):
    """Through postprocess, on one window: the numbers above never read "Fearful"; a class that neither branch
    ranks first is never the answer."""
    from emotion.branches import BranchInput
    from emotion.pipeline import Features, Readings

    names = pipe.cfg.emotions
    feats = Features(2.0, [(0.0, 2.0)], {"audio": BranchInput([None], [0], [1.0], []),
                                         "face": BranchInput([None], [0], [1.0], [])})

    def verdict(voice, face):
        fused = bounded_fuse_one(pipe, voice, face)
        return pipe.postprocess("x.mp4", feats, Readings({"audio": [voice], "face": [face]}, [fused]))

    pred = verdict(spread("fearful", 0.43, names), spread("happy", 0.69, names))
    assert pred.label == "happy" and not pred.verdict.startswith("Fearful"), pred.verdict
    def reading(**p):
        return np.array([p.get(e, 0.0) for e in names], np.float32)

    a = reading(happy=0.40, sad=0.35, fearful=0.25)  # voice: happy first, sad second
    f = reading(angry=0.40, sad=0.35, fearful=0.25)  # face: angry first, sad second
    pred = verdict(a, f)
    assert pred.not_sure and pred.label == "sad", pred.verdict


def bounded_fuse_one(pipe, voice, face):
    from emotion.fusion import bounded_fuse

    return bounded_fuse(pipe.fusion, [voice], [face], pipe.cfg.temperature_fused, len(pipe.cfg.emotions))[0]


def test_a_clip_with_neither_a_voice_nor_a_face_gets_one_sentence_not_two_contradicting_notes(pipe, tmp_path):
    """A tone and no face (what a browser's default fake webcam sends): once "No speech … from the face only"
    beside "No face … from the voice only"; now one sentence that gives both reasons."""
    from conftest import ffmpeg

    clip = tmp_path / "tone_no_face.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000",
           "-t", "3", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest", str(clip))
    pred = pipe.predict(clip)
    assert pred.label is None and pred.modalities == []
    assert not any("only" in w for w in pred.warnings), pred.warnings
    [sentence] = [w for w in pred.warnings if w.startswith("Neither a voice nor a face")]
    assert "no speech found" in sentence and "no face found" in sentence, sentence


def test_the_model_card_is_shown_without_its_yaml_header():
    import app
    from conftest import ROOT

    text = (ROOT / "weights" / "README.md").read_text()
    assert text.startswith("---") and "license:" in text.split("\n---", 1)[0]
    shown = app.card_markdown(text)
    assert shown.startswith("# ") and "license:" not in shown and "Limitations" in shown
    assert app.card_markdown("# no header\ntext") == "# no header\ntext"


def test_a_split_pair_pooled_is_never_surer_than_its_surer_branch():
    """The log-linear pool of two readings that rank different emotions first: an emotion both find plausible can
    win, but none gets more than the branch most sure of it; holding twice changes nothing (window, then clip)."""
    from emotion.fusion import evidence_bound, held_to_evidence

    names = ["angry", "happy", "sad", "neutral"]
    a = np.array([0.50, 0.05, 0.40, 0.05], np.float32)  # voice: angry, then sad
    f = np.array([0.05, 0.55, 0.35, 0.05], np.float32)  # face: happy, then sad
    mean = evidence_bound(a, f, 0.0)
    assert mean == pytest.approx((a + f) / 2)
    for w in (0.5, 1.0, 3.0):
        p = evidence_bound(a, f, w)
        assert p.sum() == pytest.approx(1, abs=1e-5) and np.all(p <= np.maximum(a, f) + 1e-6)
        assert names[int(p.argmax())] == "sad"  # both find sad plausible: the pool says so (the app: "not sure")
        assert held_to_evidence(held_to_evidence(p, a, f, w), a, f, w) == pytest.approx(p, abs=1e-6)
    stacked = np.array([0.1, 0.1, 0.1, 0.7], np.float32)
    agree_a, agree_f = np.array([0.1, 0.1, 0.2, 0.6]), np.array([0.2, 0.1, 0.1, 0.6])
    once = held_to_evidence(stacked, agree_a, agree_f, 1.0)
    assert held_to_evidence(once, agree_a, agree_f, 1.0) == pytest.approx(once, abs=1e-6)


def test_an_answer_calibrated_stays_within_its_evidence():
    """emotion.fusion.answer_calibrated: (1, 0) changes nothing; any temperature and floor give a distribution
    that no emotion gets more of than its bound (`supported` for agreeing pairs, the surer reading for split
    ones), and sharpening raises an agreeing pair's top answer."""
    from emotion.fusion import answer_calibrated, bound, held_to_evidence

    rng = np.random.default_rng(1)
    a = rng.dirichlet(np.ones(7) * 0.6, 300).astype(np.float32)
    f = rng.dirichlet(np.ones(7) * 0.6, 300).astype(np.float32)
    f[:150] = (f[:150] + 0.5 * np.eye(7, dtype=np.float32)[a[:150].argmax(1)]) / 1.5  # half of them agree
    stacked = rng.dirichlet(np.ones(7), 300).astype(np.float32)
    held = np.stack([held_to_evidence(s, x, z, 0.7) for s, x, z in zip(stacked, a, f)])
    assert answer_calibrated(held, a, f, 1.0, 0.0) == pytest.approx(held, abs=1e-6)
    for t, floor in ((0.5, 0.0), (0.65, 0.1), (2.0, 0.3)):
        p = answer_calibrated(held, a, f, t, floor)
        assert p.sum(1) == pytest.approx(np.ones(300), abs=1e-5) and np.all(p <= bound(a, f) + 1e-6)
        assert np.all(p >= 0)
    agree = a.argmax(1) == f.argmax(1)
    sharper = answer_calibrated(held, a, f, 0.5, 0.0)
    assert np.mean(sharper[agree].max(1)) > np.mean(held[agree].max(1)) + 0.02
    one = answer_calibrated(held[0], a[0], f[0], 0.65, 0.1)  # one row as the pipeline calls it
    assert one == pytest.approx(answer_calibrated(held, a, f, 0.65, 0.1)[0], abs=1e-6)


def test_the_answer_calibration_is_fitted_to_how_often_answers_turn_out_right():
    """Held answers that are right more often than they say get a temperature below 1; answers that are right
    as often as they say keep one near 1 with no floor."""
    from emotion.fusion import answer_calibrated
    from train.calibration import fit_answer_calibration

    rng = np.random.default_rng(2)
    truth = rng.dirichlet(np.ones(7) * 0.4, 1500)
    y = np.array([rng.choice(7, p=p) for p in truth])
    a = f = np.ones((1500, 7), np.float32)  # bounds of 1: nothing capped
    said = truth ** 0.5 / (truth ** 0.5).sum(1, keepdims=True)  # softer than the truth
    t, floor = fit_answer_calibration(said.astype(np.float32), a, f, y)
    assert t < 0.75, (t, floor)
    t, floor = fit_answer_calibration(truth.astype(np.float32), a, f, y)
    assert 0.8 < t < 1.25 and floor <= 0.04, (t, floor)
    assert answer_calibrated(truth[:3], a[:3], f[:3], 1.0, 0.0) == pytest.approx(truth[:3], abs=1e-5)


def test_the_pool_weight_is_fitted_to_what_split_pairs_turn_out_to_be():
    """Pairs where the emotion both branches find plausible is the truth get a pool (weight > 0); pairs where the
    truth is one branch's top at random favour the mean (or a soft pool)."""
    from emotion.fusion import evidence_bound
    from train.calibration import fit_pool_weight

    rng = np.random.default_rng(0)
    a = rng.dirichlet(np.ones(5) * 0.7, 400).astype(np.float32)
    f = rng.dirichlet(np.ones(5) * 0.7, 400).astype(np.float32)
    y_product = np.array([int(np.argmax(x * z)) for x, z in zip(a, f)])
    w = fit_pool_weight(a, f, y_product)
    assert w >= 1.0
    rows = np.arange(400)
    nll = lambda w_: -np.mean(np.log(np.stack([evidence_bound(x, z, w_) for x, z in zip(a, f)])[rows, y_product]))
    assert nll(w) <= nll(0.0) and nll(w) <= nll(0.5)


def test_cross_corpus_calibration_fits_each_corpus_on_the_others():
    """A corpus that the model reads with too much confidence is measured with a temperature fitted on the other
    corpora only (so its ECE is what a new corpus would get), and the shipped temperature pools all of them."""
    from train.calibration import cross_corpus_report, fit_temperature

    rng = np.random.default_rng(1)
    n, k = 300, 4
    y = rng.integers(0, k, 3 * n)
    logits = rng.normal(0, 1, (3 * n, k)).astype(np.float32)
    logits[np.arange(3 * n), y] += 1.5
    logits[:n] *= 4  # corpus "a": the same evidence, four times as loud
    corpus = ["a"] * n + ["b"] * n + ["c"] * n
    report, probs, keep = cross_corpus_report(logits, y, corpus, ["w", "x", "y", "z"], logits[n:], y[n:])
    assert keep.all() and set(report["corpora"]) == {"a", "b", "c"}
    assert report["corpora"]["a"]["temperature"] == pytest.approx(fit_temperature(logits[n:], y[n:]), abs=1e-3)
    assert report["temperature"] == pytest.approx(fit_temperature(logits, y), abs=1e-4)
    own = expected_calibration_error(calibrate(logits[:n], fit_temperature(logits[:n], y[:n])), y[:n])
    assert report["corpora"]["a"]["ece"] > own + 0.05  # a fit on "a" itself would hide what a new corpus gets
    assert probs[:n].max(1).mean() > probs[n:2 * n].max(1).mean()
