"""The ``invitations:`` section of a protocol: when participants are emailed their visit's link.

For each timepoint that gives a self-report, an **invitation** goes out on the day its window
opens (the planned date minus the window's days before, :func:`alliance.monitoring.schedule.
due_window`), and **reminders** a given number of days after the invitation, while the visit is
still open. Each email carries one private link to every self-report of the visit (a survey
queue, :class:`alliance.web.capture.models.VisitLink`), which expires when the window closes.
This is what REDCap's automated survey invitations do (an invitation when a condition becomes
true, then up to five reminders at a fixed interval; REDCap 13 "Automated Survey Invitations"
documentation); here the condition is the protocol's own time model.

A protocol without the section sends no email: a site opts in. A reminder due after the window
closes is not sent (the link no longer works then), and a participant who opted out, has no
email address, or has completed the visit gets nothing.

Schema (``docs/protocol.md``, "Invitations")::

    invitations:
      subject: Your questionnaires      # the email's subject; neutral by default (others may see it)
      reminders_days: [2, 4]            # default: days after the invitation
      timepoints:                       # optional, per timepoint id
        session1: {send: false}         # e.g. completed on site at the end of the session day
        prep: {reminders_days: [1]}

References
----------
Vanderbilt University (2023). REDCap: Automated Survey Invitations, and the Survey Queue
(REDCap's online help, version 13). Harris PA, Taylor R, Minor BL, et al. (2019). The REDCap
consortium: building an international community of software platform partners. J Biomed Inform
95:103208.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from alliance import instruments as bank

from .errors import Reader

__all__ = ["DEFAULT_REMINDERS_DAYS", "DEFAULT_SUBJECT", "InvitationPolicy", "TimepointInvitations",
           "read_invitations"]

DEFAULT_SUBJECT = "Your questionnaires"
# Two reminders, two and four days after the invitation: REDCap's reminder settings allow up to
# five at a fixed interval; two keep the burden low. Our choice; a protocol sets its own.
DEFAULT_REMINDERS_DAYS = (2, 4)
MAX_REMINDERS = 5
MAX_REMINDER_DAY = 365
_KEYS = ("subject", "reminders_days", "timepoints")
_TIMEPOINT_KEYS = ("send", "reminders_days")


@dataclass(frozen=True)
class TimepointInvitations:
    """Whether a timepoint's invitation is sent, and its reminders (days after the invitation)."""

    send: bool = True
    reminders_days: tuple[int, ...] = DEFAULT_REMINDERS_DAYS

    def to_dict(self) -> dict[str, Any]:
        return {"send": self.send, "reminders_days": list(self.reminders_days)}


@dataclass(frozen=True)
class InvitationPolicy:
    """The protocol's ``invitations:`` section.

    Attributes
    ----------
    enabled : bool
        False when the protocol has no section: no email is sent.
    subject : str
    timepoints : dict
        Timepoint id → :class:`TimepointInvitations`, for every timepoint that gives a self-report
        (the only ones that are emailed).
    """

    enabled: bool = False
    subject: str = DEFAULT_SUBJECT
    timepoints: dict[str, TimepointInvitations] = field(default_factory=dict)

    def for_timepoint(self, timepoint_id: str) -> TimepointInvitations | None:
        """The timepoint's invitations, or ``None`` when nothing is sent for it."""
        if not self.enabled:
            return None
        chosen = self.timepoints.get(timepoint_id)
        return chosen if chosen is not None and chosen.send else None

    def to_dict(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "subject": self.subject,
                "timepoints": {k: v.to_dict() for k, v in self.timepoints.items()}}


def self_report_timepoints(design: Any) -> list[str]:
    """Ids of the timepoints that give at least one self-report (``rater: participant``), in protocol order."""
    return [t.id for t in design.timepoints if any(bank.get(i).rater == "participant" for i in t.instruments)]


def _days(r: Reader, value: Any, key: str) -> tuple[int, ...] | None:
    days = r.listing(value, key, f"a list of at most {MAX_REMINDERS} whole numbers of days, 1–{MAX_REMINDER_DAY}")
    if len(days) > MAX_REMINDERS:
        r.problem(key, value, f"has {len(days)} reminders", f"at most {MAX_REMINDERS}")
        return None
    out = []
    for i, day in enumerate(days):
        if isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= MAX_REMINDER_DAY:
            r.problem(f"{key}[{i}]", day, "is not a number of days after the invitation",
                      f"a whole number 1–{MAX_REMINDER_DAY}")
            return None
        out.append(day)
    if out != sorted(set(out)):
        r.problem(key, value, "is not increasing", "days in increasing order, each once")
        return None
    return tuple(out)


def read_invitations(r: Reader, raw: Any, design: Any) -> InvitationPolicy:
    """Read and check a protocol's ``invitations:`` section (``None``: no invitations).

    Parameters
    ----------
    r : Reader
        Problems are recorded here, with YAML paths starting at ``invitations``.
    raw : mapping or None
    design : Design
        Timepoints named must be timepoints of it that give a self-report.

    Returns
    -------
    InvitationPolicy
        Meaningful only when ``r`` recorded no problem.
    """
    if raw is None:
        return InvitationPolicy()
    section = r.mapping(raw, "invitations", _KEYS, ())
    subject = section.get("subject", DEFAULT_SUBJECT)
    if not isinstance(subject, str) or not subject.strip() or len(subject) > 200 or "\n" in subject.strip():
        r.problem("invitations.subject", subject, "is not an email subject", "one line of text, 1–200 characters")
        subject = DEFAULT_SUBJECT
    default_days = DEFAULT_REMINDERS_DAYS
    if "reminders_days" in section:
        default_days = _days(r, section["reminders_days"], "invitations.reminders_days") or ()
    emailed = self_report_timepoints(design)
    chosen = {t: TimepointInvitations(reminders_days=default_days) for t in emailed}
    given = section.get("timepoints")
    if given is not None:
        per = r.mapping(given, "invitations.timepoints", design.timepoint_ids, ())
        for timepoint_id, settings in per.items():
            key = f"invitations.timepoints.{timepoint_id}"
            if timepoint_id not in emailed:
                if timepoint_id in design.timepoint_ids:
                    r.problem(key, timepoint_id, "gives no self-report, so nothing is emailed for it",
                              ", ".join(emailed))
                continue
            entry = r.mapping(settings, key, _TIMEPOINT_KEYS, ())
            send = r.boolean(entry["send"], f"{key}.send") if "send" in entry else True
            days = default_days
            if "reminders_days" in entry:
                days = _days(r, entry["reminders_days"], f"{key}.reminders_days") or ()
            chosen[timepoint_id] = TimepointInvitations(send=send, reminders_days=days)
    return InvitationPolicy(enabled=True, subject=subject.strip(), timepoints=chosen)
