"""The files of ``alliance power``: ``power.json`` (every entry) and ``power_curve.png`` (the figure)."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["write_power_report"]


def write_power_report(result, out_dir: str | Path, *, dpi: int = 150) -> dict[str, Path]:
    """Write ``power.json`` (UTF-8, indented, no NaN) and ``power_curve.png`` to ``out_dir``.

    Parameters
    ----------
    result : alliance.simulate.power.PowerResult
    out_dir : str or Path
        Created if absent.
    dpi : int, default 150
        Resolution of the PNG.

    Returns
    -------
    dict of str to Path
        ``json`` and ``figure``.
    """
    from .power_figure import power_curve_figure

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "power.json"
    json_path.write_text(json.dumps(result.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n",
                         encoding="utf-8")
    figure_path = out / "power_curve.png"
    figure = power_curve_figure(result)
    figure.savefig(figure_path, dpi=dpi)
    figure.clear()  # not managed by pyplot: free its memory now
    return {"json": json_path, "figure": figure_path}
