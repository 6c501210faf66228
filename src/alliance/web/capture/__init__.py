"""Capture: studies, participants, administrations, item responses, and the audit trail."""
