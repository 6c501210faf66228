"""Capture: studies, participants, administrations, item responses, and the audit trail.

Storage (``models``, ``storage``, ``audit``) works without a web server. The web app's side:
``recording`` (every write, audited), ``instrument_forms`` (forms drawn from the instrument
definitions), ``timelines``, ``queries``, ``exports``, ``demo``, and the ``views`` / ``urls`` /
``templates/capture`` of the pages.
"""
