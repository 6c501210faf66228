"""The report of an analysis: figures, APA tables, ``report.html``, ``report.pdf`` and ``results.json``.

- :mod:`.figures` — pure functions returning matplotlib Figures (alliance and depression
  trajectories, alliance–outcome scatter plots, correlation heat map, mediation path diagrams,
  participant flow);
- :mod:`.tables` — APA-formatted tables (:mod:`.apa` formats the numbers);
- :mod:`.document` — what the report says (sections of text, tables, figures);
- :mod:`.render` — HTML (Jinja2 template ``templates/report.html.j2``) and PDF (reportlab);
- :mod:`.summary` and :mod:`.console` — the headline tables the command line prints;
- :mod:`.dsmb` — the DSMB safety report, blinded (open session) or unblinded (closed session);
- :func:`write_report` and :func:`write_results` — the only functions here that write files (with
  :func:`.dsmb.write_dsmb_report`).

Importing the package imports none of its modules: :mod:`.document` (and with it matplotlib and
the analysis) is loaded when :class:`Document` or :func:`build_document` is first used, so that
``from alliance.report import apa`` or ``console`` stays light (the CLI's ``--help`` and ``score``).
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["Document", "build_document", "dsmb_document", "write_dsmb_report", "write_report", "write_results"]

_LAZY = {"Document": "document", "build_document": "document",
         "render_html": "render", "render_pdf": "render", "rendered_blocks": "render",
         "dsmb_document": "dsmb", "write_dsmb_report": "dsmb"}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def write_results(results, path: str | Path) -> Path:
    """Write ``results.json`` (UTF-8, indented, sections in their fixed order).

    Parameters
    ----------
    results : alliance.analysis.Results
    path : str or Path
        The file to write (its folder must exist).

    Returns
    -------
    Path
    """
    path = Path(path)
    text = json.dumps(results.to_dict(), indent=2, ensure_ascii=False, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def write_report(study, results, out_dir: str | Path, *, figures_png: bool = True, sampling=None) -> dict[str, Path]:
    """Write ``results.json``, ``report.html``, ``report.pdf`` (and each figure as a PNG) to ``out_dir``.

    Parameters
    ----------
    study : alliance.study.Study
    results : alliance.analysis.Results
    out_dir : str or Path
        Created if absent.
    figures_png : bool, default True
        Also write ``figures/<id>.png`` (for slides, the README, a manuscript).
    sampling : alliance.simulate.sampling.SamplingIntervals, optional
        For a synthetic study: the published findings over simulated trials of its size, shown
        beside the sample's values (``alliance demo``).

    Returns
    -------
    dict of str to Path
        ``results``, ``html``, ``pdf`` and ``figure:<id>`` for each figure.
    """
    from .document import build_document
    from .render import render_html, render_pdf, rendered_blocks

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    document = build_document(study, results, sampling=sampling)
    rendered = rendered_blocks(document)
    paths: dict[str, Path] = {"results": write_results(results, out / "results.json")}
    html_path = out / "report.html"
    html_path.write_text(render_html(rendered), encoding="utf-8")
    paths["html"] = html_path
    paths["pdf"] = render_pdf(rendered, out / "report.pdf")
    if figures_png:
        folder = out / "figures"
        folder.mkdir(exist_ok=True)
        for section in rendered.sections:
            for block in section.blocks:
                if block.kind == "figure":
                    target = folder / f"{block.id}.png"
                    target.write_bytes(block.png)
                    paths[f"figure:{block.id}"] = target
    for figure in document.figures:  # free the figures' memory (they are not managed by pyplot)
        figure.figure.clear()
    return paths
