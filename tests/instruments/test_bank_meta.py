"""Rules every instrument file in the bank must follow, whoever wrote it.

Checked on the raw YAML of every ``src/alliance/instruments/*.yaml`` (so the checks do not depend
on how the engine parses a file), and once through the engine (the bank loads as a whole):

- the file's ``id`` equals its file name;
- items are named ``<id>_<n>``, numbered consecutively from 1 in the published order;
- every scale, missing-item rule, band set, criterion, flag (and outcome rule) cites a non-empty
  ``source``;
- ``doi`` and ``citation`` are present and non-empty;
- no item carries ``text`` (and there are no ``instructions``) when ``licence.wording_included`` is
  false.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import yaml

from alliance import instruments

BANK = Path(str(resources.files("alliance.instruments")))
FILES = sorted(BANK.glob("*.yaml"))


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _nonempty(value) -> bool:
    return isinstance(value, str) and value.strip() != ""


def test_the_bank_has_files():
    # our own instruments at least; colleagues add more
    names = {p.stem for p in FILES}
    assert {"wai_sr", "meq30", "ceq", "ebi", "insight"} <= names


def test_the_whole_bank_loads_and_ids_match_file_names():
    loaded = {i.id for i in instruments.list_instruments()}
    assert loaded == {p.stem for p in FILES}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_id_equals_file_name(path):
    assert _load(path)["id"] == path.stem


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_items_are_numbered_consecutively_from_one(path):
    raw = _load(path)
    ids = [item["id"] for item in raw["items"]]
    assert ids, f"{path.name}: no items"
    assert ids == [f"{raw['id']}_{n}" for n in range(1, len(ids) + 1)], f"{path.name}: {ids}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_doi_and_citation_present(path):
    raw = _load(path)
    assert _nonempty(str(raw.get("doi") or "")), f"{path.name}: doi missing"
    assert _nonempty(raw.get("citation")), f"{path.name}: citation missing"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_rule_cites_a_source(path):
    raw = _load(path)
    missing_sources = []
    for scale in raw["scales"]:
        sid = scale.get("id")
        if not _nonempty(scale.get("source")):
            missing_sources.append(f"scale {sid}")
        if not _nonempty((scale.get("missing") or {}).get("source")):
            missing_sources.append(f"scale {sid} missing rule")
        if scale.get("bands") and not _nonempty(scale["bands"].get("source")):
            missing_sources.append(f"scale {sid} bands")
    for criterion in raw.get("criteria") or []:
        if not _nonempty(criterion.get("source")):
            missing_sources.append(f"criterion {criterion.get('id')}")
    for flag in raw.get("flags") or []:
        if not _nonempty(flag.get("source")):
            missing_sources.append(f"flag {flag.get('id')}")
    for name, rule in (raw.get("outcomes") or {}).items():
        if not _nonempty(rule.get("source")):
            missing_sources.append(f"outcome {name}")
    assert not missing_sources, f"{path.name}: no source for {', '.join(missing_sources)}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_wording_unless_the_licence_allows_it(path):
    raw = _load(path)
    licence = raw["licence"]
    assert isinstance(licence.get("wording_included"), bool), f"{path.name}: wording_included not true/false"
    assert _nonempty(licence.get("wording")), f"{path.name}: licence terms not stated"
    if not licence["wording_included"]:
        with_text = [item["id"] for item in raw["items"] if "text" in item]
        assert not with_text, f"{path.name}: wording_included is false but {with_text} have text"
        assert not raw.get("instructions"), f"{path.name}: instructions given without a licence"
