"""Reading stored studies for the web app: the protocol, and scores as tables (one query each).

:func:`study_protocol` gives a stored study's :class:`~alliance.protocol.Protocol` (parsed once per
protocol version). :func:`participant_scores` and :func:`study_scores` serve dashboards and alerts.

The scores are those stored with each administration when it was submitted or imported, computed
by :func:`alliance.instruments.score` (the one scoring path); nothing is re-scored here. Only the
numeric score columns of each instrument are returned (each scale, and ``<scale>_pct`` where the
instrument declares it); bands and flags stay in ``Administration.scores``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache, lru_cache

import pandas as pd
from django.db import connections
from django.db.models import F, FloatField, Func, Value
from django.db.models.fields.json import KT

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
def numeric_columns(instrument_id: str) -> tuple[str, ...]:
    """The numeric score columns of an instrument (:func:`alliance.study.measures.score_columns`); none
    for an instrument the bank does not know."""
    try:
        return score_columns(bank.get(instrument_id))
    except bank.UnknownInstrumentError:
        return ()


def _rows(administrations, with_participant: bool) -> list[tuple]:
    rows = []
    for *key, scores in administrations:
        instrument_id = key[2] if with_participant else key[1]
        for scale in numeric_columns(instrument_id):
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


def study_scores(study: Study, measures: Iterable[tuple[str, str]] | None = None, participants=None) -> pd.DataFrame:
    """Every score of a study's submitted administrations, long.

    Parameters
    ----------
    study : Study
    measures : iterable of (instrument, scale), optional
        Only these scores (of these instruments; the scales must be numeric score columns). The
        database reads them out of each administration's JSON (SQLite's ``JSON_EXTRACT``,
        PostgreSQL's ``->>``) instead of every score dictionary being decoded in Python: the
        study dashboard wants two scores of 20,000 administrations.
    participants : QuerySet of Participant, optional
        Only theirs (a subquery: one query whatever their number).

    Returns
    -------
    DataFrame
        Columns ``participant_id``, ``timepoint`` (code), ``instrument``, ``scale``, ``value``
        (float), ordered by participant, then timepoint in protocol order. Missing scores are left
        out.
    """
    administrations = Administration.objects.filter(participant__study=study, status=Administration.Status.SUBMITTED)
    if participants is not None:
        administrations = administrations.filter(participant__in=participants.values("pk"))
    order = ("participant__participant_id", "timepoint__order", "instrument")
    key = ("participant__participant_id", "timepoint__code", "instrument")
    if measures is None:
        rows = _rows(administrations.order_by(*order).values_list(*key, "scores"), True)
        return pd.DataFrame.from_records(rows, columns=STUDY_COLUMNS)
    wanted = sorted({(i, s) for i, s in measures if s in numeric_columns(i)})
    scales = sorted({scale for _, scale in wanted})
    vendor = connections[administrations.db].vendor
    columns = {f"_scale{k}": _score_value(scale, vendor) for k, scale in enumerate(scales)}
    of_instrument: dict[str, list[tuple[int, str]]] = {}
    for instrument, scale in wanted:
        of_instrument.setdefault(instrument, []).append((scales.index(scale), scale))
    found = (administrations.filter(instrument__in=sorted(of_instrument)).order_by(*order)
             .annotate(**columns).values_list(*key, *columns))
    rows = [(pid, timepoint, instrument, scale, float(values[k]))
            for pid, timepoint, instrument, *values in found for k, scale in of_instrument[instrument]
            if values[k] is not None]
    return pd.DataFrame.from_records(rows, columns=STUDY_COLUMNS)


def _score_value(scale: str, vendor: str):
    """One score out of ``Administration.scores``, by the database.

    On SQLite ``JSON_EXTRACT`` (one parse of the JSON; Django's ``KT`` parses it twice there, to
    tell JSON booleans from numbers, which scores never are); elsewhere ``KT`` (PostgreSQL ``->>``).
    """
    if vendor == "sqlite":
        return _JSONExtract(F("scores"), Value("$." + json.dumps(scale)))
    return KT(f"scores__{scale}")


class _JSONExtract(Func):
    """SQLite's ``JSON_EXTRACT``: a number as SQLite gives it (the caller makes it a float)."""

    function = "JSON_EXTRACT"
    output_field = FloatField()

    def get_db_converters(self, connection):
        return []  # 20,000 rows × several scales: no per-value conversion by Django
