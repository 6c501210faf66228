"""CSV exports are safe to open in a spreadsheet (OWASP CSV injection), and read back unchanged."""

from __future__ import annotations

import pandas as pd

from alliance.study import load, save
from alliance.study.formats import write_study
from alliance.study.io import read_csv_text, spreadsheet_safe, write_table

from .builders import small_study

ATTACK = "=cmd|' /C calc'!A0"


def test_formula_cells_get_a_leading_quote_and_numbers_do_not():
    cells = pd.Series([ATTACK, "+cmd", "-x", "@SUM(A1)", "\tx", "\rx", "-3.5", "+1", "1e-3", "ok", None],
                      dtype="string")
    assert spreadsheet_safe(cells).tolist() == [
        "'" + ATTACK, "'+cmd", "'-x", "'@SUM(A1)", "'\tx", "'\rx", "-3.5", "+1", "1e-3", "ok", pd.NA]


def test_export_neutralises_and_the_reader_removes_the_mark(tmp_path):
    study = small_study()
    participants = study.participants.copy()
    participants["site"] = participants["site"].astype(object)
    participants.loc[0, "site"] = ATTACK
    study = type(study)(study.protocol, participants, study.responses, study.dosing_sessions)
    save(study, tmp_path)
    line = (tmp_path / "participants.csv").read_text(encoding="utf-8").splitlines()[1]
    assert "'=cmd" in line and ",=cmd" not in line
    back = load(tmp_path)
    assert back.participants.loc[0, "site"] == ATTACK
    # the REDCap export is neutralised too
    write_study(study, tmp_path / "redcap", "redcap")
    assert "'=cmd" in (tmp_path / "redcap" / "records.csv").read_text(encoding="utf-8")


def test_machine_exports_can_turn_it_off(tmp_path):
    frame = pd.DataFrame({"note": [ATTACK]})
    write_table(frame, tmp_path / "a.csv", spreadsheet=False)
    assert (tmp_path / "a.csv").read_text(encoding="utf-8").splitlines()[1] == ATTACK
    write_table(frame, tmp_path / "b.csv")
    assert read_csv_text(tmp_path / "b.csv")["note"].tolist() == [ATTACK]
