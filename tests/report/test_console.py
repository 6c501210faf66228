"""How a summary table is drawn on the terminal."""

from __future__ import annotations

from rich.console import Console

from alliance.report.console import print_tables, rich_table
from alliance.report.summary import Column, SummaryTable

TABLE = SummaryTable("power", "Power", (Column("n", True), Column("test")),
                     (("20", "[bold]not markup[/]"), ("80% at n", "x")), note="1 left out.",
                     strong=frozenset({(0, 0)}), footer=1)


def test_columns_caption_and_footer():
    table = rich_table(TABLE)
    assert [c.justify for c in table.columns] == ["right", "left"]
    assert table.title == "Power" and table.caption == "1 left out."
    assert [row.style for row in table.rows] == [None, "italic"]


def test_cells_are_text_not_markup():
    console = Console(width=80, record=True, color_system=None)
    print_tables(console, [TABLE])
    text = console.export_text()
    assert "[bold]not markup[/]" in text and "1 left out." in text
