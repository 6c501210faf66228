"""``instruments_dir:``: a protocol that needs a site's instrument (the Murphy et al. 2022 example).

The STAR-P fixture's key is invented (see its first lines).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from alliance import instruments
from alliance.analysis import run_analysis
from alliance.protocol import ProtocolError, load_protocol, parse_protocol, write_protocol
from alliance.simulate import simulate_trial

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "murphy2022" / "protocol.yaml"
FIXTURES = Path(__file__).parent / "fixtures" / "site_instruments"


pytestmark = pytest.mark.usefixtures("package_bank")  # tests/conftest.py: the bank as shipped, after each test


@pytest.fixture
def murphy(tmp_path):
    folder = tmp_path / "murphy2022"
    folder.mkdir()
    shutil.copy(EXAMPLE, folder / "protocol.yaml")
    shutil.copytree(FIXTURES, folder / "site_instruments")
    return folder / "protocol.yaml"


def test_without_the_site_folder_the_error_names_it_and_why():
    with pytest.raises(ProtocolError) as caught:
        load_protocol(EXAMPLE)
    message = str(caught.value)
    assert "key 'instruments_dir'" in message
    assert f"names no folder ({EXAMPLE.parent / 'site_instruments'})" in message
    assert "STAR-P, which the package does not ship" in message


def test_an_instrument_in_no_folder_says_where_a_site_adds_it(tmp_path):
    text = EXAMPLE.read_text(encoding="utf-8").replace("instruments_dir: site_instruments\n", "")
    (tmp_path / "protocol.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ProtocolError) as caught:
        load_protocol(tmp_path / "protocol.yaml")
    assert "timepoints[1] (prep1).instruments[0]': value 'star_p' is not an instrument in the bank" in str(caught.value)
    assert "instruments_dir:" in str(caught.value)


def test_the_folder_is_relative_to_the_protocol_file_and_its_instrument_is_known(murphy, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # not the protocol's folder
    protocol = load_protocol(murphy)
    assert protocol.instruments_dir == str(murphy.parent / "site_instruments")
    assert protocol.administers("prep1", "star_p") and protocol.administers("prep2", "star_p")
    assert instruments.instrument_origin("star_p") == str(murphy.parent / "site_instruments" / "star_p.yaml")


def test_a_saved_protocol_finds_the_folder_from_anywhere(murphy, tmp_path):
    protocol = load_protocol(murphy)
    elsewhere = tmp_path / "study"
    elsewhere.mkdir()
    write_protocol(protocol, elsewhere / "protocol.yaml")
    again = load_protocol(elsewhere / "protocol.yaml")
    assert again.instruments_dir == protocol.instruments_dir
    assert again.sha256 == protocol.sha256


def test_a_refused_site_file_is_a_protocol_problem_naming_the_file(murphy):
    broken = murphy.parent / "site_instruments" / "star_p.yaml"
    broken.write_text(broken.read_text(encoding="utf-8").replace("id: star_p\n", "id: starp\n", 1), encoding="utf-8")
    with pytest.raises(ProtocolError, match=r"key 'instruments_dir'.*holds an instrument file that is refused — "
                                            r".*star_p\.yaml: items\[0\]: item id 'star_p_1' should be 'starp_1'"):
        load_protocol(murphy)


def test_instruments_dir_must_be_a_name():
    with pytest.raises(ProtocolError, match=r"key 'instruments_dir': value 3 is not a folder name"):
        parse_protocol({"id": "x", "name": "x", "arms": [{"id": "a"}], "instruments_dir": 3,
                        "timepoints": [{"id": "t", "kind": "baseline", "instruments": ["gad7"]}]})


def test_the_murphy_plan_runs_with_the_site_instrument(murphy):
    protocol = load_protocol(murphy)
    results = run_analysis(simulate_trial(protocol, n=30, seed=7), created_utc="2026-01-01T00:00:00+00:00").to_dict()
    (paths,) = [m for m in results["mediation"] if m["m"] == "ebi.score@peak" and m["arm"] == "psilocybin"]
    assert paths["role"] == "confirmatory" and paths["family"] == "murphy_paths" and paths["n"] < 30
    assert paths["x"] == "star_p.total@prep1" and paths["y"] == "qids_sr16.total@week6"
    assert "fiml" in paths["missing_data"]
    changes = [c for c in results["alliance_change"] if c["role"] == "exploratory"]
    assert changes and {c["from"] for c in changes} == {"prep1"} and {c["to"] for c in changes} == {"prep2"}


def test_the_web_setting_is_read_at_the_edge(tmp_path):
    from alliance.web.config import build_settings

    settings = build_settings({"ALLIANCE_INSTRUMENTS_DIR": str(tmp_path), "ALLIANCE_DATA_DIR": str(tmp_path),
                               "ALLIANCE_SECRET_KEY": "x" * 50})
    assert settings["INSTRUMENTS_DIR"] == tmp_path
    assert build_settings({"ALLIANCE_DATA_DIR": str(tmp_path), "ALLIANCE_SECRET_KEY": "x" * 50})["INSTRUMENTS_DIR"] is None


def test_the_murphy_analyses_use_one_arm_each(murphy):
    import numpy as np

    from alliance import stats
    from alliance.analysis.pipeline import analysed_study

    protocol = load_protocol(murphy)
    study = simulate_trial(protocol, n=60, seed=11)
    results = run_analysis(study, created_utc="2026-01-01T00:00:00+00:00").to_dict()
    (entry,) = [c for c in results["correlations"] if c["analysis"] == "alliance_outcome"
                and c["x"] == "star_p.total@prep1"]
    assert entry["arm"] == "psilocybin"
    wide = analysed_study(study, results["deviations"]).measures(wide=True)
    arm = study.participants.set_index("participant_id")["arm"].reindex(wide.index)
    both = wide.loc[arm == "psilocybin", ["star_p.total@prep1", "qids_sr16.total@week6"]].dropna()
    expected = stats.correlation(both.iloc[:, 0], both.iloc[:, 1])
    assert entry["n"] == len(both) < 60
    assert entry["r"] == pytest.approx(expected.r, abs=1e-12) and entry["p"] == pytest.approx(expected.p, rel=1e-10)
    arms = {m["arm"] for m in results["mediation"]}
    assert arms == {"psilocybin", "escitalopram"}
    assert not np.isnan([m["indirect"] for m in results["mediation"]]).any()


def test_an_analysis_of_an_arm_the_protocol_lacks_is_refused(murphy):
    text = murphy.read_text(encoding="utf-8").replace("arm: escitalopram\n      x:", "arm: escitalopam\n      x:")
    murphy.write_text(text, encoding="utf-8")
    with pytest.raises(ProtocolError, match=r"analysis\.analyses\[1\] \(alliance_acute_outcome_paths_escitalopram\)\.arm"
                                            r"': value 'escitalopam' is not an arm of the protocol; allowed: psilocybin, escitalopram"):
        load_protocol(murphy)
