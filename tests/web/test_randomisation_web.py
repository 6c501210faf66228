"""Randomisation in the web app: the list seen by the unblinded role only, the arm allocated at enrolment."""

from __future__ import annotations

import copy
from collections import Counter

import pytest
from django.urls import reverse

from alliance.protocol import default_protocol, parse_protocol
from alliance.protocol.randomisation import allocation_list
from alliance.web.audit.models import AuditEvent
from alliance.web.capture import models as m
from alliance.web.capture import recording

from .webapp import client_for

pytestmark = pytest.mark.django_db
NAME = "randomised"
SECTION = {"method": "stratified_permuted_blocks", "ratio": {"immediate": 1, "delayed": 1}, "block_sizes": [2, 4],
           "strata": ["site", {"sex": ["female", "male"]}], "list_length": 24}


def _protocol():
    raw = copy.deepcopy(default_protocol().to_dict())
    raw["randomisation"] = SECTION
    return parse_protocol(raw)


@pytest.fixture
def randomised(accounts):
    from alliance.web.accounts.members import set_membership
    from alliance.web.audit.log import AuditLog

    study = recording.create_study(NAME, protocol=_protocol(), user=accounts.admin)
    log = AuditLog(actor="test:setup", study=study)
    set_membership(accounts.investigator, study, "investigator", log)
    set_membership(accounts.facilitator, study, "facilitator", log, facilitator_id="F1")
    set_membership(accounts.monitor, study, "monitor", log)
    log.write()
    return study


def _url(name, **kw):
    return reverse(f"capture:{name}", kwargs={"study": NAME, **kw})


def _generate(client, accounts, seed=20240517):
    c = client_for(client, accounts, "admin")
    response = c.post(_url("randomisation"), {"seed": str(seed), "values_site": "north, south"})
    assert response.status_code == 302, response.content.decode()[:3000]
    client.logout()


def _enrol(client, pid, site="north", sex="female", eligible=True):
    data = {"participant_id": pid, "stratum_site": site, "stratum_sex": sex, "enrolled_on": "2024-03-01"}
    if eligible:
        data["eligible"] = "on"
    return client.post(_url("participant_enrol"), data)


@pytest.mark.parametrize(("role", "status"), [("facilitator", 403), ("investigator", 403), ("monitor", 403),
                                              ("outsider", 403), ("admin", 200)])
def test_only_the_unblinded_role_sees_the_list(client, accounts, randomised, role, status):
    _generate(client, accounts)
    response = client_for(client, accounts, role).get(_url("randomisation"))
    assert response.status_code == status
    if status == 200:
        assert "20240517" in response.content.decode()  # the seed, for the admin only


def test_nobody_is_enrolled_before_the_list_exists(client, accounts, randomised):
    c = client_for(client, accounts, "investigator")
    assert c.get(_url("participant_enrol")).status_code == 409
    assert _enrol(c, "R001").status_code == 409
    assert not m.Participant.objects.filter(study=randomised).exists()


def test_the_arm_is_allocated_at_enrolment_from_the_stored_list_and_audited(client, accounts, randomised):
    _generate(client, accounts)
    c = client_for(client, accounts, "investigator")
    form_page = c.get(_url("participant_enrol")).content.decode()
    assert 'name="arm"' not in form_page and 'name="eligible"' in form_page
    # The list the core generates from the same seed, stratum by stratum.
    expected = allocation_list(_protocol().randomisation, 20240517, {"site": ["north", "south"]})
    arms = []
    for k in range(6):
        response = _enrol(c, f"R{k:03d}", site="south", sex="male")
        assert response.status_code == 302, response.content.decode()[:3000]
        arms.append(m.Participant.objects.get(study=randomised, participant_id=f"R{k:03d}").arm.code)
    assert arms == list(expected.stratum("sex=male;site=south").arms[:6])
    first = _enrol(c, "R100", site="north", sex="female")
    assert first.status_code == 302
    assert (m.Participant.objects.get(participant_id="R100").arm.code
            == expected.stratum("sex=female;site=north").arms[0])
    allocation = m.Allocation.objects.get(participant__participant_id="R003")
    assert (allocation.stratum, allocation.sequence, allocation.allocated_by) == (
        "sex=male;site=south", 4, accounts.investigator)
    event = AuditEvent.objects.get(model="capture.allocation", object_repr="R003 allocation")
    assert event.new == {"participant_id": "R003", "stratum": "sex=male;site=south", "sequence": 4,
                         "arm": arms[3]}
    assert "block" not in event.new  # block ends would let a reader of the audit trail deduce arms
    participant = m.Participant.objects.get(participant_id="R003")
    assert (participant.site, participant.covariates) == ("south", {"sex": "male"})


def test_balance_within_each_stratum_at_the_end_of_every_block(client, accounts, randomised):
    _generate(client, accounts, seed=99)
    c = client_for(client, accounts, "investigator")
    for k in range(12):
        assert _enrol(c, f"S{k:03d}", site="north", sex="male").status_code == 302
    rows = m.Allocation.objects.filter(study=randomised).order_by("sequence")
    blocks = Counter()
    ends = []
    for a in rows:
        blocks[a.block] += 1
    stored = m.RandomisationList.objects.get(study=randomised)
    stratum = next(s for s in stored.strata if s["key"] == "sex=male;site=north")
    total = 0
    for size in stratum["block_sizes"]:
        total += size
        if total <= 12:
            ends.append(total)
    for end in ends:
        counts = Counter(a.arm for a in rows if a.sequence <= end)
        assert counts["immediate"] == counts["delayed"]
    assert ends, "no block ended within 12 allocations"


def test_enrolment_needs_eligibility_and_a_known_stratum(client, accounts, randomised):
    _generate(client, accounts)
    c = client_for(client, accounts, "investigator")
    assert _enrol(c, "R001", eligible=False).status_code == 400
    assert _enrol(c, "R002", site="west").status_code == 400
    assert not m.Participant.objects.filter(study=randomised).exists()
    assert not m.Allocation.objects.exists()


def test_an_allocated_arm_cannot_be_changed_by_hand_or_by_import(client, accounts, randomised):
    _generate(client, accounts)
    c = client_for(client, accounts, "investigator")
    assert _enrol(c, "R001").status_code == 302
    participant = m.Participant.objects.get(participant_id="R001")
    other = m.Arm.objects.filter(study=randomised).exclude(pk=participant.arm_id).get()
    response = c.post(_url("participant_edit", participant="R001"),
                      {"arm": str(other.pk), "enrolled_on": "2024-03-01", "site": "north"})
    participant.refresh_from_db()
    assert participant.arm != other  # the field is disabled: the posted arm is ignored
    assert response.status_code in (200, 302)
    from alliance.web.capture.storage import StorageError, export_study, import_study

    tidy = export_study(NAME)
    tidy.participants.loc[tidy.participants.participant_id == "R001", "arm"] = other.code
    with pytest.raises(StorageError, match="allocated arm"):
        import_study(tidy, NAME, actor="test")
    participant.refresh_from_db()
    assert participant.arm != other


def test_the_list_is_generated_once(client, accounts, randomised):
    _generate(client, accounts)
    c = client_for(client, accounts, "admin")
    response = c.post(_url("randomisation"), {"seed": "1", "values_site": "north"})
    assert response.status_code == 400 and "generated once" in response.content.decode()
    assert m.RandomisationList.objects.get(study=randomised).seed == "20240517"
