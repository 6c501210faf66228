"""Checking the audit trail's hash chains: is every event as it was written, and none added or removed?

:func:`verify_chain` walks each chain (the events of one study by id; the events without a study
form one more) and re-computes every ``hash`` (:mod:`alliance.web.audit.chain`). The first event
that fails is named with what is wrong:

- ``"hash does not match its content"``: the event was edited after it was written;
- ``"previous_hash does not match the previous event"``: an event was inserted before it, or the
  one before it deleted, or the events reordered.

Events at the start of a chain with empty hashes were written before the chain existed (migration
``audit`` 0002); they are counted, not checked. An event with an empty hash after the chain started
is a break like any other.

A chain cannot tell that events were added *at its end* by someone who computed their hashes, or
that its last events were removed: record the ``head`` of each chain elsewhere (a monitoring
report, a signed e-mail) to detect those too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from . import chain
from .models import AuditEvent

EDITED = "hash does not match its content"
RELINKED = "previous_hash does not match the previous event"


@dataclass(frozen=True)
class BrokenEvent:
    """The first event of a chain that fails the check: its id and what is wrong (:data:`EDITED`, :data:`RELINKED`)."""

    id: int
    problem: str


@dataclass(frozen=True)
class ChainCheck:
    """The check of one chain.

    Attributes
    ----------
    study : str or None
        The study's name; None for the events without a study, or when the study row is gone.
    study_id : int or None
    events : int
        The chain's events.
    checked : int
        The events whose hash and link were re-computed: all chained events when the chain is
        intact, up to and including the broken one otherwise.
    before_chain : int
        Events at the start written before the chain existed (empty hashes), not checked.
    head : str
        The hash of the last event checked and found intact (``""`` when none).
    broken : BrokenEvent or None
        The first event that fails; None when the chain is intact.
    """

    study: str | None
    study_id: int | None
    events: int
    checked: int
    before_chain: int
    head: str
    broken: BrokenEvent | None

    @property
    def intact(self) -> bool:
        return self.broken is None

    def to_dict(self) -> dict:
        return {**asdict(self), "intact": self.intact}


@dataclass(frozen=True)
class ChainVerification:
    """The check of every chain asked for (:func:`verify_chain`), one :class:`ChainCheck` per study."""

    chains: tuple[ChainCheck, ...]

    @property
    def intact(self) -> bool:
        return all(c.intact for c in self.chains)

    @property
    def broken(self) -> tuple[ChainCheck, ...]:
        return tuple(c for c in self.chains if not c.intact)

    def to_dict(self) -> dict:
        return {"intact": self.intact, "chains": [c.to_dict() for c in self.chains]}


_VALUES = ("id", "hash", "previous_hash", *chain.FIELDS)


def _check(study_id: int | None, name: str | None, rows) -> ChainCheck:
    events = checked = before_chain = 0
    previous = ""
    broken = None
    for row in rows:
        events += 1
        if broken is not None:
            continue
        fields = dict(zip(_VALUES, row, strict=True))
        event_id, stored, link = fields.pop("id"), fields.pop("hash"), fields.pop("previous_hash")
        if checked == 0 and stored == "" and link == "":
            before_chain += 1
            continue
        checked += 1
        if link != previous:
            broken = BrokenEvent(event_id, RELINKED)
        elif chain.event_hash(link, **fields) != stored:
            broken = BrokenEvent(event_id, EDITED)
        else:
            previous = stored
    return ChainCheck(study=name, study_id=study_id, events=events, checked=checked, before_chain=before_chain,
                      head=previous, broken=broken)


def verify_chain(study=None, using: str = "default") -> ChainVerification:
    """Re-compute the audit trail's hash chains and find the first broken event of each.

    Parameters
    ----------
    study : alliance.web.capture.models.Study or str, optional
        One study (a stored row or its name); default every chain, including the events without a
        study and those of deleted studies.
    using : str
        Database alias.

    Returns
    -------
    ChainVerification
        One :class:`ChainCheck` per chain, the events without a study first.

    Raises
    ------
    LookupError
        When ``study`` is a name no stored study has.

    Notes
    -----
    Event :math:`i` of a chain is intact when
    :math:`\\mathrm{previous\\_hash}_i = \\mathrm{hash}_{i-1}` (:math:`\\mathrm{hash}_0 = ""`) and
    :math:`\\mathrm{hash}_i = \\mathrm{SHA256}(\\mathrm{canonical}(\\mathrm{fields}_i, \\mathrm{previous\\_hash}_i))`
    (:func:`alliance.web.audit.chain.canonical`). The events are read in one pass, ordered by
    study and id.
    """
    study_model = AuditEvent._meta.get_field("study").related_model  # capture.Study, by the app registry
    names = dict(study_model._default_manager.using(using).values_list("pk", "name"))
    events = AuditEvent.objects.using(using)
    if study is not None:
        if isinstance(study, str):
            found = [pk for pk, name in names.items() if name == study]
            if not found:
                raise LookupError(f"no study named {study!r} in the database; stored: {', '.join(sorted(names.values()))}")
            study_id = found[0]
        else:
            study_id = study.pk
        ids = [study_id]
        events = events.filter(study_id=study_id)
    else:
        ids = [None, *sorted({pk for pk in events.exclude(study_id=None).values_list("study_id", flat=True)
                              .distinct().order_by()})]
    checks = []
    for study_id in ids:
        rows = events.filter(study_id=study_id).order_by("id").values_list(*_VALUES).iterator(chunk_size=5000)
        check = _check(study_id, names.get(study_id), rows)
        if study_id is not None or check.events:
            checks.append(check)
    return ChainVerification(tuple(checks))
