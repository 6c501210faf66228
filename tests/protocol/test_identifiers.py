"""The protocol's ``identifiers:``: plain column names, or mappings with a label and a type."""

from __future__ import annotations

import hashlib
import json

import pytest

from alliance.protocol import (
    IDENTIFIER_TYPES,
    IdentifierField,
    ProtocolError,
    default_protocol,
    parse_protocol,
)


def with_identifiers(entries) -> dict:
    raw = default_protocol().to_dict()
    raw["identifiers"] = entries
    return raw


def test_the_default_protocol_labels_and_types_its_identifiers():
    p = default_protocol()
    assert p.identifiers == ("name", "email", "date_of_birth", "mrn")
    assert p.identifier_fields == (IdentifierField("name", "Full name"), IdentifierField("email", "Email", "email"),
                                   IdentifierField("date_of_birth", "Date of birth", "date"),
                                   IdentifierField("mrn", "Medical record number"))


def test_a_plain_name_gets_a_label_from_its_id_and_type_text():
    p = parse_protocol(with_identifiers(["date_of_birth", "mrn"]))
    assert [(f.id, f.label, f.type) for f in p.identifier_fields] == [
        ("date_of_birth", "Date of birth", "text"), ("mrn", "Mrn", "text")]


def test_a_plain_list_is_written_back_as_a_plain_list_so_stored_hashes_stay():
    entries = ["name", "email", "date_of_birth", "mrn"]
    p = parse_protocol(with_identifiers(entries))
    assert p.to_dict()["identifiers"] == entries
    # The hash is of the canonical JSON of to_dict (Protocol.sha256): with the list as it was
    # before identifier mappings existed, the hash a stored study recorded is the one computed now.
    canonical = json.dumps(p.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    assert p.sha256 == hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    assert '"identifiers":["name","email","date_of_birth","mrn"]' in canonical


def test_mappings_round_trip_with_only_what_differs_from_the_defaults():
    entries = [{"id": "name", "label": "Full name"}, "mrn", {"id": "dob", "label": "Date of birth", "type": "date"},
               {"id": "phone", "type": "phone"}]
    p = parse_protocol(with_identifiers(entries))
    assert p.to_dict()["identifiers"] == entries
    assert parse_protocol(p.to_dict()) == p
    assert parse_protocol(with_identifiers([{"id": "mrn"}])).to_dict()["identifiers"] == ["mrn"]


@pytest.mark.parametrize(("entry", "key", "reason"), [
    ({"id": "dob", "type": "calendar"}, "identifiers[0].type", "is not one of the choices"),
    ({"id": "dob", "label": 3}, "identifiers[0].label", "is not a label"),
    ({"id": "dob", "colour": "red"}, "identifiers[0].colour", "is not a key of this section"),
    ({"label": "Date of birth"}, "identifiers[0].id", "is required"),
    ({"id": "arm"}, "identifiers[0]", "is a column every export needs"),
])
def test_a_wrong_mapping_is_a_problem_naming_its_key(entry, key, reason):
    with pytest.raises(ProtocolError) as error:
        parse_protocol(with_identifiers([entry]))
    assert any(p.column == key and reason in p.reason for p in error.value.problems), error.value


def test_identifier_fields_and_ids_are_one_list():
    assert IDENTIFIER_TYPES == ("text", "date", "email", "phone", "number")
    design = default_protocol()
    from dataclasses import replace

    only_ids = replace(design, identifiers=("mrn",), identifier_fields=())
    assert only_ids.identifier_fields == (IdentifierField("mrn", "Mrn"),)
    only_fields = replace(design, identifiers=(), identifier_fields=(IdentifierField("dob", type="date"),))
    assert only_fields.identifiers == ("dob",)
    assert design.identifier_field("mrn").label == "Medical record number"
    assert design.identifier_field("former_column") == IdentifierField("former_column", "Former column")
