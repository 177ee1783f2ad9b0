"""Plotly figures of a prediction, for the app (the training reports draw their own, in train/report.py)."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go


COLORS = {"voice": "#1f77b4", "face": "#ff7f0e", "both": "#2ca02c"}


def styled(fig: go.Figure) -> go.Figure:
    """Readable on a light and on a dark page: transparent background, mid-grey text and grid; titles left."""
    fig.update_layout(paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)",
                      font=dict(color="#8a8a8a", size=13), title_x=0, title_xanchor="left")
    fig.update_xaxes(gridcolor="rgba(128,128,128,0.25)", zerolinecolor="rgba(128,128,128,0.4)")
    fig.update_yaxes(gridcolor="rgba(128,128,128,0.25)", zerolinecolor="rgba(128,128,128,0.4)")
    return fig


def probability_figure(prediction: Any) -> go.Figure:
    """Grouped bars: each emotion's probability from the voice, the face and both together."""
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
    for e in (windows[0].fused if windows else {}):  # the weights' emotions, in their order
        fig.add_scatter(x=mids, y=[w.fused[e] for w in windows], mode="lines+markers", name=e)
    fig.update_layout(title="Emotion over time", xaxis_title="time (s)",
                      yaxis=dict(range=[0, 1], tickformat=".0%", title="probability"), height=340,
                      margin=dict(l=10, r=10, t=50, b=40), legend=dict(orientation="h", y=-0.25))
    fig.update_yaxes(automargin=True)
    return styled(fig)


def result_image(prediction: Any, path: str) -> str:
    """The result as one PNG to keep or share: the verdict, each answer's probability from the voice, the face and
    both, and the emotion over time for a longer clip (matplotlib, drawn off-screen; a white page)."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    windows = [w for w in prediction.timeline if w.fused]
    fig, axes = plt.subplots(2 if windows else 1, 1, figsize=(9, 7.2 if windows else 4.4), squeeze=False)
    fig.suptitle("\n".join(textwrap.wrap(prediction.verdict, 70)), x=0.02, ha="left", fontsize=14, fontweight="bold")
    bars = axes[0][0]
    present = [(n, p) for n, p in (("voice", prediction.audio), ("face", prediction.face), ("both", prediction.fused)) if p]
    names = list((prediction.fused or prediction.audio or prediction.face or {}).keys())
    width = 0.8 / max(1, len(present))
    for k, (name, probs) in enumerate(present):
        xs = [i + (k - (len(present) - 1) / 2) * width for i in range(len(names))]
        bars.bar(xs, [probs[e] for e in names], width, label=name, color=COLORS[name])
    bars.set_xticks(range(len(names)), names)
    bars.set_ylim(0, 1)
    bars.set_ylabel("probability")
    bars.legend(loc="upper right", ncols=3, frameon=False)
    used = " + ".join({"audio": "voice"}.get(m, m) for m in prediction.modalities) or "nothing"
    bars.set_title(f"{prediction.file} · {prediction.duration_s:.1f} s · from {used}", loc="left", fontsize=9,
                   color="#555")
    if windows:
        line = axes[1][0]
        mids = [(w.start_s + w.end_s) / 2 for w in windows]
        for e in names:
            line.plot(mids, [w.fused[e] for w in windows], marker="o", label=e)
        line.set_ylim(0, 1)
        line.set_xlabel("time (s)")
        line.set_ylabel("probability")
        line.set_title("Emotion over time", loc="left", fontsize=10)
        line.legend(loc="upper right", ncols=4, fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110, facecolor="white")
    plt.close(fig)
    return path
