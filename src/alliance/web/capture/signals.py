"""What the capture app tells other apps: a form was submitted, a dosing session or a safety record stored, a study imported.

The first three are sent by :mod:`alliance.web.capture.recording`, the fourth by
:func:`alliance.web.capture.storage.import_study`, with ``Signal.send`` inside the
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

safety_recorded = Signal()
"""An adverse event, a vital-sign reading or a concomitant medication was recorded or changed in the
web app. Sent with ``sender`` (the model class: ``AdverseEvent``, ``VitalSign`` or
``ConcomitantMedication``), ``participant`` (the
:class:`~alliance.web.capture.models.Participant`) and ``record`` (the stored row)."""

study_imported = Signal()
"""An import stored a change (not a dry run, not an import that changed nothing). Sent with
``sender=Study``, ``study`` (the :class:`~alliance.web.capture.models.Study`), ``using`` (the
database alias) and ``summary`` (the :class:`~alliance.web.capture.storage.ImportSummary`)."""

participants_deleting = Signal()
"""An import (allowed to delete) is about to delete participants. Sent inside its transaction with
``sender=Participant``, ``participants`` (the list of
:class:`~alliance.web.capture.models.Participant`), ``log`` (the import's
:class:`~alliance.web.audit.log.AuditLog`, to write each deletion to) and ``using`` (the
database alias). A receiver deletes its own records about them and returns ``{kind: count}``, which
the import adds to the deletions it reports (and asks consent for)."""
