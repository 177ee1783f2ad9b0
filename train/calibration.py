"""Calibration, fitted on out-of-fold predictions: temperatures, expected calibration error (ECE),
reliability bins and the "not sure" threshold.

Each quantity is fitted on all OOF predictions for the weights that ship, and *measured* by an outer
loop over the folds (fitted on the other folds, applied to this one), so no figure is measured on
what it was fitted on.
"""

from __future__ import annotations

import numpy as np

from emotion.calibration import calibrate


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood (a fine grid search: robust, no tuning)."""
    if len(y) == 0:
        return 1.0
    grid = np.exp(np.linspace(np.log(0.25), np.log(8.0), 200))
    rows = np.arange(len(y))
    nll = [-np.mean(np.log(calibrate(logits, t)[rows, y] + 1e-12)) for t in grid]
    return float(grid[int(np.argmin(nll))])


def fit_pool_weight(audio_p: np.ndarray, face_p: np.ndarray, y: np.ndarray) -> float:
    """For pairs whose branches rank different emotions first: the weight of their log-linear pool
    (emotion.fusion.evidence_bound) with the lowest negative log-likelihood, or 0 (their mean) where that fits
    better; 0 without such pairs."""
    from emotion.fusion import evidence_bound

    if len(y) == 0:
        return 0.0
    rows = np.arange(len(y))

    def nll(w: float) -> float:
        p = np.stack([evidence_bound(a, f, w) for a, f in zip(audio_p, face_p)])
        return float(-np.mean(np.log(p[rows, y] + 1e-12)))

    grid = [0.0] + [round(float(w), 3) for w in np.exp(np.linspace(np.log(0.2), np.log(4.0), 40))]
    scores = [nll(w) for w in grid]
    return grid[int(np.argmin(scores))]


ANSWER_TEMPERATURES = tuple(float(t) for t in np.exp(np.linspace(np.log(0.3), np.log(3.0), 40)))
ANSWER_FLOORS = tuple(round(float(f), 2) for f in np.linspace(0.0, 0.4, 21))


def fit_answer_calibration(held: np.ndarray, audio_p: np.ndarray, face_p: np.ndarray, y: np.ndarray
                           ) -> tuple[float, float]:
    """The temperature and floor of emotion.fusion.answer_calibrated with the lowest negative log-likelihood on
    pairs' held answers (a grid: robust, no tuning); (1, 0), which changes nothing, without pairs."""
    from emotion.fusion import bound, tempered

    if len(y) == 0:
        return 1.0, 0.0
    rows = np.arange(len(y))
    log_p, cap = np.log(np.clip(np.asarray(held, np.float64), 1e-7, 1.0)), bound(audio_p, face_p)
    best = (np.inf, 1.0, 0.0)
    for t in ANSWER_TEMPERATURES:
        for floor in ANSWER_FLOORS:
            p = tempered(log_p, cap, t, floor)
            nll = float(-np.mean(np.log(p[rows, y] + 1e-12)))
            if nll < best[0]:
                best = (nll, round(t, 4), floor)
    return best[1], best[2]


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Σ over confidence bins of (share of examples) × |accuracy − mean confidence|."""
    conf = probs.max(1)
    correct = probs.argmax(1) == y
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for a, b in zip(edges[:-1], edges[1:]):
        m = (conf > a) & (conf <= b)
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(ece)


def reliability(probs: np.ndarray, y: np.ndarray, bins: int = 10) -> dict[str, list[float]]:
    """Per confidence bin: mean confidence, accuracy and count (for the reliability diagram)."""
    conf = probs.max(1)
    correct = probs.argmax(1) == y
    edges = np.linspace(0, 1, bins + 1)
    out: dict[str, list] = {"confidence": [], "accuracy": [], "count": []}
    for a, b in zip(edges[:-1], edges[1:]):
        m = (conf > a) & (conf <= b)
        if m.any():
            out["confidence"].append(float(conf[m].mean()))
            out["accuracy"].append(float(correct[m].mean()))
            out["count"].append(int(m.sum()))
    return out


def not_sure_threshold(probs: np.ndarray, y: np.ndarray, target_precision: float = 0.8) -> float:
    """The lowest top-probability above which answers are right at least `target_precision` of the time
    (clamped to 0.35–0.85 so it stays meaningful on small sets)."""
    conf = probs.max(1)
    correct = probs.argmax(1) == y
    for t in np.arange(0.2, 0.95, 0.01):
        m = conf >= t
        if m.sum() >= 10 and correct[m].mean() >= target_precision:
            return float(np.clip(round(t, 2), 0.35, 0.85))
    return 0.85


def temperature_report(logits: np.ndarray, y: np.ndarray, folds: np.ndarray) -> tuple[dict, np.ndarray]:
    """The temperature fitted on all OOF logits (what ships), and ECE before/after measured fold by fold
    with a temperature fitted on the other folds; pooled reliability bins for the diagram.

    Also returns those fold-by-fold calibrated probabilities: the honest inputs for what comes next."""
    if len(y) == 0:
        return {"temperature": 1.0}, calibrate(logits, 1.0)
    after = np.zeros((len(y), logits.shape[1]), np.float32)
    per_fold = {}
    for k in np.unique(folds):
        here = folds == k
        t = fit_temperature(logits[~here], y[~here]) if (~here).any() else 1.0
        after[here] = calibrate(logits[here], t)
        per_fold[int(k)] = round(t, 3)
    before = calibrate(logits, 1.0)
    return {"temperature": round(fit_temperature(logits, y), 4), "temperature_per_fold": per_fold,
            "ece_before": round(expected_calibration_error(before, y), 4),
            "ece_after": round(expected_calibration_error(after, y), 4),
            "reliability_before": reliability(before, y), "reliability_after": reliability(after, y)}, after


def threshold_report(probs: np.ndarray, y: np.ndarray, folds: np.ndarray) -> dict:
    """The "not sure" threshold fitted on all OOF fused probabilities (what ships), and what it does
    measured fold by fold with a threshold fitted on the other folds."""
    answered = np.zeros(len(y), bool)
    for k in np.unique(folds):
        here = folds == k
        t = not_sure_threshold(probs[~here], y[~here]) if (~here).any() else 0.85
        answered[here] = probs[here].max(1) >= t
    right = probs.argmax(1) == y
    return {"not_sure_top_p": not_sure_threshold(probs, y),
            "answered_share": round(float(answered.mean()), 4) if len(y) else None,
            "accuracy_when_answered": round(float(right[answered].mean()), 4) if answered.any() else None,
            "accuracy_when_not_sure": round(float(right[~answered].mean()), 4) if (~answered).any() else None}


DISAGREEMENT_GRID = tuple(round(t, 2) for t in np.arange(0.3, 0.91, 0.05))
MIN_FLAGGED = 10


def disagreement_min_p(audio_p: np.ndarray, face_p: np.ndarray, fused_p: np.ndarray, y: np.ndarray) -> float:
    """The lowest confidence at which two disagreeing branches make the stacker's answer a coin toss or worse
    (right on under half of those pairs, with at least MIN_FLAGGED of them): from there on the app reports the
    conflict instead of the answer. 0.5 when no threshold qualifies (e.g. too few pairs)."""
    right = fused_p.argmax(1) == y
    for t in DISAGREEMENT_GRID:
        flagged = (audio_p.argmax(1) != face_p.argmax(1)) & (np.minimum(audio_p.max(1), face_p.max(1)) >= t)
        if flagged.sum() >= MIN_FLAGGED and right[flagged].mean() < 0.5:
            return float(t)
    return 0.5


DEFAULT_DISAGREEMENT_MIN_P = 0.5


def disagreement_report(audio_p: np.ndarray, face_p: np.ndarray, fused_p: np.ndarray, y: np.ndarray,
                        folds: np.ndarray, fit: bool = True, pool_weight: float = 0.0) -> tuple[dict, np.ndarray]:
    """The conflict threshold fitted on all OOF pairs (what ships) and, fold by fold with a threshold fitted on
    the other folds, how many pairs it flags and how often the stacker's answer on them was wrong (the flag's
    precision). Then what holding every pair's answer to its evidence (emotion.fusion.held_to_evidence) costs
    and buys: accuracy and ECE of the stacker's and of the held answer, on all pairs, on pairs whose branches
    rank different emotions first, and on flagged pairs. Returns the held probabilities (what the app answers).
    `fit=False` (pairs built by emotion, which hold no real conflicting clip): the threshold stays at
    DEFAULT_DISAGREEMENT_MIN_P and is only measured."""
    from emotion.fusion import disagree, held_to_evidence

    choose = disagreement_min_p if fit else (lambda *_: DEFAULT_DISAGREEMENT_MIN_P)
    flagged = np.zeros(len(y), bool)
    for k in np.unique(folds):
        here = folds == k
        t = choose(audio_p[~here], face_p[~here], fused_p[~here], y[~here]) if (~here).any() else 0.5
        flagged[here] = [disagree(a, f, t) for a, f in zip(audio_p[here], face_p[here])]
    held = np.stack([held_to_evidence(p, a, f, pool_weight) for p, a, f in zip(fused_p, audio_p, face_p)]) if len(y) \
        else fused_p.copy()
    out = {"disagreement_min_p": choose(audio_p, face_p, fused_p, y), "fitted": fit, "pairs": int(len(y)),
           "flagged": int(flagged.sum()), "flagged_share": round(float(flagged.mean()), 4) if len(y) else None}
    if flagged.any():
        wrong = fused_p[flagged].argmax(1) != y[flagged]
        out.update({
            "stacker_wrong_when_flagged": round(float(wrong.mean()), 4),
            "either_branch_right_when_flagged": round(float(np.mean((audio_p[flagged].argmax(1) == y[flagged]) |
                                                                    (face_p[flagged].argmax(1) == y[flagged]))), 4)})
    split = audio_p.argmax(1) != face_p.argmax(1) if len(y) else np.zeros(0, bool)
    out["held_to_evidence"] = {name: {
        "pairs": int(m.sum()),
        "stacker_accuracy": round(float((fused_p[m].argmax(1) == y[m]).mean()), 4),
        "held_accuracy": round(float((held[m].argmax(1) == y[m]).mean()), 4),
        "stacker_top_p": round(float(fused_p[m].max(1).mean()), 4),
        "held_top_p": round(float(held[m].max(1).mean()), 4),
        "stacker_ece": round(expected_calibration_error(fused_p[m], y[m]), 4),
        "held_ece": round(expected_calibration_error(held[m], y[m]), 4)}
        for name, m in (("all", np.ones(len(y), bool)), ("branches_split", split), ("flagged", flagged)) if m.any()}
    return out, held


def cross_corpus_report(logits: np.ndarray, y: np.ndarray, corpus: list[str], emotions: list[str],
                        in_corpus_logits: np.ndarray, in_corpus_y: np.ndarray, min_examples: int = 30
                        ) -> tuple[dict, np.ndarray, np.ndarray]:
    """A branch's confidence judged where it matters: on corpora its model never learnt from (`logits`, each
    example's from a model trained on the other corpora). The temperature that ships is fitted on all of them
    pooled; its figures come from an outer loop over corpora (a corpus's temperature fitted on the others'),
    per corpus (accuracy, recall, the share of the most frequent answer: a collapsed model answers one class,
    ECE) and pooled, beside the ECE in-corpus (`in_corpus_logits`: out-of-fold by speaker) at the same
    temperature. Corpora with fewer than `min_examples` are left out. Also returns the outer-loop probabilities
    of the examples kept, and which examples those are."""
    corpus = np.asarray(corpus)
    names = [c for c in sorted(set(corpus.tolist())) if (corpus == c).sum() >= min_examples]
    keep = np.isin(corpus, names)
    logits, y, corpus = logits[keep], y[keep], corpus[keep]
    probs = np.zeros(logits.shape, np.float32)
    per = {}
    for c in names:
        here = corpus == c
        t = fit_temperature(logits[~here], y[~here]) if (~here).any() else 1.0
        probs[here] = calibrate(logits[here], t)
        p, yc = probs[here], y[here]
        pred = p.argmax(1)
        per[c] = {"n": int(here.sum()), "accuracy": round(float(np.mean(pred == yc)), 4),
                  "top_answer_share": round(float(np.bincount(pred, minlength=len(emotions)).max() / here.sum()), 4),
                  "temperature": round(t, 3), "ece": round(expected_calibration_error(p, yc), 4),
                  "recall": {emotions[k]: round(float(np.mean(pred[yc == k] == k)), 4) for k in np.unique(yc)}}
    shipped = fit_temperature(logits, y)
    out = {"temperature": round(shipped, 4), "corpora": per, "n": int(len(y)),
           "accuracy": round(float(np.mean(probs.argmax(1) == y)), 4) if len(y) else None,
           "ece_cross_corpus": round(expected_calibration_error(probs, y), 4) if len(y) else None,
           "ece_in_corpus": round(expected_calibration_error(calibrate(in_corpus_logits, shipped), in_corpus_y), 4),
           "reliability_cross_corpus": reliability(probs, y)}
    return out, probs, keep
