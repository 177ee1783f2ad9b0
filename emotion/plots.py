"""Plotly figures shared by the app and the training reports."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from .labels import EMOTIONS

COLORS = {"voice": "#1f77b4", "face": "#ff7f0e", "both": "#2ca02c"}


def styled(fig: go.Figure) -> go.Figure:
    """Readable on a light and on a dark page: transparent background, mid-grey text and grid; titles left."""
    fig.update_layout(paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)",
                      font=dict(color="#8a8a8a", size=13), title_x=0, title_xanchor="left")
    fig.update_xaxes(gridcolor="rgba(128,128,128,0.25)", zerolinecolor="rgba(128,128,128,0.4)")
    fig.update_yaxes(gridcolor="rgba(128,128,128,0.25)", zerolinecolor="rgba(128,128,128,0.4)")
    return fig


def probability_figure(prediction: Any) -> go.Figure:
    """Grouped bars: the six probabilities from the voice, the face and both together."""
    fig = go.Figure()
    for name, probs in (("voice", prediction.audio), ("face", prediction.face), ("both", prediction.fused)):
        if probs:
            fig.add_bar(name=name.capitalize(), x=list(probs), y=[probs[e] for e in probs],
                        marker_color=COLORS[name], text=[f"{probs[e]:.0%}" for e in probs], textposition="outside")
    fig.update_layout(barmode="group", yaxis=dict(range=[0, 1.15], tickformat=".0%", title="probability"),
                      title="How likely each emotion is", legend=dict(orientation="h", y=-0.18, title_text="from: "),
                      height=400, margin=dict(l=10, r=10, t=50, b=40), uniformtext=dict(minsize=10, mode="hide"))
    fig.update_yaxes(automargin=True)
    return styled(fig)


def timeline_figure(prediction: Any) -> go.Figure:
    """Emotion over time: one line per emotion (fused probability per window)."""
    fig = go.Figure()
    windows = [w for w in prediction.timeline if w.fused]
    mids = [(w.start_s + w.end_s) / 2 for w in windows]
    for e in EMOTIONS:
        fig.add_scatter(x=mids, y=[w.fused[e] for w in windows], mode="lines+markers", name=e)
    fig.update_layout(title="Emotion over time", xaxis_title="time (s)",
                      yaxis=dict(range=[0, 1], tickformat=".0%", title="probability"), height=340,
                      margin=dict(l=10, r=10, t=50, b=40), legend=dict(orientation="h", y=-0.25))
    fig.update_yaxes(automargin=True)
    return styled(fig)


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


def confusion_figure(matrix: list[list[int]], title: str) -> go.Figure:
    fig = go.Figure(go.Heatmap(z=matrix, x=list(EMOTIONS), y=list(EMOTIONS), colorscale="Blues",
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
