"""Errors of the storage layer: one family, :class:`StorageError`."""

from __future__ import annotations


class StorageError(Exception):
    """The database cannot do what was asked: unknown study, inconsistent data, refused change."""


class UnknownStudyError(StorageError, LookupError):
    """No study of that name in the database; the message names the studies there are."""

    def __str__(self) -> str:  # LookupError would quote the message like a key
        return str(self.args[0])
