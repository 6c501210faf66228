"""The audit app's one error."""

from __future__ import annotations


class AppendOnlyError(Exception):
    """An attempt to change or delete an audit event: they can be added and read, never changed.

    The database refuses the same through its triggers (:mod:`alliance.web.audit.triggers`) with
    its own ``DatabaseError``; this one is raised in Python, before any SQL is sent.
    """
