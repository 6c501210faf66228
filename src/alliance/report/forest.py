"""The forest plot of a pooled correlation (``alliance pool``; docs/pooling.md)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Polygon

from .figures import _figure, _styled

__all__ = ["forest_plot"]


def _r(value: float) -> str:
    text = f"{value:.2f}"
    return text.replace("0.", ".", 1).replace("-", "\u2212")


@_styled
def forest_plot(test, title: str | None = None) -> Figure:
    """One row per study (r with its 95% CI, a square whose area is the study's weight), the pooled
    estimate as a diamond (its CI) with the prediction interval as a line, and tau² and I² below.

    Parameters
    ----------
    test : alliance.analysis.pooling.PooledTest
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    studies = list(test.studies)
    rows = len(studies) + 2
    figure = _figure(7.0, 0.42 * rows + 1.2)
    axes = figure.add_subplot()
    positions = np.arange(len(studies), 0, -1) + 1
    weights = np.array([s.get("weight", 1.0 / len(studies)) for s in studies])
    for position, study, weight in zip(positions, studies, weights, strict=True):
        if study.get("ci_low") is not None:
            axes.plot([study["ci_low"], study["ci_high"]], [position, position], color="black", linewidth=1)
        axes.plot(study["r"], position, marker="s", color="black", linestyle="none",
                  markersize=4 + 10 * np.sqrt(weight / weights.max()))
        ci = f" [{_r(study['ci_low'])}, {_r(study['ci_high'])}]" if study.get("ci_low") is not None else ""
        axes.text(1.04, position, f"{_r(study['r'])}{ci}", va="center", fontsize=8,
                  transform=axes.get_yaxis_transform())
    labels = [f"{s['study']} (n = {s['n']})" for s in studies]
    ticks = list(positions)
    pooled = test.pooled
    if pooled is not None:
        meta = pooled["meta"]
        diamond = Polygon([(pooled["ci_low"], 1), (pooled["r"], 1.25), (pooled["ci_high"], 1), (pooled["r"], 0.75)],
                          closed=True, facecolor="#555555", edgecolor="black")
        axes.add_patch(diamond)
        if pooled.get("pi_low") is not None:
            axes.plot([pooled["pi_low"], pooled["pi_high"]], [1, 1], color="black", linewidth=0.8, linestyle=":")
        axes.text(1.04, 1, f"{_r(pooled['r'])} [{_r(pooled['ci_low'])}, {_r(pooled['ci_high'])}]", va="center",
                  fontsize=8, fontweight="bold", transform=axes.get_yaxis_transform())
        labels.append(f"Pooled ({meta['method']}, {'Knapp-Hartung' if meta['test'] == 'knha' else 'z'})")
        ticks.append(1)
        axes.set_xlabel(f"Pearson r (95% CI; dotted: 95% prediction interval)    tau\u00b2 = {meta['tau2']:.3f} "
                        f"(z scale), I\u00b2 = {meta['i2']:.0f}%, Q({meta['q_df']}) = {meta['q']:.2f}, "
                        f"p = {meta['q_p']:.3f}", fontsize=8)
    else:
        axes.set_xlabel("Pearson r (95% CI); fewer than two usable studies: not pooled", fontsize=8)
    axes.axvline(0, color="#999999", linewidth=0.8)
    axes.set_yticks(ticks, labels)
    axes.set_ylim(0.3, max(ticks) + 0.7)
    axes.set_xlim(-1, 1)
    axes.grid(axis="y", visible=False)
    axes.set_title(title or f"{test.x} ~ {test.y}", loc="left")
    return figure
