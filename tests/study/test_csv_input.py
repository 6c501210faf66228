"""Reading CSV files: not UTF-8, a column named twice and rows of the wrong length are refused with file and row."""

from __future__ import annotations

import pytest

from alliance.study import StudyDataError, load, read_csv_text, save
from alliance.study.io import read_table

from .builders import small_study

HEADER = "participant_id,arm,site\n"


def refused(tmp_path, content: bytes, name="participants.csv") -> list:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(StudyDataError) as caught:
        read_table(path)
    assert all(p.file == str(path) for p in caught.value.problems)
    return list(caught.value.problems)


def test_a_plain_file_with_quotes_bom_and_crlf_reads_as_before(tmp_path):
    path = tmp_path / "participants.csv"
    path.write_bytes(b'\xef\xbb\xbfparticipant_id,arm,site\r\nP1,immediate,"Baltimore, MD"\r\n'
                     b'P2,delayed,"two\nlines, and ""quotes"""\r\n\r\nP3,delayed,\r\n')
    frame = read_csv_text(path)
    assert list(frame.columns) == ["participant_id", "arm", "site"]
    assert frame["site"].tolist()[:2] == ["Baltimore, MD", 'two\nlines, and "quotes"']
    assert frame["site"].isna().tolist() == [False, False, True]


def test_a_file_that_is_not_utf8_names_its_line(tmp_path):
    (problem,) = refused(tmp_path, (HEADER + "P1,immediate,Zürich\nP2,delayed,Genève\n").encode("latin-1"))
    assert problem.row == 2 and "is not UTF-8" in problem.reason and "UTF-8" in problem.allowed


def test_a_column_named_twice_is_refused_not_renamed(tmp_path):
    (problem,) = refused(tmp_path, b"participant_id,arm,site, site\nP1,immediate,a,b\n")
    assert (problem.row, problem.column) == (1, "site")
    assert "columns 3 and 4" in problem.reason


def test_a_short_row_is_refused_not_padded(tmp_path):
    (problem,) = refused(tmp_path, (HEADER + "P1,immediate,a\nP2,delayed\nP3,delayed,c\n").encode())
    assert problem.row == 3 and "has 2 fields; the header has 3" in problem.reason


def test_a_long_row_is_refused(tmp_path):
    (problem,) = refused(tmp_path, (HEADER + "P1,immediate,a,extra\n").encode())
    assert problem.row == 2 and "has 4 fields" in problem.reason


def test_a_file_cut_off_mid_row_is_refused(tmp_path):
    (problem,) = refused(tmp_path, (HEADER + "P1,immediate,a\nP2,del").encode())
    assert problem.row == 3 and "the file looks cut off" in problem.reason


def test_a_file_cut_off_inside_a_quoted_cell_is_refused(tmp_path):
    problems = refused(tmp_path, (HEADER + 'P1,immediate,a\nP2,delayed,"Balti').encode())
    assert any(p.row == 3 and "never closes" in p.reason for p in problems)


def test_a_last_line_without_newline_but_complete_is_read(tmp_path):
    path = tmp_path / "participants.csv"
    path.write_bytes((HEADER + "P1,immediate,a\nP2,delayed,").encode())
    assert read_csv_text(path)["participant_id"].tolist() == ["P1", "P2"]


def test_load_refuses_a_truncated_responses_file(tmp_path):
    save(small_study(), tmp_path)
    responses = tmp_path / "responses.csv"
    text = responses.read_bytes()
    responses.write_bytes(text[: text.rindex(b",", 0, len(text) - 1)])  # cut inside the last row
    with pytest.raises(StudyDataError) as caught:
        load(tmp_path)
    (problem,) = caught.value.problems
    assert problem.file == str(responses) and problem.row == text.count(b"\n")  # the last line


def test_a_quote_inside_an_unquoted_cell_is_a_plain_character(tmp_path):
    path = tmp_path / "participants.csv"
    path.write_bytes((HEADER + 'P1,immediate,5" tall\nP2,delayed,x\n').encode())
    assert read_csv_text(path)["site"].tolist() == ['5" tall', "x"]
    (problem,) = refused(tmp_path, (HEADER + 'P1,immediate,5" tall\nP2,delayed\n').encode())
    assert problem.row == 3 and "has 2 fields" in problem.reason


def test_lines_count_blank_lines_and_cells_spanning_lines(tmp_path):
    path = tmp_path / "participants.csv"
    path.write_bytes(b'participant_id,arm,site\r\nP1,immediate,"two\nlines"\r\n\r\n\nP2,delayed,\nP3,delayed,x\n')
    from alliance.study.io import read_csv_lines

    frame, lines = read_csv_lines(path)
    assert frame["participant_id"].tolist() == ["P1", "P2", "P3"]
    assert lines.tolist() == [2, 6, 7]
    # the same with a quote inside an unquoted cell (the slow, csv-module path)
    path.write_bytes(b'participant_id,arm,site\nP1,immediate,5" tall\n\nP2,delayed,"a\nb"\nP3,delayed,x\n')
    frame, lines = read_csv_lines(path)
    assert frame["participant_id"].tolist() == ["P1", "P2", "P3"] and lines.tolist() == [2, 4, 6]


def test_a_validation_message_after_blank_lines_names_the_line_an_editor_shows(tmp_path):
    save(small_study(), tmp_path)
    text = (tmp_path / "responses.csv").read_text().splitlines(keepends=True)
    text.insert(3, "\n")
    text.insert(3, "\n")
    bad = text[6].split(",")
    bad[4] = "99"
    text[6] = ",".join(bad)
    (tmp_path / "responses.csv").write_text("".join(text))
    with pytest.raises(StudyDataError) as caught:
        load(tmp_path)
    (problem,) = caught.value.problems
    assert problem.row == 7 and problem.value == "99"


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    import alliance.study.io as io_module

    monkeypatch.setattr(io_module, "MAX_CSV_BYTES", 1000)
    (problem,) = refused(tmp_path, HEADER.encode() + b"P1,immediate,a\n" * 100)
    assert "larger than a study file can be" in problem.reason and problem.allowed.startswith("at most 1,000 bytes")
