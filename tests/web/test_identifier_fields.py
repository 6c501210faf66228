"""The participant form's identifier fields: label and input type from the protocol's ``identifiers:``."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from alliance.protocol import IdentifierField, default_protocol
from alliance.web.capture import models as m
from alliance.web.capture.forms import ParticipantForm

pytestmark = pytest.mark.django_db


def form(study, data=None, fields=None, **kwargs) -> ParticipantForm:
    fields = default_protocol().identifier_fields if fields is None else fields
    if data is not None:
        arm = m.Arm.objects.get(study=study, code="immediate")
        data = {"participant_id": "P100", "arm": arm.pk, "enrolled_on": "2024-01-01", **data}
    return ParticipantForm(data, study=study, identifiers=fields, **kwargs)


def test_each_identifier_gets_its_label_and_input_type(web_study):
    html = {name: str(form(web_study)[f"identifier_{name}"]) for name in default_protocol().identifiers}
    labels = {name: form(web_study)[f"identifier_{name}"].label for name in default_protocol().identifiers}
    assert labels == {"name": "Full name", "email": "Email", "date_of_birth": "Date of birth",
                      "mrn": "Medical record number"}
    assert 'type="date"' in html["date_of_birth"] and 'type="email"' in html["email"]
    assert 'type="text"' in html["name"] and 'type="text"' in html["mrn"]
    phone = form(web_study, fields=(IdentifierField("phone", type="phone"), IdentifierField("record", type="number")))
    assert 'type="tel"' in str(phone["identifier_phone"]) and 'inputmode="numeric"' in str(phone["identifier_record"])


def test_plain_ids_still_work_as_text_fields(web_study):
    plain = form(web_study, fields=("name", "date_of_birth"))
    assert plain["identifier_date_of_birth"].label == "Date of birth"
    assert 'type="text"' in str(plain["identifier_date_of_birth"])


def test_a_date_of_birth_is_kept_as_iso_text(web_study):
    valid = form(web_study, {"identifier_date_of_birth": "1984-07-31", "identifier_email": "ana@example.org"})
    assert valid.is_valid(), valid.errors
    assert valid.identifiers() == {"name": "", "email": "ana@example.org", "date_of_birth": "1984-07-31", "mrn": ""}


@pytest.mark.parametrize(("value", "message"), [
    ("1984-02-30", "Give a date as YYYY-MM-DD, e.g. 1984-07-31."),
    ("31.07.1984", "Give a date as YYYY-MM-DD, e.g. 1984-07-31."),
    ("1850-01-01", "Give a date from 1900-01-01 on."),
])
def test_a_wrong_date_is_refused_with_a_clear_message(web_study, value, message):
    refused = form(web_study, {"identifier_date_of_birth": value})
    assert not refused.is_valid() and refused.errors["identifier_date_of_birth"] == [message]


def test_a_date_of_birth_in_the_future_is_refused(web_study):
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    refused = form(web_study, {"identifier_date_of_birth": tomorrow.isoformat()})
    assert not refused.is_valid()
    assert "in the future" in refused.errors["identifier_date_of_birth"][0]


@pytest.mark.parametrize(("field", "value"), [("email", "not an address"), ("phone", "call me"),
                                              ("record", "12a")])
def test_email_phone_and_number_are_checked(web_study, field, value):
    fields = (IdentifierField("email", type="email"), IdentifierField("phone", type="phone"),
              IdentifierField("record", type="number"))
    assert not form(web_study, {f"identifier_{field}": value}, fields=fields).is_valid()
    good = {"identifier_email": "a@b.org", "identifier_phone": "+49 (30) 123-4567", "identifier_record": "004217"}
    checked = form(web_study, good, fields=fields)
    assert checked.is_valid(), checked.errors
    assert checked.identifiers()["record"] == "004217"  # as typed: a record number's zeros are kept


def test_a_stored_date_that_is_not_iso_is_shown_as_text_to_correct(web_study):
    editing = form(web_study, initial={"identifier_date_of_birth": "31/07/1984"})
    rendered = str(editing["identifier_date_of_birth"])
    assert 'type="text"' in rendered and 'value="31/07/1984"' in rendered
