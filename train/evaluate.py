"""Metrics: accuracy, macro-F1, per-class scores and confusion matrix, as JSON-ready dicts."""

from __future__ import annotations

import numpy as np

from typing import Sequence

from emotion.calibration import log_softmax


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, emotions: Sequence[str]) -> dict:
    """Figures over the config's `emotions` (class i is emotions[i])."""
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    labels = list(range(len(emotions)))
    if len(y_true) == 0:
        return {"n": 0}
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return {
        "n": int(len(y_true)),
        "accuracy": round(float(np.mean(y_true == y_pred)), 4),
        "macro_f1": round(float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)), 4),
        "per_class": {e: {"precision": round(float(p[i]), 4), "recall": round(float(r[i]), 4),
                          "f1": round(float(f[i]), 4), "support": int(s[i])} for i, e in enumerate(emotions)},
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def cv_summary(y_true: np.ndarray, y_pred: np.ndarray, folds: np.ndarray, emotions: Sequence[str]) -> dict:
    """Cross-validated figures: accuracy per fold, its mean and standard deviation over folds, and the
    pooled metrics (per-class precision/recall/F1, confusion matrix) with each fold's confusion matrix."""
    out = classification_metrics(y_true, y_pred, emotions)
    if len(y_true) == 0:
        return out
    per_fold = {int(k): classification_metrics(y_true[folds == k], y_pred[folds == k], emotions)
                for k in np.unique(folds)}
    accs = [m["accuracy"] for m in per_fold.values()]
    out.update({"accuracy_mean": round(float(np.mean(accs)), 4), "accuracy_sd": round(float(np.std(accs)), 4),
                "accuracy_per_fold": {k: m["accuracy"] for k, m in per_fold.items()},
                "n_per_fold": {k: m["n"] for k, m in per_fold.items()},
                "confusion_per_fold": {k: m["confusion_matrix"] for k, m in per_fold.items()}})
    return out


def audio_baseline(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    """Statistics over time of each feature row (mean, std, 10th and 90th percentile) + logistic regression: what
    the CNN has to beat. (Mean and std alone say nothing once each utterance is normalised on its own.)"""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    stats = lambda x: np.concatenate([x.mean(2), x.std(2), *np.percentile(x, [10, 90], axis=2)], axis=1)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.5))
    clf.fit(stats(x_train), y_train)
    return clf.predict(stats(x_test))


def softmax_rows(clf, n_classes: int, absent: float) -> tuple[np.ndarray, np.ndarray]:
    """A fitted sklearn LogisticRegression as a softmax's (coef (n_classes, features), intercept), a row for
    every class: one it never saw gets a zero row and the intercept `absent`."""
    coef, intercept = clf.coef_, clf.intercept_
    if len(clf.classes_) == 2:  # sklearn keeps one row for two classes: split it into the softmax's two
        coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
    full_coef, full_intercept = np.zeros((n_classes, coef.shape[1])), np.full(n_classes, absent)
    full_coef[clf.classes_], full_intercept[clf.classes_] = coef, intercept
    return full_coef.astype(np.float32), full_intercept.astype(np.float32)


def last_frame_regression(x_train: np.ndarray, y_train: np.ndarray, n_classes: int, read: str = "last"
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Logistic regression (L2, C=1) on the last frame's features (or another `read`, see
    train.face_model.sequence_read), as softmax rows (see softmax_rows; a class it never saw gets an intercept of -30)."""
    from sklearn.linear_model import LogisticRegression

    from .face_model import sequence_read

    clf = LogisticRegression(max_iter=3000, C=1.0).fit(sequence_read(x_train, read), y_train)
    return softmax_rows(clf, n_classes, absent=-30.0)


def regression_logits(x: np.ndarray, regression: tuple[np.ndarray, np.ndarray], read: str = "last") -> np.ndarray:
    """(n, n_classes) the logits of a last_frame_regression (coef, intercept) on sequences `x`, read as it was fitted."""
    from .face_model import sequence_read

    coef, intercept = regression
    return (sequence_read(x, read) @ coef.T + intercept).astype(np.float32)


def face_baseline(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, n_classes: int) -> np.ndarray:
    """The last-frame logistic regression: what the LSTM has to beat. Its (n, n_classes) log-probabilities on
    `x_test` (its classes are their argmax)."""
    return log_softmax(regression_logits(x_test, last_frame_regression(x_train, y_train, n_classes)))


def baseline_key(branch: dict) -> str:
    """The key of the baseline's figures in a branch's metrics (each voice recipe has its own baseline)."""
    return next(k for k in branch if k.startswith("baseline_"))
