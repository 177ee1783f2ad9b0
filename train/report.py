"""Training report: loss and accuracy per epoch, confusion matrices and reliability diagrams (HTML + PNG)."""

from __future__ import annotations

import os
from pathlib import Path

import plotly.graph_objects as go

from .evaluate import baseline_key



def write_report(run_dir: str | Path, metrics: dict, png: bool = True) -> list[Path]:
    """Save every figure as HTML (always) and PNG (`png`, when kaleido finds a Chromium); returns the paths.

    Per fold: the training curves and confusion matrices; pooled over folds: the confusion matrices and the
    reliability diagrams of the out-of-fold predictions."""
    run_dir = Path(run_dir)
    figs = {}
    for branch, name in (("audio", "Voice CNN"), ("face", "Face LSTM")):
        for k, h in enumerate(metrics["history"][branch]):
            figs[f"{branch}_history_fold{k}"] = history_figure(h, f"{name}, fold {k}: loss and accuracy per epoch")
    cms = {"audio_cnn": metrics["audio"]["cnn"], "audio_baseline": metrics["audio"][baseline_key(metrics["audio"])],
           **{f"face_lstm_{d}": m["lstm"] for d, m in metrics["face"]["by_dataset"].items()},
           **{f"face_baseline_{d}": m["baseline_last_frame_logreg"] for d, m in metrics["face"]["by_dataset"].items()},
           **{f"fused_{k}": v for k, v in metrics["fused"].items()}}
    for name, m in cms.items():
        if not m.get("n"):
            continue
        names = list(m["per_class"])  # the config's emotions, in their order
        figs[f"confusion_{name}_pooled"] = confusion_figure(
            m["confusion_matrix"], names, f"{name}, all folds: accuracy {m['accuracy_mean']:.1%} ± {m['accuracy_sd']:.1%} "
                                   f"(n={m['n']})")
        for k, cm in m.get("confusion_per_fold", {}).items():
            figs[f"confusion_{name}_fold{k}"] = confusion_figure(
                cm, names, f"{name}, fold {k}: accuracy {m['accuracy_per_fold'][k]:.1%}")
    for name in ("audio", "face", "fused"):
        c = metrics["calibration"].get(name, {})
        if c.get("reliability_before"):
            figs[f"reliability_{name}"] = reliability_figure(c, f"Reliability, {name} (out-of-fold)")
    paths = []
    for name, fig in figs.items():
        html = run_dir / f"{name}.html"
        fig.write_html(html, include_plotlyjs="cdn")
        paths.append(html)
    try:
        if not png:
            return paths
        import plotly.io as pio

        os.environ.setdefault("BROWSER_PATH", "/usr/bin/chromium")
        pngs = [run_dir / f"{name}.png" for name in figs]
        pio.write_images(list(figs.values()), pngs)
        paths += pngs
    except Exception as exc:  # PNG export needs a Chromium; the HTML files are the report either way
        print(f"PNG export skipped ({exc.__class__.__name__}: {exc})")
    return paths


def history_figure(history: dict, title: str) -> go.Figure:
    """Loss and accuracy per epoch, train and validation."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy"))
    epochs = list(range(1, len(history["train_loss"]) + 1))
    for key, col, dash in (("train_loss", 1, None), ("val_loss", 1, "dash"), ("train_acc", 2, None),
                           ("val_acc", 2, "dash")):
        fig.add_scatter(x=epochs, y=history[key], name=key, line=dict(dash=dash), row=1, col=col)
    fig.add_vline(x=history["best_epoch"] + 1, line_dash="dot", line_color="grey")
    fig.update_layout(title=title, height=380)
    return fig


def confusion_figure(matrix: list[list[int]], names: list[str], title: str) -> go.Figure:
    fig = go.Figure(go.Heatmap(z=matrix, x=names, y=names, colorscale="Blues",
                               text=matrix, texttemplate="%{text}"))
    fig.update_layout(title=title, xaxis_title="predicted", yaxis_title="true", yaxis_autorange="reversed",
                      height=460, width=520)
    return fig


def reliability_figure(calibration: dict, title: str) -> go.Figure:
    """Accuracy against confidence, before and after temperature scaling (the diagonal is perfect)."""
    fig = go.Figure()
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="grey"), name="perfect")
    for key, name in (("reliability_before", f"before (ECE {calibration['ece_before']:.3f})"),
                      ("reliability_after", f"after T={calibration['temperature']:.2f} (ECE {calibration['ece_after']:.3f})")):
        r = calibration[key]
        fig.add_scatter(x=r["confidence"], y=r["accuracy"], mode="lines+markers", name=name)
    fig.update_layout(title=title, xaxis=dict(title="confidence", range=[0, 1]),
                      yaxis=dict(title="accuracy", range=[0, 1]), height=420, width=520)
    return fig
