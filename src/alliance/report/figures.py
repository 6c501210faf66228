"""The report's figures: pure functions from a study and its results to a matplotlib ``Figure``.

Figures are built with the object-oriented API on a plain :class:`matplotlib.figure.Figure` (Agg
canvas), never with ``pyplot``: no global state, no display backend, the same input draws the same
picture. Statistics shown on a figure (r, p, paths) are read from the results, never recomputed;
the only numbers computed here are what a plot needs to draw: means with their 95% t intervals
(:math:`\\bar x \\pm t_{.975,\\,n-1}\\,s/\\sqrt n`) and the least-squares line through a scatter.
"""

from __future__ import annotations

import textwrap
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from scipy import stats as scipy_stats

from alliance.protocol import Measure

from . import apa
from .labels import Labels

__all__ = [
    "alliance_outcome_scatter",
    "alliance_trajectories",
    "correlation_heatmap",
    "mediation_diagram",
    "outcome_trajectories",
    "participant_flow",
]

PALETTE = ("#1b6ca8", "#d1495b", "#2e8b57", "#edae49", "#6a4c93", "#00798c")
INDIVIDUAL = "#9aa5b1"
STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e6e6e6",
    "grid.linewidth": 0.6,
    "legend.frameon": False,
    "svg.hashsalt": "alliance",
}


def _figure(width: float, height: float) -> Figure:
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _styled(function):
    """Run a figure function under the report's rcParams, so every figure looks the same."""
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            return function(*args, **kwargs)
    wrapper.__name__ = function.__name__
    wrapper.__doc__ = function.__doc__
    wrapper.__wrapped__ = function
    return wrapper


def _tick(label: str, width: int = 14) -> str:
    """A timepoint label wrapped onto short lines, so tick labels need no rotation."""
    return textwrap.fill(label, width)


def _roles(results) -> dict[str, Any]:
    return results.provenance["plan"]["roles"]


def _wide(study) -> pd.DataFrame:
    wide = study.measures(wide=True)
    if "participant_id" in wide.columns:
        wide = wide.set_index("participant_id")
    return wide


def _column(wide: pd.DataFrame, name: str) -> pd.Series:
    if name in wide.columns:
        return pd.to_numeric(wide[name], errors="coerce").astype(float)
    return pd.Series(np.nan, index=wide.index)


def _mean_ci(values: pd.Series) -> tuple[float, float, float, int]:
    """Mean and its 95% t interval (NaN interval when n < 2)."""
    present = values.dropna().to_numpy()
    n = present.size
    if n == 0:
        return np.nan, np.nan, np.nan, 0
    mean = float(present.mean())
    if n < 2:
        return mean, np.nan, np.nan, n
    half = float(scipy_stats.t.ppf(0.975, n - 1) * present.std(ddof=1) / np.sqrt(n))
    return mean, mean - half, mean + half, n


def _empty(axes, message: str) -> None:
    axes.text(0.5, 0.5, message, ha="center", va="center", transform=axes.transAxes, color="#555555", wrap=True)
    axes.set_xticks([])
    axes.set_yticks([])


def _trajectory(axes, frame: pd.DataFrame, positions: np.ndarray, color: str, label: str | None,
                individual: bool = True, offset: float = 0.0) -> None:
    """Individual lines (thin) and the mean with its 95% CI (thick) of the columns of ``frame``.

    All participants are drawn as one ``LineCollection`` (each line through the participant's
    answered timepoints) and one scatter of their points, not one ``Line2D`` per participant: the
    same picture, drawn in constant rather than per-participant time (issue 15).
    """
    if individual:
        values = frame.to_numpy(dtype=float)
        answered = ~np.isnan(values)
        x = np.broadcast_to(positions + offset, values.shape)
        segments = [np.column_stack([x[row, keep], values[row, keep]])
                    for row, keep in enumerate(answered) if keep.sum() >= 2]
        line_color = color if label else INDIVIDUAL
        alpha = 0.25 if label else 0.6
        # the look of axes.plot(..., linewidth=0.7, marker="o", markersize=2): Line2D's cap and
        # join styles, and marker edges of lines.markeredgewidth in the line's colour
        axes.add_collection(LineCollection(segments, colors=line_color, alpha=alpha, linewidths=0.7,
                                           capstyle="projecting", joinstyle="round", zorder=1))
        axes.scatter(x[answered], values[answered], s=2**2, marker="o", color=line_color, alpha=alpha,
                     linewidths=matplotlib.rcParams["lines.markeredgewidth"], zorder=1)
    summary = [_mean_ci(frame[column]) for column in frame.columns]
    means = np.array([s[0] for s in summary])
    lows = np.array([s[1] for s in summary])
    highs = np.array([s[2] for s in summary])
    keep = ~np.isnan(means)
    error = np.vstack([means - lows, highs - means])
    axes.errorbar(positions[keep] + offset, means[keep], yerr=np.nan_to_num(error[:, keep]), color=color,
                  linewidth=2.2, marker="o", markersize=5, capsize=3, zorder=3, label=label)


@_styled
def alliance_trajectories(study, results) -> Figure:
    """Alliance over time, one panel per alliance scale: each participant and the mean with 95% CI.

    Parameters
    ----------
    study : alliance.study.Study
    results : alliance.analysis.Results
        Its provenance names the alliance instrument, scales and timepoints.

    Returns
    -------
    matplotlib.figure.Figure
    """
    roles = _roles(results)["alliance"]
    labels = Labels(study.protocol)
    wide = _wide(study)
    scales, timepoints = roles["scales"], roles["timepoints"]
    columns = min(2, max(1, len(scales)))
    rows = int(np.ceil(len(scales) / columns)) or 1
    figure = _figure(3.6 * columns, 2.7 * rows)
    axes_grid = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    positions = np.arange(len(timepoints), dtype=float)
    for index, scale in enumerate(scales):
        axes = axes_grid[index]
        of_scale = Measure(roles["instrument"], scale)
        name = str(of_scale)
        axes.set_title(labels.scale(name))
        if not timepoints:
            _empty(axes, "alliance not measured")
            continue
        frame = pd.DataFrame({t: _column(wide, str(of_scale.at(t))) for t in timepoints}).dropna(how="all")
        if frame.empty:
            _empty(axes, "no data")
            continue
        _trajectory(axes, frame, positions, PALETTE[0], None)
        axes.set_xticks(positions, [_tick(labels.timepoint(t)) for t in timepoints], fontsize=8)
        axes.set_xlim(-0.3, len(timepoints) - 0.7)
        axes.set_ylabel("score")
    for axes in axes_grid[len(scales):]:
        axes.set_visible(False)
    figure.suptitle("Alliance over time: participants (grey) and mean with 95% CI", fontsize=10)
    return figure


@_styled
def outcome_trajectories(study, results) -> Figure:
    """The depression outcome from baseline through every follow-up, by arm (means with 95% CI).

    Returns
    -------
    matplotlib.figure.Figure
    """
    roles = _roles(results)["outcome"]
    labels = Labels(study.protocol)
    wide = _wide(study)
    timepoints = ([roles["baseline"]] if roles["baseline"] else []) + list(roles["follow_ups"])
    figure = _figure(7.0, 4.0)
    axes = figure.subplots()
    measure = roles["measure"]
    axes.set_title(f"{labels.scale(measure)} by arm: participants (thin) and mean with 95% CI")
    if not timepoints:
        _empty(axes, "the outcome is not measured")
        return figure
    participants = study.participants.set_index("participant_id")
    arm_of = participants["arm"].astype(str)
    arms = [a.id for a in study.protocol.arms if a.id in set(arm_of)] or sorted(set(arm_of))
    arm_labels = {a.id: getattr(a, "label", a.id) for a in study.protocol.arms}
    positions = np.arange(len(timepoints), dtype=float)
    width = 0.12 * (len(arms) - 1)
    for index, arm in enumerate(arms):
        members = arm_of.index[arm_of == arm]
        frame = pd.DataFrame({t: _column(wide, str(Measure.parse(measure, "forbidden").at(t))).reindex(members)
                              for t in timepoints})
        offset = (index - (len(arms) - 1) / 2) * (width / max(len(arms) - 1, 1)) if len(arms) > 1 else 0.0
        label = f"{arm_labels.get(arm, arm)} (n = {len(members)})"
        _trajectory(axes, frame.dropna(how="all"), positions, PALETTE[index % len(PALETTE)], label, offset=offset)
    axes.set_xticks(positions, [_tick(labels.timepoint(t)) for t in timepoints], fontsize=8)
    axes.set_ylabel(labels.scale(measure))
    axes.set_ylim(bottom=0)
    figure.legend(loc="outside lower center", ncol=min(len(arms), 3), fontsize=8)
    return figure


def _entry(results, x: str, y: str) -> dict[str, Any] | None:
    for entry in results.correlations:
        if entry.get("x") == x and entry.get("y") == y:
            return entry
    return None


@_styled
def alliance_outcome_scatter(study, results, pairs: list[tuple[str, str]] | None = None) -> Figure:
    """Scatter plots of alliance against the outcome, with the least-squares line and r, p, n.

    Parameters
    ----------
    study : alliance.study.Study
    results : alliance.analysis.Results
        r, p and n are taken from its ``correlations`` (never recomputed).
    pairs : list of (x, y) measure names, optional
        By default the alliance total at its first and last timepoint against every follow-up.

    Returns
    -------
    matplotlib.figure.Figure
    """
    roles = _roles(results)
    labels = Labels(study.protocol)
    wide = _wide(study)
    alliance = roles["alliance"]
    if pairs is None:
        timepoints = alliance["timepoints"]
        chosen = list(dict.fromkeys(timepoints[:1] + timepoints[-1:]))
        total = Measure(alliance["instrument"], alliance["scales"][0])
        outcome = Measure.parse(roles["outcome"]["measure"], "forbidden")
        pairs = [(str(total.at(t)), str(outcome.at(f))) for t in chosen for f in roles["outcome"]["follow_ups"]]
    if not pairs:
        figure = _figure(4, 3)
        _empty(figure.subplots(), "no alliance–outcome pairs")
        return figure
    rows_keys = list(dict.fromkeys(x for x, _ in pairs))
    columns_keys = list(dict.fromkeys(y for _, y in pairs))
    figure = _figure(2.3 * len(columns_keys) + 0.4, 2.3 * len(rows_keys) + 0.5)
    grid = figure.subplots(len(rows_keys), len(columns_keys), squeeze=False, sharey="row")
    for axes in grid.ravel():
        axes.set_visible(False)
    for x_name, y_name in pairs:
        axes = grid[rows_keys.index(x_name), columns_keys.index(y_name)]
        axes.set_visible(True)
        x, y = _column(wide, x_name), _column(wide, y_name)
        keep = x.notna() & y.notna()
        axes.scatter(x[keep], y[keep], s=14, color=PALETTE[0], alpha=0.8, edgecolor="white", linewidth=0.4)
        entry = _entry(results, x_name, y_name)
        if keep.sum() >= 3 and x[keep].nunique() > 1:
            slope, intercept = np.polyfit(x[keep], y[keep], 1)
            span = np.linspace(x[keep].min(), x[keep].max(), 2)
            axes.plot(span, intercept + slope * span, color=PALETTE[1], linewidth=1.5)
        if entry is not None and "skipped" not in entry:
            text = f"r = {apa.proportion(entry['r'])}\n{apa.p_with_symbol(entry['p'])}\nn = {entry['n']}"
        else:
            text = f"n = {int(keep.sum())}\nnot computed"
        axes.text(0.97, 0.97, text, transform=axes.transAxes, ha="right", va="top", fontsize=8,
                  bbox={"boxstyle": "round,pad=0.3", "facecolor": "white", "edgecolor": "#cccccc", "alpha": 0.9})
        x_measure, y_measure = Measure.parse(x_name), Measure.parse(y_name)
        axes.set_xlabel(f"{labels.scale(str(x_measure.without_timepoint()))} @\n"
                        f"{_tick(labels.timepoint(x_measure.timepoint), 28)}", fontsize=7)
        if columns_keys.index(y_name) == 0:
            axes.set_ylabel(labels.scale(str(y_measure.without_timepoint())), fontsize=8)
        axes.set_title(_tick(labels.timepoint(y_measure.timepoint), 24), fontsize=8)
    figure.suptitle(f"Alliance and {labels.scale(roles['outcome']['measure'])} at each follow-up "
                    "(least-squares line; p unadjusted)", fontsize=10)
    return figure


@_styled
def correlation_heatmap(results, labels: Labels | None = None) -> Figure:
    """Heat map of the correlations of alliance and acute measures with acute and outcome measures.

    Cells are the Pearson/Spearman r of ``results.correlations`` (blank where no correlation was
    planned or it was skipped); ``*`` marks p < .05 after the family's adjustment.

    Parameters
    ----------
    results : alliance.analysis.Results
    labels : Labels, optional
        For readable measure names; measure ids otherwise.

    Returns
    -------
    matplotlib.figure.Figure
    """
    roles = _roles(results)
    alliance = roles["alliance"]
    rows = [str(Measure(alliance["instrument"], s, t)) for s in alliance["scales"] for t in alliance["timepoints"]]
    rows += roles["acute"]["measures"]
    outcome = Measure.parse(roles["outcome"]["measure"], timepoint="forbidden")
    columns = list(roles["acute"]["measures"]) + [str(outcome.at(t)) for t in roles["outcome"]["follow_ups"]]
    values = np.full((len(rows), len(columns)), np.nan)
    marks = np.full((len(rows), len(columns)), "", dtype=object)
    for entry in results.correlations:
        if "skipped" in entry or entry.get("r") is None:
            continue
        for x, y in ((entry["x"], entry["y"]), (entry["y"], entry["x"])):
            if x in rows and y in columns:
                i, j = rows.index(x), columns.index(y)
                values[i, j] = entry["r"]
                significant = entry.get("p_adjusted") is not None and entry["p_adjusted"] < 0.05
                marks[i, j] = apa.proportion(entry["r"]) + ("*" if significant else "")
    keep_rows = ~np.isnan(values).all(axis=1)
    keep_columns = ~np.isnan(values).all(axis=0)
    values, marks = values[keep_rows][:, keep_columns], marks[keep_rows][:, keep_columns]
    rows = [r for r, k in zip(rows, keep_rows, strict=True) if k]
    columns = [c for c, k in zip(columns, keep_columns, strict=True) if k]
    name = (lambda m: labels.measure(m)) if labels else (lambda m: m)
    figure = _figure(max(4.5, 0.62 * len(columns) + 3.2), max(3.0, 0.32 * len(rows) + 2.2))
    axes = figure.subplots()
    if not rows or not columns:
        _empty(axes, "no correlations to show")
        return figure
    colormap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="#eeeeee")  # grey: not computed
    image = axes.imshow(np.ma.masked_invalid(values), cmap=colormap, vmin=-1, vmax=1, aspect="auto")
    axes.grid(False)
    # thin white lines between the blocks (alliance / acute rows; acute / outcome columns)
    acute = set(roles["acute"]["measures"])
    for i in range(1, len(rows)):
        if (rows[i] in acute) != (rows[i - 1] in acute):
            axes.axhline(i - 0.5, color="white", linewidth=3)
    for j in range(1, len(columns)):
        if (columns[j] in acute) != (columns[j - 1] in acute):
            axes.axvline(j - 0.5, color="white", linewidth=3)
    axes.set_xticks(range(len(columns)), [name(c) for c in columns], rotation=40, ha="right", fontsize=7)
    axes.set_yticks(range(len(rows)), [name(r) for r in rows], fontsize=7)
    for i in range(len(rows)):
        for j in range(len(columns)):
            if marks[i, j]:
                axes.text(j, i, marks[i, j], ha="center", va="center", fontsize=6.5,
                          color="white" if abs(values[i, j]) > 0.6 else "black")
    colorbar = figure.colorbar(image, ax=axes, shrink=0.8)
    colorbar.set_label("r")
    axes.set_title("Correlations (* p < .05 after adjustment within its family; grey: not computed)")
    return figure


def _box(axes, center: tuple[float, float], text: str, color: str) -> None:
    width, height = 0.26, 0.14
    axes.add_patch(FancyBboxPatch((center[0] - width / 2, center[1] - height / 2), width, height,
                                  boxstyle="round,pad=0.01,rounding_size=0.02", facecolor=color,
                                  edgecolor="#333333", linewidth=1.0))
    axes.text(center[0], center[1], text, ha="center", va="center", fontsize=8, wrap=True)


def _arrow(axes, start, end, text: str, offset: tuple[float, float], bold: bool) -> None:
    axes.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=14, linewidth=1.6 if bold else 1.0,
                                   color="#222222"))
    middle = ((start[0] + end[0]) / 2 + offset[0], (start[1] + end[1]) / 2 + offset[1])
    axes.text(*middle, text, ha="center", va="center", fontsize=8.5,
              fontweight="bold" if bold else "normal", bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})


@_styled
def mediation_diagram(entry: dict[str, Any], labels: Labels | None = None) -> Figure:
    """Path diagram of one simple mediation model, x → m → y, drawn with matplotlib patches.

    Parameters
    ----------
    entry : dict
        One ``results.mediation`` entry (``a, b, c_prime, total, indirect, indirect_ci_low,
        indirect_ci_high, p_indirect, n``).
    labels : Labels, optional

    Returns
    -------
    matplotlib.figure.Figure
        Unstandardized coefficients; the indirect effect with its bootstrap CI below the paths.
    """
    name = (lambda m: labels.measure(m).replace(" @ ", "\n@ ")) if labels else (lambda m: m.replace("@", "\n@"))
    figure = _figure(6.4, 3.4)
    axes = figure.subplots()
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.axis("off")
    x_at, m_at, y_at = (0.15, 0.28), (0.5, 0.78), (0.85, 0.28)
    _box(axes, x_at, name(entry["x"]), "#dbe9f6")
    _box(axes, m_at, name(entry["m"]), "#fde8d7")
    _box(axes, y_at, name(entry["y"]), "#e3f1e5")
    if "skipped" in entry:
        axes.text(0.5, 0.05, f"not estimated: {entry['skipped']}", ha="center", fontsize=8, color="#aa0000", wrap=True)
        return figure
    _arrow(axes, (x_at[0] + 0.06, x_at[1] + 0.08), (m_at[0] - 0.13, m_at[1] - 0.03), f"a = {apa.number(entry['a'], 3)}",
           (-0.05, 0.03), False)
    _arrow(axes, (m_at[0] + 0.13, m_at[1] - 0.03), (y_at[0] - 0.06, y_at[1] + 0.08), f"b = {apa.number(entry['b'], 3)}",
           (0.05, 0.03), False)
    _arrow(axes, (x_at[0] + 0.13, x_at[1]), (y_at[0] - 0.13, y_at[1]),
           f"c\u2032 = {apa.number(entry['c_prime'], 3)}  (c = {apa.number(entry['total'], 3)})", (0, -0.05), False)
    significant = entry.get("indirect_ci_low") is not None and (
        entry["indirect_ci_low"] > 0 or entry["indirect_ci_high"] < 0)
    level = int(round(100 * entry.get("confidence", 0.95)))
    axes.text(0.5, 0.06,
              f"indirect ab = {apa.number(entry['indirect'], 3)}, {level}% {entry.get('ci_method', 'bootstrap')} "
              f"bootstrap CI {apa.ci(entry['indirect_ci_low'], entry['indirect_ci_high'], decimals=3)}, "
              f"{apa.p_with_symbol(entry['p_indirect'])}, n = {entry['n']}",
              ha="center", va="center", fontsize=8.5, fontweight="bold" if significant else "normal")
    return figure


@_styled
def participant_flow(study) -> Figure:
    """Participants assessed at each timepoint, by arm, as a share of those enrolled.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from alliance.analysis import completeness

    table = completeness(study)
    labels = Labels(study.protocol)
    arms = [a for a in dict.fromkeys(table["arm"]) if a != "all"] or ["all"]
    arm_labels = {a.id: getattr(a, "label", a.id) for a in study.protocol.arms}
    timepoints = list(dict.fromkeys(table["timepoint"]))
    figure = _figure(7.0, 0.32 * len(timepoints) + 1.7)
    axes = figure.subplots()
    height = 0.8 / len(arms)
    positions = np.arange(len(timepoints), dtype=float)
    for index, arm in enumerate(arms):
        rows = table[table["arm"] == arm].set_index("timepoint").reindex(timepoints)
        offset = (index - (len(arms) - 1) / 2) * height
        axes.barh(positions + offset, rows["percent"].fillna(0), height=height * 0.95,
                  color=PALETTE[index % len(PALETTE)],
                  label=f"{arm_labels.get(arm, arm)} (n = {int(rows['enrolled'].iloc[0])})")
        for position, (assessed, enrolled) in zip(positions + offset, rows[["assessed", "enrolled"]].to_numpy(),
                                                  strict=True):
            axes.text(101, position, f"{int(assessed)}/{int(enrolled)}", va="center", fontsize=7)
    axes.set_yticks(positions, [labels.timepoint(t) for t in timepoints])
    axes.invert_yaxis()
    axes.set_xlim(0, 112)
    axes.set_xlabel("% of enrolled participants assessed")
    axes.grid(axis="y", visible=False)
    figure.legend(loc="outside lower center", ncol=len(arms), fontsize=8)
    axes.set_title("Participant flow: assessed at each timepoint")
    return figure


@_styled
def facilitator_caterpillar(entry: dict[str, Any], labels: Labels | None = None) -> Figure:
    """Each facilitator's estimated effect on the outcome, ± 1.96 conditional SD, sorted (a caterpillar plot).

    The effects are the conditional modes of the facilitator term of the association model
    (:mod:`alliance.analysis.facilitators`); a singular fit shows every effect at zero, which is
    said in the title rather than drawn as if it were a finding.
    """
    labels = labels or Labels()
    effects = entry.get("effects") or []
    figure = _figure(6.0, max(1.8, 0.32 * len(effects) + 1.0))
    axes = figure.add_subplot()
    if not effects:
        _empty(axes, "no facilitator effects estimated")
        return figure
    values = np.array([e["condval"] for e in effects])
    half = 1.96 * np.array([e["condsd"] for e in effects])
    positions = np.arange(len(effects))
    axes.errorbar(values, positions, xerr=half, fmt="o", color="#1f4e79", ecolor="#7f9fbf", capsize=2,
                  markersize=4)
    axes.axvline(0, color="#555555", linewidth=0.8)
    axes.set_yticks(positions, [f"{e['facilitator']} (n = {e['n']})" for e in effects])
    axes.set_xlabel(f"facilitator effect on {labels.measure(entry['y'], short=True)} (points)")
    axes.grid(axis="y", visible=False)
    if entry.get("association", {}).get("singular"):
        axes.set_title("facilitator variance estimated as zero (singular fit): all effects shrink to 0",
                       loc="left", fontsize=8)
    return figure
