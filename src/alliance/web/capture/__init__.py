"""Capture: studies, participants, administrations and item responses.

Storage (``models``, ``storage``) works without a web server; every write goes to the audit trail
of the ``audit`` app. The web app's side: ``recording`` (every write, audited), ``signals`` (what
other apps hear: a form submitted, a dosing session recorded), ``instrument_forms`` (forms drawn
from the instrument definitions), ``timelines``, ``queries``, ``exports``, ``demo``, and the
``views`` / ``urls`` / ``templates/capture`` of the pages.
"""
