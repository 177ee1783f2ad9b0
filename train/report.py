"""Training report: loss and accuracy per epoch, confusion matrices and reliability diagrams (HTML + PNG)."""

from __future__ import annotations

import os
from pathlib import Path

from emotion.plots import confusion_figure, history_figure, reliability_figure


def write_report(run_dir: str | Path, metrics: dict) -> list[Path]:
    """Save every figure as HTML (always) and PNG (when kaleido finds a Chromium); returns the paths."""
    run_dir = Path(run_dir)
    figs = {}
    for i, h in enumerate(metrics["history"]["audio"]):
        figs[f"audio_history_seed{i}"] = history_figure(h, f"Voice CNN (seed {i}): loss and accuracy per epoch")
    for i, h in enumerate(metrics["history"]["face"]):
        figs[f"face_history_seed{i}"] = history_figure(h, f"Face LSTM (seed {i}): loss and accuracy per epoch")
    cms = {"audio_cnn": metrics["audio"]["cnn"], "audio_baseline": metrics["audio"]["baseline_mfcc_stats_logreg"],
           "face_photo_sequences": metrics["face"]["lstm_photo_sequences"],
           "face_real_clips": metrics["face"]["lstm_real_clips"],
           **{f"fused_{k}": v for k, v in metrics["fused"].items()}}
    for name, m in cms.items():
        if m.get("n"):
            figs[f"confusion_{name}"] = confusion_figure(m["confusion_matrix"],
                                                         f"{name}: accuracy {m['accuracy']:.1%} (n={m['n']})")
    for name, c in metrics["calibration"].items():
        if isinstance(c, dict) and c.get("reliability_before"):
            figs[f"reliability_{name}"] = reliability_figure(c, f"Reliability, {name} (held-out speakers)")
    paths = []
    for name, fig in figs.items():
        html = run_dir / f"{name}.html"
        fig.write_html(html, include_plotlyjs="cdn")
        paths.append(html)
    try:
        import plotly.io as pio

        os.environ.setdefault("BROWSER_PATH", "/usr/bin/chromium")
        pngs = [run_dir / f"{name}.png" for name in figs]
        pio.write_images(list(figs.values()), pngs)
        paths += pngs
    except Exception as exc:  # PNG export needs a Chromium; the HTML files are the report either way
        print(f"PNG export skipped ({exc.__class__.__name__}: {exc})")
    return paths
