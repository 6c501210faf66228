"""Site instrument folders: the package's schema, bounded reading, no silent replacement.

The STAR-P fixture's key is invented (see its first lines); these tests check the path a site's
file takes, not the STAR-P.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from alliance import instruments
from alliance.instruments import InstrumentDefinitionError, add_instruments_dir
from alliance.instruments.site import MAX_FILE_BYTES, MAX_FILES

FIXTURE = Path(__file__).parents[1] / "protocol" / "fixtures" / "site_instruments" / "star_p.yaml"


pytestmark = pytest.mark.usefixtures("package_bank")  # tests/conftest.py: the bank as shipped, after each test


@pytest.fixture
def site(tmp_path):
    folder = tmp_path / "site"
    folder.mkdir()
    shutil.copy(FIXTURE, folder / "star_p.yaml")
    return folder


def test_a_site_instrument_joins_the_bank_and_scores(site):
    assert "star_p" not in {i.id for i in instruments.list_instruments()}
    assert add_instruments_dir(site) == ("star_p",)
    assert instruments.get("star_p").short_name == "STAR-P"
    assert instruments.instrument_origin("star_p") == str(site.resolve() / "star_p.yaml")
    assert instruments.instrument_origin("wai_sr") == "instruments/wai_sr.yaml"
    # items 1-9 answered 3, the reverse-keyed 10-12 answered 1 (scored 4 + 0 - 1 = 3): total 36
    answers = pd.DataFrame({f"star_p_{i}": [3 if i <= 9 else 1] for i in range(1, 13)})
    scores = instruments.score("star_p", answers)
    assert scores["total"].tolist() == [36.0]
    assert scores["positive_collaboration"].tolist() == [18.0]
    assert instruments.site_folders() == (str(site.resolve()),)


def test_adding_the_same_folder_twice_is_a_no_op(site):
    add_instruments_dir(site)
    add_instruments_dir(site)
    assert instruments.site_folders() == (str(site.resolve()),)


def test_a_second_folder_with_a_different_definition_of_the_same_id_is_refused(site, tmp_path):
    add_instruments_dir(site)
    other = tmp_path / "other"
    other.mkdir()
    text = FIXTURE.read_text(encoding="utf-8").replace("label: Positive collaboration (INVENTED KEY)",
                                                               "label: Collaboration")
    (other / "star_p.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(InstrumentDefinitionError, match=r"star_p.*already defined differently by .*site/star_p.yaml"):
        add_instruments_dir(other)
    assert instruments.get("star_p").scales[1].label == "Positive collaboration (INVENTED KEY)"


def test_a_package_instrument_is_not_replaced_silently(site):
    text = (Path(instruments.__file__).parent / "gad7.yaml").read_text(encoding="utf-8")
    (site / "gad7.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(InstrumentDefinitionError, match=r"gad7\.yaml: id: 'gad7' is already the package's instrument "
                                                        r"\(instruments/gad7\.yaml\).*replaces: gad7"):
        add_instruments_dir(site)
    assert "star_p" not in {i.id for i in instruments.list_instruments()}  # nothing half-added


def test_replaces_uses_the_sites_definition(site):
    text = (Path(instruments.__file__).parent / "gad7.yaml").read_text(encoding="utf-8")
    (site / "gad7.yaml").write_text("replaces: gad7\n" + text.replace("name: Generalized", "name: Site GAD-7 —"),
                                    encoding="utf-8")
    add_instruments_dir(site)
    assert instruments.instrument_origin("gad7").endswith("site/gad7.yaml")


def test_replaces_of_no_package_instrument_is_refused(site):
    text = FIXTURE.read_text(encoding="utf-8")
    (site / "star_p.yaml").write_text("replaces: star_p\n" + text, encoding="utf-8")
    with pytest.raises(InstrumentDefinitionError, match="names no package instrument"):
        add_instruments_dir(site)


def test_the_id_must_be_the_file_name(site):
    shutil.move(site / "star_p.yaml", site / "starp.yaml")
    with pytest.raises(InstrumentDefinitionError, match=r"starp\.yaml: id: 'star_p' is not the file name; allowed: 'starp'"):
        add_instruments_dir(site)


def test_a_file_that_breaks_the_schema_names_file_and_key(site):
    text = FIXTURE.read_text(encoding="utf-8").replace("method: sum\n    items: [star_p_1, star_p_2, star_p_3,",
                                                       "method: median\n    items: [star_p_1, star_p_2, star_p_3,", 1)
    (site / "star_p.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(InstrumentDefinitionError, match=r"star_p\.yaml.*median"):
        add_instruments_dir(site)


def test_reading_is_bounded(site, tmp_path):
    (site / "big.yaml").write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    with pytest.raises(InstrumentDefinitionError, match=r"big\.yaml: is 262,145 bytes long; allowed: .* at most 262,144"):
        add_instruments_dir(site)
    many = tmp_path / "many"
    many.mkdir()
    for i in range(MAX_FILES + 1):
        (many / f"x{i}.yaml").write_text("id: x\n", encoding="utf-8")
    with pytest.raises(InstrumentDefinitionError, match=f"holds {MAX_FILES + 1} .yaml files; allowed: at most {MAX_FILES}"):
        add_instruments_dir(many)


def test_yaml_aliases_beyond_the_limit_are_refused(site):
    bomb = "a: &a [x, x]\n" + "".join(f"b{i}: &b{i} [*{'a' if i == 0 else f'b{i - 1}'}, *{'a' if i == 0 else f'b{i - 1}'}]\n"
                                      for i in range(120))
    (site / "bomb.yaml").write_text(bomb, encoding="utf-8")
    with pytest.raises(InstrumentDefinitionError, match=r"bomb\.yaml.*alias"):
        add_instruments_dir(site)


def test_not_a_folder(tmp_path):
    with pytest.raises(InstrumentDefinitionError, match="is not a folder"):
        add_instruments_dir(tmp_path / "nowhere")
