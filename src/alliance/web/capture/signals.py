"""What the capture app tells other apps: a form was submitted, a dosing session was recorded.

Both are sent by :mod:`alliance.web.capture.recording` with ``Signal.send`` inside the
transaction that stored the data, so a receiver's writes (the monitor app's alerts and their
audit events) are committed or rolled back together with the data they are about, and a receiver
that fails rolls the whole write back. The capture app does not know who listens: the monitor app
connects its receivers in ``MonitorConfig.ready`` (:mod:`alliance.web.monitor.receivers`).

Examples
--------
A receiver (connect it in an ``AppConfig.ready``)::

    def announce(sender, administration, **kwargs):
        print(administration, "was submitted")

    administration_submitted.connect(announce, dispatch_uid="announce-submissions")
"""

from __future__ import annotations

from django.dispatch import Signal

administration_submitted = Signal()
"""An administration was submitted and scored. Sent with ``sender=Administration`` and
``administration`` (the :class:`~alliance.web.capture.models.Administration`)."""

dosing_recorded = Signal()
"""A dosing session was recorded or changed. Sent with ``sender=DosingSession`` and
``dosing_session`` (the :class:`~alliance.web.capture.models.DosingSession`)."""
