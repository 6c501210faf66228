"""The power-curve figure of ``alliance power``: power against sample size, one panel per test.

A pure function from a :class:`alliance.simulate.power.PowerResult` (or its ``to_dict()``, as
read back from ``power.json``) to a matplotlib ``Figure`` on an Agg canvas; nothing is written
here and nothing is recomputed: every point and band is an entry of the result (the simulated
power and its 95% Wilson interval).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .figures import PALETTE, STYLE

__all__ = ["power_curve_figure"]

EFFECT_SYMBOL = {"r": "r", "cohen_dz": "d_z", "slope_per_timepoint": "slope", "indirect_ab": "ab"}


def _panel_key(entry: Mapping[str, Any]) -> tuple:
    return (entry["test"], entry.get("x"), entry.get("m"), entry.get("y"), tuple(entry.get("timepoints") or ()))


def _title(entry: Mapping[str, Any]) -> str:
    test = entry["test"]
    if test == "mixed_model":
        what = f"{entry['y']} over {', '.join(entry.get('timepoints') or ())}"
        name = "mixed model, time trend"
    elif test == "mediation":
        what = f"{entry['x']} → {entry['m']}\n→ {entry['y']}"
        name = "mediation, indirect effect"
    elif test == "paired":
        what = f"{entry['x']} → {entry['y']}"
        name = "paired change"
    else:
        what = f"{entry['x']} ~ {entry['y']}"
        name = "correlation"
    symbol = EFFECT_SYMBOL.get(entry.get("effect_measure", ""), "effect")
    return f"{name} ({symbol} = {entry['effect']:.3g})\n{what}"


def power_curve_figure(result, target: float = 0.8, columns: int = 2) -> Figure:
    """Power against n for every test, one line (with its 95% interval band) per attrition rate.

    Parameters
    ----------
    result : PowerResult or mapping
        The result of :func:`alliance.simulate.power.power_analysis`, or its ``to_dict()``.
    target : float, default 0.8
        Power drawn as a dashed horizontal line.
    columns : int, default 2
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> entries = [{"test": "correlation", "x": "a@t1", "y": "b@t2", "n": n, "attrition": 0.1,
    ...             "effect": 0.5, "effect_measure": "r", "power": p, "ci_low": p - .02,
    ...             "ci_high": p + .02, "sims": 2000} for n, p in ((20, .6), (40, .9))]
    >>> figure = power_curve_figure({"entries": entries, "sims": 2000, "alpha": 0.05})
    >>> len(figure.axes)
    1
    """
    data = result.to_dict() if hasattr(result, "to_dict") else dict(result)
    entries = list(data["entries"])
    if not entries:
        raise ValueError("the power result has no entries to draw")
    panels: dict[tuple, list[Mapping[str, Any]]] = {}
    for entry in entries:
        panels.setdefault(_panel_key(entry), []).append(entry)
    rates = sorted({float(e["attrition"]) for e in entries})
    columns = max(1, min(columns, len(panels)))
    rows = math.ceil(len(panels) / columns)
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(4.6 * columns, 3.3 * rows + 0.5), dpi=100, layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.subplots(rows, columns, squeeze=False, sharey=True)
        for index, (axis, (_, panel)) in enumerate(zip(axes.flat, panels.items(), strict=False)):
            for colour, rate in zip(PALETTE * (len(rates) // len(PALETTE) + 1), rates, strict=False):
                line = sorted((e for e in panel if float(e["attrition"]) == rate), key=lambda e: e["n"])
                n = [e["n"] for e in line]
                axis.fill_between(n, [e["ci_low"] for e in line], [e["ci_high"] for e in line], color=colour,
                                  alpha=0.18, linewidth=0)
                axis.plot(n, [e["power"] for e in line], color=colour, marker="o", markersize=3, linewidth=1.4,
                          label=f"attrition {rate:.0%}")
            axis.axhline(target, color="#555555", linestyle="--", linewidth=0.9)
            axis.set_ylim(0.0, 1.02)
            axis.set_title(_title(panel[0]), fontsize=8.5, loc="left")
            axis.set_xlabel("participants enrolled (n)")
            if index % columns == 0:
                axis.set_ylabel("power")
        for axis in list(axes.flat)[len(panels):]:
            axis.set_visible(False)
        handles, labels = axes.flat[0].get_legend_handles_labels()
        sims = data.get("sims")
        alpha = data.get("alpha")
        caption = (f"{sims} simulated trials per point" if sims else "simulated trials") + \
            (f", two-sided α = {alpha:g}" if alpha else "") + f"; bands: 95% Wilson intervals; dashed: power {target:g}"
        figure.suptitle(caption, fontsize=8.5)
        figure.legend(handles, labels, loc="outside lower center", ncols=max(1, len(rates)))
    return figure
