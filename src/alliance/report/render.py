"""Render a :class:`~alliance.report.document.Document` to HTML (Jinja2) and to PDF (reportlab).

Both renderers receive the same blocks, numbered the same way, with the figures rasterised once
to PNG. The HTML is self-contained (CSS inline, figures as base64 data URIs); the PDF embeds the
DejaVu Sans font that matplotlib ships, so the minus sign, α, ω and arrows print on any machine.
"""

from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
from jinja2 import Environment, PackageLoader, select_autoescape

from alliance import __version__

from .document import Document, FigureBlock, TableBlock

__all__ = ["RenderedBlock", "figure_png", "render_html", "render_pdf", "rendered_blocks"]

PNG_DPI = 150


def figure_png(figure, dpi: int = PNG_DPI) -> bytes:
    """The figure as PNG bytes (no timestamp or software metadata, so equal input gives equal bytes)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None}, facecolor="white")
    return buffer.getvalue()


@dataclass
class RenderedBlock:
    """A block ready for a renderer: ``kind`` is ``text``, ``table`` or ``figure``."""

    kind: str
    text: str = ""
    number: int = 0
    caption: str = ""
    columns: list[str] | None = None
    rows: list[list[str]] | None = None
    note: str = ""
    id: str = ""
    png: bytes = b""

    @property
    def png_base64(self) -> str:
        return base64.b64encode(self.png).decode("ascii")


@dataclass
class RenderedSection:
    id: str
    title: str
    blocks: list[RenderedBlock]


@dataclass
class RenderedDocument:
    title: str
    subtitle: str
    sections: list[RenderedSection]
    provenance: list[tuple[str, str]]


def rendered_blocks(document: Document) -> RenderedDocument:
    """Number tables and figures, rasterise the figures, turn tables into rows of strings."""
    table_number = figure_number = 0
    sections = []
    for section in document.sections:
        blocks = []
        for block in section.blocks:
            if isinstance(block, TableBlock):
                table_number += 1
                frame = block.frame.astype(str)
                blocks.append(RenderedBlock("table", number=table_number, caption=block.caption,
                                            columns=[str(c) for c in frame.columns],
                                            rows=frame.to_numpy().tolist(), note=block.note))
            elif isinstance(block, FigureBlock):
                figure_number += 1
                blocks.append(RenderedBlock("figure", number=figure_number, caption=block.caption, id=block.id,
                                            png=figure_png(block.figure)))
            else:
                blocks.append(RenderedBlock("text", text=str(block)))
        sections.append(RenderedSection(section.id, section.title, blocks))
    return RenderedDocument(document.title, document.subtitle, sections, list(document.provenance))


def render_html(rendered: RenderedDocument) -> str:
    """The self-contained HTML report (template ``templates/report.html.j2``)."""
    environment = Environment(loader=PackageLoader("alliance.report", "templates"),
                              autoescape=select_autoescape(["html", "j2"]), trim_blocks=False)
    template = environment.get_template("report.html.j2")
    return template.render(document=rendered, version=__version__)


# ---------------------------------------------------------------------------------------------------
# PDF
# ---------------------------------------------------------------------------------------------------

_FONT = "DejaVuSans"
_FONT_BOLD = "DejaVuSans-Bold"


def _register_fonts() -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if _FONT in pdfmetrics.getRegisteredFontNames():
        return
    fonts = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    pdfmetrics.registerFont(TTFont(_FONT, str(fonts / "DejaVuSans.ttf")))
    pdfmetrics.registerFont(TTFont(_FONT_BOLD, str(fonts / "DejaVuSans-Bold.ttf")))
    pdfmetrics.registerFontFamily(_FONT, normal=_FONT, bold=_FONT_BOLD, italic=_FONT, boldItalic=_FONT_BOLD)


def _escape(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_pdf(rendered: RenderedDocument, path: str | Path) -> Path:
    """Write the PDF report (A4) with the same blocks as the HTML.

    Parameters
    ----------
    rendered : RenderedDocument
    path : str or Path

    Returns
    -------
    Path
    """
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import (
        Image,
        KeepTogether,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    _register_fonts()
    path = Path(path)
    styles: dict[str, Any] = {
        "title": ParagraphStyle("title", fontName=_FONT_BOLD, fontSize=16, leading=20, spaceAfter=4),
        "subtitle": ParagraphStyle("subtitle", fontName=_FONT, fontSize=9, leading=12,
                                   textColor=colors.HexColor("#5b6670"), spaceAfter=10),
        "h2": ParagraphStyle("h2", fontName=_FONT_BOLD, fontSize=12, leading=15, spaceBefore=12, spaceAfter=6,
                             textColor=colors.HexColor("#1b6ca8"), keepWithNext=1),
        "body": ParagraphStyle("body", fontName=_FONT, fontSize=8.5, leading=11.5, spaceAfter=5),
        "caption": ParagraphStyle("caption", fontName=_FONT, fontSize=8, leading=10, spaceBefore=6, spaceAfter=3,
                                  keepWithNext=1),
        "figure_caption": ParagraphStyle("figure_caption", fontName=_FONT, fontSize=8, leading=10, spaceBefore=3,
                                         spaceAfter=8),
        "note": ParagraphStyle("note", fontName=_FONT, fontSize=7, leading=9, spaceAfter=6,
                               textColor=colors.HexColor("#5b6670")),
        "cell": ParagraphStyle("cell", fontName=_FONT, fontSize=6.5, leading=8),
        "head": ParagraphStyle("head", fontName=_FONT_BOLD, fontSize=6.5, leading=8),
    }
    document = SimpleDocTemplate(str(path), pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm,
                                 topMargin=15 * mm, bottomMargin=18 * mm, title=rendered.title,
                                 author="alliance", creator=f"alliance {__version__}", invariant=1)
    width = A4[0] - 30 * mm
    footer = " \u00b7 ".join(f"{name}: {value}" for name, value in rendered.provenance[:4])

    def on_page(canvas, doc) -> None:
        canvas.saveState()
        canvas.setFont(_FONT, 6.5)
        canvas.setFillColor(colors.HexColor("#5b6670"))
        canvas.drawString(15 * mm, 9 * mm, footer[:180])
        canvas.drawRightString(A4[0] - 15 * mm, 9 * mm, f"page {doc.page}")
        canvas.restoreState()

    story: list[Any] = [Paragraph(_escape(rendered.title), styles["title"]),
                        Paragraph(_escape(rendered.subtitle), styles["subtitle"])]
    for section in rendered.sections:
        # a heading never ends a page: it stays with the section's opening text and its first figure
        # or table (KeepTogether splits what is longer than a page, so nothing is lost)
        start = len(story)
        story.append(Paragraph(_escape(section.title), styles["h2"]))
        opening = True
        for index, block in enumerate(section.blocks):
            if opening and index and (section.blocks[index - 1].kind != "text" or index == 3):
                story[start:] = [KeepTogether(story[start:])]
                opening = False
            if block.kind == "text":
                story.append(Paragraph(_escape(block.text), styles["body"]))
            elif block.kind == "figure":
                image = Image(io.BytesIO(block.png))
                # the figure's own size in points (PNG_DPI pixels per inch), shrunk to fit the page
                natural = 72.0 / PNG_DPI
                scale = min(natural, width / image.imageWidth, (A4[1] * 0.62) / image.imageHeight)
                image.drawWidth, image.drawHeight = image.imageWidth * scale, image.imageHeight * scale
                story.append(KeepTogether([image, Paragraph(
                    f"<b>Figure {block.number}.</b> {_escape(block.caption)}", styles["figure_caption"])]))
            else:
                data = [[Paragraph(_escape(c), styles["head"]) for c in block.columns]]
                data += [[Paragraph(_escape(_unbroken(cell)), styles["cell"]) for cell in row] for row in block.rows]
                table = Table(data, repeatRows=1, colWidths=_column_widths(block, width))
                table.setStyle(TableStyle([
                    ("LINEABOVE", (0, 0), (-1, 0), 1.0, colors.black),
                    ("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.black),
                    ("LINEBELOW", (0, -1), (-1, -1), 1.0, colors.black),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f6f8fa")]),
                    ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
                ]))
                caption = Paragraph(f"<b>Table {block.number}.</b> {_escape(block.caption)}", styles["caption"])
                story += [caption, table]
                if block.note:
                    story.append(Paragraph(_escape(block.note), styles["note"]))
        if opening and len(story) > start + 1:
            story[start:] = [KeepTogether(story[start:])]
    story += [Spacer(1, 8), Paragraph("Provenance", styles["h2"])]
    story += [Paragraph(f"<b>{_escape(name)}</b>: {_escape(value)}", styles["body"])
              for name, value in rendered.provenance]
    document.build(story, onFirstPage=on_page, onLaterPages=on_page)
    return path


def _unbroken(text: str) -> str:
    """``> .999``, ``p = .024``, ``n = 24`` stay on one line: the spaces around < > = become no-break spaces."""
    return re.sub(r" ?([<>=≤≥]) ", lambda m: (" " if m.group(0).startswith(" ") else "") + m.group(1) + " ",
                  text)


def _column_widths(block: RenderedBlock, width: float) -> list[float]:
    """Column widths: every column gets at least its longest word, the rest is shared by text length.

    A cell never breaks inside a number (``22``, ``.035``); long labels wrap at spaces.
    """
    from reportlab.pdfbase.pdfmetrics import stringWidth

    padding = 13.0  # left + right cell padding (6 pt each) and a little air
    minimum, preferred = [], []
    for index, column in enumerate(block.columns):
        cells = [_unbroken(str(row[index])) for row in block.rows]
        # split at ordinary spaces only: the no-break spaces of _unbroken hold "p = .024" together
        words = [word for text in cells + [column] for word in text.split(" ") if word] or [""]
        minimum.append(max(stringWidth(w, _FONT_BOLD, 6.5) for w in words) + padding)
        preferred.append(max([stringWidth(text, _FONT, 6.5) for text in cells]
                             + [stringWidth(column, _FONT_BOLD, 6.5)]) + padding)
    if sum(preferred) <= width:
        return preferred
    if sum(minimum) >= width:
        return [width * m / sum(minimum) for m in minimum]
    spare = width - sum(minimum)
    extra = [p - m for p, m in zip(preferred, minimum, strict=True)]
    return [m + spare * e / sum(extra) for m, e in zip(minimum, extra, strict=True)]
