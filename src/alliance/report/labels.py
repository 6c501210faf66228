"""Readable names for measures and timepoints, from the instrument bank and the protocol."""

from __future__ import annotations

from alliance import instruments
from alliance.protocol import Measure, MeasureNameError

__all__ = ["Labels"]


class Labels:
    """Turns ``wai_sr.total@prep`` into ``WAI-SR total, final preparation`` for one protocol.

    Parameters
    ----------
    protocol : alliance.protocol.Protocol
        Timepoint labels come from it; derived timepoints (``peak``) are named by their id.
    """

    def __init__(self, protocol):
        self.timepoints = {tp.id: getattr(tp, "label", tp.id) or tp.id for tp in protocol.timepoints}
        for derived in getattr(protocol, "derived", ()) or ():
            # a derived label is a description ("Peak of the two dosing sessions"); its id is the name
            self.timepoints.setdefault(derived.id, derived.id.replace("_", " ").capitalize())

    def timepoint(self, timepoint_id: str) -> str:
        return self.timepoints.get(timepoint_id, timepoint_id)

    @staticmethod
    def scale(name: str) -> str:
        """``wai_sr.total`` → ``WAI-SR total``; a single-scale instrument is its short name (``EBI``)."""
        try:
            parts = Measure.parse(name, timepoint="forbidden")
            definition = instruments.get(parts.instrument)
        except (MeasureNameError, instruments.UnknownInstrumentError):
            return name
        scale = parts.scale
        short = definition.short_name
        if len(definition.scales) == 1 and scale == definition.scales[0].id:
            return short
        return f"{short} {scale.replace('_pct', ' %').replace('_', ' ')}"

    def measure(self, name: str, short: bool = False) -> str:
        """``wai_sr.total@prep`` → ``WAI-SR total @ Final preparation`` (``short``: timepoint id)."""
        try:
            parts = Measure.parse(name, timepoint="optional")
        except MeasureNameError:
            return name
        base = str(parts.without_timepoint())
        if parts.timepoint is None:
            return self.scale(base)
        when = parts.timepoint if short else self.timepoint(parts.timepoint)
        return f"{self.scale(base)} @ {when}"
