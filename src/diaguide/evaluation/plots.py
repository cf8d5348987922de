"""The report's figures, drawn with matplotlib's Agg backend and returned as base64 PNG data URIs."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on a server; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

_DPI = 110


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _bar_parts(cell: Mapping[str, Any] | None) -> tuple[float, float, float]:
    """(value, lower error, upper error) of one {"value","low","high"} cell; NaN when undefined."""
    if not cell or cell.get("value") is None:
        return float("nan"), 0.0, 0.0
    v = float(cell["value"])
    low = v if cell.get("low") is None else float(cell["low"])
    high = v if cell.get("high") is None else float(cell["high"])
    return v, max(v - low, 0.0), max(high - v, 0.0)


def grouped_bars(
    groups: Sequence[str],
    series: Mapping[str, Mapping[str, Mapping[str, Any]]],
    title: str,
    ylabel: str,
    ylim: tuple[float, float] | None = (0.0, 1.0),
    group_labels: Mapping[str, str] | None = None,
) -> str:
    """Bars for each group (x) and series (colour), with 95% interval whiskers.

    `series[name][group]` is a {"value", "low", "high"} cell.
    """
    names = list(series)
    width = 0.8 / max(len(names), 1)
    x = np.arange(len(groups))
    bars = len(groups) * max(1, len(names))
    fig, ax = plt.subplots(figsize=(min(13.0, max(6.0, 0.3 * bars + 2)), 3.8))
    for i, name in enumerate(names):
        parts = [_bar_parts(series[name].get(g)) for g in groups]
        values = [p[0] for p in parts]
        errors = np.array([[p[1] for p in parts], [p[2] for p in parts]])
        drawn = ax.bar(x + (i - (len(names) - 1) / 2) * width, values, width, yerr=errors, capsize=2, label=name)
        if bars <= 48:  # a zero bar is invisible without its number; past ~48 bars the numbers overlap
            scale = 100 if ylim and ylim[1] > 1 else 1
            labels = ["n/a" if np.isnan(v) else (f"{v:.0f}" if scale > 1 else f"{v:.2f}") for v in values]
            ax.bar_label(drawn, labels=labels, fontsize=6, rotation=90, padding=2)
    ax.set_xticks(x, [(group_labels or {}).get(g, g) for g in groups], rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if ylim:
        ax.set_ylim(ylim[0], ylim[1] * 1.14)  # headroom for the numbers above full bars
        ax.set_yticks(np.linspace(ylim[0], ylim[1], 6))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=min(4, max(1, len(names))), loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _png(fig)


def confusion(counts: Sequence[Sequence[int]], labels: Sequence[str], title: str) -> str:
    """A heatmap of physician action (rows) x engine action (columns), counts written in."""
    data = np.array(counts, dtype=float)
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    ax.imshow(data, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("engine")
    ax.set_ylabel("physician")
    ax.set_title(title, fontsize=10)
    peak = data.max() if data.size else 0
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            colour = "white" if peak and data[i, j] > peak / 2 else "black"
            ax.text(j, i, f"{int(data[i, j])}", ha="center", va="center", fontsize=8, color=colour)
    return _png(fig)
