"""Reading stored studies for the web app: the protocol, and scores as tables (one query each).

:func:`study_protocol` gives a stored study's :class:`~alliance.protocol.Protocol` (parsed once per
protocol version). :func:`participant_scores` and :func:`study_scores` serve dashboards and alerts.

The scores are those stored with each administration when it was submitted or imported, computed
by :func:`alliance.instruments.score` (the one scoring path); nothing is re-scored here. Only the
numeric score columns of each instrument are returned (each scale, and ``<scale>_pct`` where the
instrument declares it); bands and flags stay in ``Administration.scores``.
"""

from __future__ import annotations

from functools import cache, lru_cache

import pandas as pd

from alliance import instruments as bank
from alliance.protocol import Protocol, parse_protocol
from alliance.protocol.yaml_input import read_yaml
from alliance.study.measures import score_columns

from .models import Administration, Participant, Study

PARTICIPANT_COLUMNS = ["timepoint", "instrument", "scale", "value", "administered_at"]
STUDY_COLUMNS = ["participant_id", "timepoint", "instrument", "scale", "value"]


@lru_cache(maxsize=32)
def _protocol(sha256: str, text: str, name: str) -> Protocol:
    origin = f"stored protocol of study {name!r}"
    return parse_protocol(read_yaml(text, origin), origin=origin)


def study_protocol(study: Study) -> Protocol:
    """The protocol a stored study follows, read from its YAML (cached by its sha256).

    Parameters
    ----------
    study : Study

    Returns
    -------
    alliance.protocol.Protocol
    """
    return _protocol(study.protocol_sha256, study.protocol_yaml, study.name)


@cache
def _numeric_columns(instrument_id: str) -> tuple[str, ...]:
    try:
        return score_columns(bank.get(instrument_id))
    except bank.UnknownInstrumentError:
        return ()


def _rows(administrations, with_participant: bool) -> list[tuple]:
    rows = []
    for *key, scores in administrations:
        instrument_id = key[2] if with_participant else key[1]
        for scale in _numeric_columns(instrument_id):
            value = (scores or {}).get(scale)
            if value is not None:
                rows.append((*key, scale, float(value)))
    return rows


def participant_scores(participant: Participant) -> pd.DataFrame:
    """Every score of one participant's submitted administrations, long.

    Parameters
    ----------
    participant : Participant

    Returns
    -------
    DataFrame
        Columns ``timepoint`` (code), ``instrument``, ``scale``, ``value`` (float),
        ``administered_at`` (the ISO-8601 text stored, empty when not recorded), in protocol
        order of timepoints. Missing scores are left out.
    """
    administrations = (Administration.objects
                       .filter(participant=participant, status=Administration.Status.SUBMITTED)
                       .order_by("timepoint__order", "instrument")
                       .values_list("timepoint__code", "instrument", "administered_at", "scores"))
    rows = [(timepoint, instrument, scale, value, administered_at)
            for timepoint, instrument, administered_at, scale, value in _rows(administrations, False)]
    return pd.DataFrame.from_records(rows, columns=PARTICIPANT_COLUMNS)


def study_scores(study: Study) -> pd.DataFrame:
    """Every score of a study's submitted administrations, long.

    Parameters
    ----------
    study : Study

    Returns
    -------
    DataFrame
        Columns ``participant_id``, ``timepoint`` (code), ``instrument``, ``scale``, ``value``
        (float), ordered by participant, then timepoint in protocol order. Missing scores are left
        out.
    """
    administrations = (Administration.objects
                       .filter(participant__study=study, status=Administration.Status.SUBMITTED)
                       .order_by("participant__participant_id", "timepoint__order", "instrument")
                       .values_list("participant__participant_id", "timepoint__code", "instrument", "scores"))
    return pd.DataFrame.from_records(_rows(administrations, True), columns=STUDY_COLUMNS)
