"""The study design: arms, timepoints, instruments per timepoint, doses, derived timepoints.

The design is the first part of a protocol file (schema: ``docs/protocol.md``); the other
sections (``alerts:``, ``analysis:``, ``power:``) refer to it, so it is read first
(:func:`read_design`) and the sections are checked against the :class:`Design` it gives.
:class:`alliance.protocol.Protocol` is a design with its sections. Timepoints are sorted by
their ``order`` here, once; everything downstream takes ``timepoints`` in that order.

References
----------
Levin AW, Lancelotta R, Sepeda ND, et al. (2024). The therapeutic alliance between study
participants and intervention facilitators is associated with acute effects and clinical
outcomes in a psilocybin-assisted therapy trial for major depressive disorder. PLoS ONE 19(3):
e0300501. Davis AK, Barrett FS, May DG, et al. (2021). Effects of psilocybin-assisted therapy on
major depressive disorder. JAMA Psychiatry 78(5):481-489.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from alliance import instruments as bank

from .errors import Reader

KINDS = ("baseline", "preparation", "dosing", "integration", "follow_up")
# Where a timepoint lies relative to dosing: before the first dosing session (its scores are
# pre-dose: Levin et al. 2024's predictor is the alliance at the last preparation session, before
# the first dose), a dosing session itself, or after the first dosing session.
PHASES = ("pre_dose", "dosing", "post_dose")
DOSE_UNITS = ("mg", "mg/kg", "mg/70kg")
RULES = ("max", "min", "mean")
# Anchors that are not timepoints: the participant's enrolment, the start of treatment (enrolment
# plus the arm's start_offset_days) and the first / last timepoint of kind dosing.
FIXED_ANCHORS = ("enrolment", "treatment_start", "first_dosing", "last_dosing")
_CONTRACT_COLUMNS = ("participant_id", "arm", "site", "facilitator_ids")
# What an identifier column holds; forms give each its input (a date picker for `date`) and
# `participants.csv` is checked against it (alliance.study.validation).
IDENTIFIER_TYPES = ("text", "date", "email", "phone", "number")
_IDENTIFIER_KEYS = ("id", "label", "type")
# Bounds on the protocol's numbers (docs/protocol.md): wide enough for any real trial (a century
# of follow-up, a ten-year window), narrow enough that dates computed from them exist.
MAX_OFFSET_DAYS = 36_500
MAX_WINDOW_DAYS = 3_650
MAX_DOSE_AMOUNT = 10_000


@dataclass(frozen=True)
class Arm:
    """A trial arm. ``start_offset_days`` delays treatment (a waiting-list arm starts later)."""

    id: str
    label: str
    start_offset_days: int = 0
    description: str = ""


@dataclass(frozen=True)
class Dose:
    """The dose given at a dosing timepoint: ``amount`` ``unit`` of ``compound`` at ``session``."""

    compound: str
    amount: float
    unit: str
    session: int

    def describe(self) -> str:
        return f"{_plain(self.amount)} {self.unit} {self.compound} (session {self.session})"


@dataclass(frozen=True)
class Timepoint:
    """A scheduled assessment.

    It is due ``offset_days`` after its ``anchor`` (``enrolment``, ``treatment_start``,
    ``first_dosing``, ``last_dosing`` or another timepoint's id), within ``window_days`` =
    (days before, days after) that date. ``declared_phase`` is the ``phase`` the file gave, if
    any; :attr:`Design.phases` gives every timepoint's phase (declared, or from its place).
    """

    id: str
    label: str
    kind: str
    order: int
    anchor: str
    offset_days: int
    window_days: tuple[int, int]
    instruments: tuple[str, ...]
    dose: Dose | None = None
    declared_phase: str | None = None


@dataclass(frozen=True)
class IdentifierField:
    """A participant column that identifies a person, as forms show it: its label and its type.

    ``label`` defaults to the id with spaces for underscores and a capital first letter
    (``date_of_birth`` → "Date of birth"); ``type`` is one of :data:`IDENTIFIER_TYPES`.
    """

    id: str
    label: str = ""
    type: str = "text"

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", default_label(self.id))

    def to_entry(self) -> str | dict[str, str]:
        """The entry of the protocol's ``identifiers:`` list: the plain id unless a label or type was set."""
        entry = {"id": self.id}
        if self.label != default_label(self.id):
            entry["label"] = self.label
        if self.type != "text":
            entry["type"] = self.type
        return self.id if len(entry) == 1 else entry


def default_label(column: str) -> str:
    """A column name as a label: ``date_of_birth`` → "Date of birth"."""
    text = column.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


@dataclass(frozen=True)
class DerivedTimepoint:
    """A timepoint computed per participant and scale from others, e.g. ``peak`` = max over sessions."""

    id: str
    label: str
    from_timepoints: tuple[str, ...]
    rule: str


@dataclass(frozen=True)
class Design:
    """A study design: the part of a protocol every other section refers to.

    ``timepoints`` are in protocol order (sorted by ``order`` when read). ``identifiers`` are the
    ids of the identifying columns, ``identifier_fields`` the same columns with labels and types
    (either may be given; the other follows).
    """

    id: str
    name: str
    arms: tuple[Arm, ...]
    timepoints: tuple[Timepoint, ...]
    derived: tuple[DerivedTimepoint, ...] = ()
    identifiers: tuple[str, ...] = ()
    description: str = ""
    citation: str = ""
    identifier_fields: tuple[IdentifierField, ...] = ()
    instruments_dir: str = ""
    """The site's folder of instrument files, as an absolute path ("" for the package's alone)."""

    def __post_init__(self) -> None:
        # One list of columns, two views of it: ids (what most code needs) and their fields.
        if self.identifier_fields and not self.identifiers:
            object.__setattr__(self, "identifiers", tuple(f.id for f in self.identifier_fields))
        elif [f.id for f in self.identifier_fields] != list(self.identifiers):
            declared = {f.id: f for f in self.identifier_fields}
            object.__setattr__(self, "identifier_fields",
                               tuple(declared.get(i) or IdentifierField(i) for i in self.identifiers))

    # -- lookups -----------------------------------------------------------------------------

    @property
    def timepoint_ids(self) -> tuple[str, ...]:
        """Timepoint ids in protocol order (derived timepoints not included)."""
        return tuple(t.id for t in self.timepoints)

    def identifier_field(self, column: str) -> IdentifierField:
        """The identifier column's field (label, type); a column the protocol does not list gets the defaults."""
        return next((f for f in self.identifier_fields if f.id == column), None) or IdentifierField(column)

    @property
    def arm_ids(self) -> tuple[str, ...]:
        return tuple(a.id for a in self.arms)

    @property
    def derived_ids(self) -> tuple[str, ...]:
        return tuple(d.id for d in self.derived)

    @property
    def instruments(self) -> tuple[str, ...]:
        """Every instrument the protocol gives, in order of first administration."""
        return tuple(dict.fromkeys(i for t in self.timepoints for i in t.instruments))

    @property
    def dosing_timepoints(self) -> tuple[Timepoint, ...]:
        return tuple(t for t in self.timepoints if t.kind == "dosing")

    @cached_property
    def phases(self) -> dict[str, str]:
        """Timepoint id → ``pre_dose``, ``dosing`` or ``post_dose`` (:data:`PHASES`).

        A timepoint's declared ``phase``, else its place: a dosing timepoint is ``dosing``, one
        ordered before the first dosing timepoint ``pre_dose``, any other ``post_dose``. A
        protocol without dosing timepoints has only ``pre_dose`` timepoints.
        """
        dosing = [t.order for t in self.timepoints if t.kind == "dosing"]
        first = min(dosing) if dosing else float("inf")
        return {t.id: t.declared_phase or ("dosing" if t.kind == "dosing" else
                                           "pre_dose" if t.order < first else "post_dose")
                for t in self.timepoints}

    @cached_property
    def timepoint_order(self) -> dict[str, float]:
        """Timepoint id → its ``order``; a derived timepoint sits just after its last source.

        Derived timepoints get the order of their last source plus 0.5 (``inf`` when none of the
        sources exists), so tables and figures list ``peak`` right after the dosing sessions.
        """
        order = {t.id: float(t.order) for t in self.timepoints}
        for derived in self.derived:
            sources = [order[s] for s in derived.from_timepoints if s in order]
            order[derived.id] = (max(sources) if sources else float("inf")) + 0.5
        return order

    def timepoint(self, timepoint_id: str) -> Timepoint:
        """The timepoint with this id; ``KeyError`` naming the timepoints that exist."""
        for t in self.timepoints:
            if t.id == timepoint_id:
                return t
        raise KeyError(f"protocol {self.id} has no timepoint {timepoint_id!r}; "
                       f"timepoints are {', '.join(self.timepoint_ids)}")

    def derived_timepoint(self, derived_id: str) -> DerivedTimepoint:
        for d in self.derived:
            if d.id == derived_id:
                return d
        raise KeyError(f"protocol {self.id} has no derived timepoint {derived_id!r}; "
                       f"derived timepoints are {', '.join(self.derived_ids) or 'none'}")

    def arm(self, arm_id: str) -> Arm:
        for a in self.arms:
            if a.id == arm_id:
                return a
        raise KeyError(f"protocol {self.id} has no arm {arm_id!r}; arms are {', '.join(self.arm_ids)}")

    def instruments_at(self, timepoint_id: str) -> tuple[str, ...]:
        """The instruments given at a timepoint; for a derived timepoint, those of its sources."""
        if timepoint_id in self.derived_ids:
            sources = self.derived_timepoint(timepoint_id).from_timepoints
            return tuple(dict.fromkeys(i for s in sources for i in self.timepoint(s).instruments))
        return self.timepoint(timepoint_id).instruments

    def administers(self, timepoint_id: str, instrument_id: str) -> bool:
        """Whether the instrument is given at the timepoint (for a derived one: at any source)."""
        if timepoint_id not in self.timepoint_ids and timepoint_id not in self.derived_ids:
            return False
        return instrument_id in self.instruments_at(timepoint_id)

    def timepoints_with(self, instrument_id: str, kinds: tuple[str, ...] | None = None) -> tuple[str, ...]:
        """Ids of the timepoints (in protocol order) that give the instrument, optionally of some kinds."""
        return tuple(t.id for t in self.timepoints
                     if instrument_id in t.instruments and (kinds is None or t.kind in kinds))

    def design_dict(self) -> dict[str, Any]:
        """The design as the mapping its YAML file holds."""
        out: dict[str, Any] = {"id": self.id, "name": self.name}
        if self.description:
            out["description"] = self.description
        if self.citation:
            out["citation"] = self.citation
        if self.instruments_dir:  # absolute: a study's saved protocol.yaml lives in another folder
            out["instruments_dir"] = self.instruments_dir
        out["arms"] = [
            {"id": a.id, "label": a.label, "start_offset_days": a.start_offset_days,
             **({"description": a.description} if a.description else {})}
            for a in self.arms
        ]
        out["timepoints"] = []
        for t in self.timepoints:
            entry: dict[str, Any] = {
                "id": t.id, "label": t.label, "kind": t.kind, "order": t.order, "anchor": t.anchor,
                "offset_days": t.offset_days, "window_days": list(t.window_days),
                "instruments": list(t.instruments),
            }
            if t.dose is not None:
                entry["dose"] = {"compound": t.dose.compound, "amount": _plain(t.dose.amount),
                                 "unit": t.dose.unit, "session": t.dose.session}
            if t.declared_phase is not None:  # only when declared: stored protocols keep their hash
                entry["phase"] = t.declared_phase
            out["timepoints"].append(entry)
        out["derived"] = [{"id": d.id, "label": d.label, "from_timepoints": list(d.from_timepoints),
                           "rule": d.rule} for d in self.derived]
        # Plain names unless the file gave a label or type: stored protocols keep their hash.
        out["identifiers"] = [f.to_entry() for f in self.identifier_fields]
        return out


# --------------------------------------------------------------------------------------------
# Reading a protocol from its parsed YAML mapping
# --------------------------------------------------------------------------------------------

DESIGN_KEYS = ("id", "name", "description", "citation", "instruments_dir", "arms", "timepoints", "derived",
               "identifiers")
_ARM_KEYS = ("id", "label", "start_offset_days", "description")
_TIMEPOINT_KEYS = ("id", "label", "kind", "order", "anchor", "offset_days", "window_days", "instruments", "dose",
                   "phase")
_DOSE_KEYS = ("compound", "amount", "unit", "session")
_DERIVED_KEYS = ("id", "label", "from_timepoints", "rule")


def read_design(r: Reader, top: dict) -> Design:
    """Read and check the design keys of a protocol mapping (problems go to the reader).

    Parameters
    ----------
    r : Reader
    top : dict
        The protocol's top-level mapping (its other sections are read elsewhere).

    Returns
    -------
    Design
        With timepoints sorted by ``order``; meaningful only when ``r`` recorded no problem.
    """
    protocol_id = r.identifier(top.get("id"), "id")

    arms = []
    arm_list = top.get("arms")
    if arm_list is not None and (not isinstance(arm_list, list) or not arm_list):
        r.problem("arms", None, "expected a non-empty list", "a list of arms")
        arm_list = []
    for i, entry in enumerate(arm_list or []):
        key = f"arms[{i}]"
        a = r.mapping(entry, key, _ARM_KEYS, ("id",))
        arms.append(Arm(
            id=r.identifier(a.get("id"), f"{key}.id"),
            label=str(a.get("label") or a.get("id") or ""),
            start_offset_days=_days(r, a.get("start_offset_days"), f"{key}.start_offset_days", 0, MAX_OFFSET_DAYS),
            description=str(a.get("description") or ""),
        ))
    r.unique([a.id for a in arms], "arms")

    timepoints = _parse_timepoints(r, top.get("timepoints"))
    timepoint_ids = [t.id for t in timepoints]
    _check_anchors(r, timepoints, raw_positions={t.id: i for i, t in enumerate(timepoints)})

    derived = []
    derived_list = top.get("derived")
    if derived_list is not None and not isinstance(derived_list, list):
        r.problem("derived", None, "expected a list", "a list of derived timepoints")
        derived_list = []
    for i, entry in enumerate(derived_list or []):
        key = f"derived[{i}]"
        d = r.mapping(entry, key, _DERIVED_KEYS, ("id", "from_timepoints", "rule"))
        derived_id = r.identifier(d.get("id"), f"{key}.id")
        if derived_id in timepoint_ids:
            r.problem(f"{key}.id", derived_id, "is already a timepoint id", "an id no timepoint has")
        sources = r.id_list(d.get("from_timepoints"), f"{key}.from_timepoints")
        if d.get("from_timepoints") is not None and not sources:
            r.problem(f"{key}.from_timepoints", None, "is empty", "one or more timepoint ids")
        for j, source in enumerate(sources):
            if source not in timepoint_ids:
                r.problem(f"{key}.from_timepoints[{j}]", source, "is not a timepoint", ", ".join(timepoint_ids))
        rule = d.get("rule")
        if rule is not None and rule not in RULES:
            r.problem(f"{key}.rule", rule, "is not a rule", ", ".join(RULES))
        derived.append(DerivedTimepoint(derived_id, str(d.get("label") or derived_id), tuple(sources),
                                        str(rule)))
    r.unique([d.id for d in derived], "derived")

    identifier_fields = _read_identifiers(r, top.get("identifiers"))
    identifiers = [f.id for f in identifier_fields]
    for i, name in enumerate(identifiers):
        if name in _CONTRACT_COLUMNS:
            r.problem(f"identifiers[{i}]", name, "is a column every export needs, not an identifier",
                      "participant columns other than " + ", ".join(_CONTRACT_COLUMNS))

    return Design(
        id=protocol_id,
        name=str(top.get("name") or ""),
        arms=tuple(arms),
        timepoints=tuple(sorted(timepoints, key=lambda t: t.order)),
        derived=tuple(derived),
        identifiers=tuple(identifiers),
        description=" ".join(str(top.get("description") or "").split()),
        citation=" ".join(str(top.get("citation") or "").split()),
        identifier_fields=tuple(identifier_fields),
        instruments_dir=str(top.get("instruments_dir") or ""),
    )


def _read_identifiers(r: Reader, raw: Any) -> list[IdentifierField]:
    """``identifiers:``: each entry a column name, or a mapping ``{id, label, type}``."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        r.problem("identifiers", raw, "expected a list", "a list of column names or {id, label, type} mappings")
        return []
    fields = []
    for i, entry in enumerate(raw):
        key = f"identifiers[{i}]"
        if not isinstance(entry, dict):
            fields.append(IdentifierField(str(entry)))
            continue
        e = r.mapping(entry, key, _IDENTIFIER_KEYS, ("id",))
        column = r.identifier(e.get("id"), f"{key}.id")
        label = e.get("label")
        if label is not None and (not isinstance(label, str) or not label.strip()):
            r.problem(f"{key}.label", label, "is not a label", "the text forms show for the column")
            label = None
        kind = e.get("type", "text")
        if not r.choice(kind, f"{key}.type", IDENTIFIER_TYPES):
            kind = "text"
        fields.append(IdentifierField(column, " ".join(str(label or "").split()), str(kind)))
    return fields


def _parse_timepoints(r: Reader, raw: Any) -> list[Timepoint]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not raw:
        r.problem("timepoints", None, "expected a non-empty list", "a list of timepoints")
        return []
    known = {i.id for i in bank.list_instruments()}
    timepoints = []
    sessions: dict[int, str] = {}
    for i, entry in enumerate(raw):
        t = r.mapping(entry, f"timepoints[{i}]", _TIMEPOINT_KEYS, ("id", "kind"))
        key = f"timepoints[{i}]" + (f" ({t['id']})" if t.get("id") else "")
        timepoint_id = r.identifier(t.get("id"), f"{key}.id")
        kind = t.get("kind")
        if kind is not None and kind not in KINDS:
            r.problem(f"{key}.kind", kind, "is not a timepoint kind", ", ".join(KINDS))
        order = r.integer(t.get("order"), f"{key}.order", i + 1)
        phase = t.get("phase")
        if phase is not None and phase not in PHASES:
            r.problem(f"{key}.phase", phase, "is not a phase", ", ".join(PHASES))
            phase = None
        offset = _days(r, t.get("offset_days"), f"{key}.offset_days", -MAX_OFFSET_DAYS, MAX_OFFSET_DAYS)
        window = t.get("window_days", [0, 0])
        if (not isinstance(window, list) or len(window) != 2
                or any(isinstance(w, bool) or not isinstance(w, int) or not 0 <= w <= MAX_WINDOW_DAYS
                       for w in window)):
            r.problem(f"{key}.window_days", window, "is not a window",
                      f"[days before, days after], two whole numbers from 0 to {MAX_WINDOW_DAYS:,}")
            window = [0, 0]
        instruments = r.id_list(t.get("instruments"), f"{key}.instruments")
        for j, instrument_id in enumerate(instruments):
            if instrument_id not in known:
                r.problem(f"{key}.instruments[{j}]", instrument_id, "is not an instrument in the bank",
                          ", ".join(sorted(known)) + " — or a site's own instrument file in the folder "
                          "named by instruments_dir: (docs/instruments.md, \"Site instrument files\")")
        if len(set(instruments)) != len(instruments):
            r.problem(f"{key}.instruments", instruments, "names an instrument twice", "each instrument once")
        dose = None
        if t.get("dose") is not None:
            if kind != "dosing":
                r.problem(f"{key}.dose", None, f"is given at a timepoint of kind {kind!r}",
                          "a dose only at timepoints of kind dosing")
            dose = _parse_dose(r, t["dose"], f"{key}.dose", default_session=len(sessions) + 1)
            if dose is not None:
                if dose.session in sessions:
                    r.problem(f"{key}.dose.session", dose.session,
                              f"is already the session of timepoint {sessions[dose.session]!r}",
                              "one dosing timepoint per session number")
                sessions[dose.session] = timepoint_id
        timepoints.append(Timepoint(
            id=timepoint_id,
            label=str(t.get("label") or timepoint_id),
            kind=str(kind),
            order=order,
            anchor=str(t.get("anchor") or "enrolment"),
            offset_days=offset,
            window_days=(int(window[0]), int(window[1])),
            instruments=tuple(instruments),
            dose=dose,
            declared_phase=None if phase is None else str(phase),
        ))
    r.unique([t.id for t in timepoints], "timepoints")
    _check_phases(r, timepoints)
    orders = [t.order for t in timepoints]
    for i, order in enumerate(orders):
        if orders.index(order) != i:
            r.problem(f"timepoints[{i}].order", order, f"is also the order of {timepoints[orders.index(order)].id!r}",
                      "a different whole number for every timepoint")
    return timepoints


def _check_phases(r: Reader, timepoints: list[Timepoint]) -> None:
    """A declared phase agrees with the timepoint's place relative to the dosing timepoints.

    ``dosing`` only for timepoints of kind dosing and every dosing timepoint ``dosing``;
    ``pre_dose`` only before the first dosing timepoint (a score after a dose cannot be pre-dose);
    ``post_dose`` only after it.
    """
    dosing = [t.order for t in timepoints if t.kind == "dosing"]
    first = min(dosing) if dosing else None
    for i, t in enumerate(timepoints):
        if t.declared_phase is None:
            continue
        key = f"timepoints[{i}] ({t.id}).phase"
        if (t.kind == "dosing") != (t.declared_phase == "dosing"):
            r.problem(key, t.declared_phase, f"does not fit a timepoint of kind {t.kind!r}",
                      "dosing for a timepoint of kind dosing and only for it")
        elif first is not None and t.declared_phase == "pre_dose" and t.order > first:
            r.problem(key, t.declared_phase, "is given to a timepoint ordered after the first dosing session",
                      "pre_dose only for timepoints ordered before the first dosing timepoint")
        elif first is not None and t.declared_phase == "post_dose" and t.order < first:
            r.problem(key, t.declared_phase, "is given to a timepoint ordered before the first dosing session",
                      "post_dose only for timepoints ordered after the first dosing timepoint")


def _parse_dose(r: Reader, raw: Any, key: str, default_session: int) -> Dose | None:
    d = r.mapping(raw, key, _DOSE_KEYS, ("compound", "amount", "unit"))
    if not d:
        return None
    amount = d.get("amount")
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int | float)
                               or not 0 < amount < MAX_DOSE_AMOUNT):  # also refuses NaN and infinity
        r.problem(f"{key}.amount", amount, "is not a dose amount", f"a number > 0 and < {MAX_DOSE_AMOUNT:,}")
        amount = None
    unit = d.get("unit")
    if unit is not None and unit not in DOSE_UNITS:
        r.problem(f"{key}.unit", unit, "is not a dose unit", ", ".join(DOSE_UNITS))
    session = r.integer(d.get("session"), f"{key}.session", default_session, minimum=1)
    return Dose(str(d.get("compound") or ""), float(amount or 0.0), str(unit), session)


def _days(r: Reader, value: Any, key: str, low: int, high: int) -> int:
    """A whole number of days from ``low`` to ``high`` (0 when absent; a problem when outside)."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        r.problem(key, value, "is not a whole number of days within the bounds",
                  f"a whole number of days ≥ {low:,} and ≤ {high:,}")
        return 0
    return value


def _check_anchors(r: Reader, timepoints: list[Timepoint], raw_positions: dict[str, int]) -> None:
    """Every anchor names something that exists, and no chain of anchors runs in a circle."""
    by_id = {t.id: t for t in timepoints}
    dosing = sorted((t for t in timepoints if t.kind == "dosing"), key=lambda t: t.order)
    allowed = ", ".join(FIXED_ANCHORS) + " or a timepoint id"

    def target(t: Timepoint) -> str | None:
        if t.anchor == "first_dosing":
            return dosing[0].id if dosing else None
        if t.anchor == "last_dosing":
            return dosing[-1].id if dosing else None
        return t.anchor if t.anchor in by_id else None

    for t in timepoints:
        key = f"timepoints[{raw_positions[t.id]}] ({t.id}).anchor"
        if t.anchor not in FIXED_ANCHORS and t.anchor not in by_id:
            r.problem(key, t.anchor, "is not an anchor", allowed)
        elif t.anchor in ("first_dosing", "last_dosing") and not dosing:
            r.problem(key, t.anchor, "needs a timepoint of kind dosing; the protocol has none", allowed)
        seen = [t.id]
        current = target(t)
        while current is not None:
            if current in seen:
                r.problem(key, t.anchor, "starts a chain of anchors that runs in a circle ("
                          + " → ".join(seen + [current]) + ")",
                          "an anchor chain that ends at enrolment or treatment_start")
                break
            seen.append(current)
            current = target(by_id[current])


def _plain(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)
