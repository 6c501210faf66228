"""The power-curve figure draws exactly the entries of a power result."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from matplotlib.figure import Figure

from alliance.report.power_figure import power_curve_figure


def _entries():
    entries = []
    for test in ({"test": "correlation", "x": "wai_sr.total@prep", "y": "grid_hamd17.total@week4",
                  "effect": -0.65, "effect_measure": "r"},
                 {"test": "mixed_model", "x": "time", "y": "wai_sr.total", "timepoints": ["prep", "post_session1", "week1"],
                  "effect": 0.99, "effect_measure": "slope_per_timepoint"},
                 {"test": "mediation", "x": "wai_sr.total@prep", "m": "meq30.total@peak", "y": "grid_hamd17.total@week4",
                  "effect": -0.074, "effect_measure": "indirect_ab"}):
        for attrition in (0.0, 0.2):
            for n, power in ((20, 0.4), (40, 0.7), (60, 0.9)):
                power -= attrition / 4
                entries.append({**test, "n": n, "attrition": attrition, "power": power, "ci_low": power - 0.02,
                                "ci_high": power + 0.02, "sims": 2000})
    return entries


def test_one_panel_per_test_one_line_per_attrition():
    figure = power_curve_figure({"entries": _entries(), "sims": 2000, "alpha": 0.05})
    assert isinstance(figure, Figure)
    visible = [axis for axis in figure.axes if axis.get_visible()]
    assert len(visible) == 3
    for axis in visible:
        lines = [line for line in axis.get_lines() if len(line.get_xdata()) == 3]
        assert len(lines) == 2  # attrition 0% and 20%
        assert sorted(np.round(lines[0].get_ydata(), 3)) == [0.4, 0.7, 0.9]
        target = [line for line in axis.get_lines() if list(line.get_ydata()) == [0.8, 0.8]]
        assert target, "the 80% line is drawn"
    assert "mediation" in visible[2].get_title(loc="left")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    assert buffer.getvalue()[:4] == b"\x89PNG"


def test_accepts_the_json_written_by_the_cli():
    data = json.loads(json.dumps({"entries": _entries(), "sims": 2000, "alpha": 0.05}))
    assert len([a for a in power_curve_figure(data, columns=3).axes if a.get_visible()]) == 3


def test_no_entries_is_an_error():
    with pytest.raises(ValueError, match="no entries"):
        power_curve_figure({"entries": []})
