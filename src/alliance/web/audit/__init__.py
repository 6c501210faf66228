"""The audit trail: who created, changed, deleted or exported what, and who logged in.

``models`` (:class:`~alliance.web.audit.models.AuditEvent`, append-only), ``log``
(:class:`~alliance.web.audit.log.AuditLog`, which every write of the other apps goes through),
``triggers`` (the database triggers that keep the table append-only), ``chain`` (the SHA-256 hash
chain that makes changes made around the triggers visible), ``verify`` (which checks it) and the
``flush`` command that can still empty it. The other apps use this one; it imports none of them
(its events name a ``capture.Study`` by a string foreign key only, and the chain reaches that model
through the app registry), so ``capture`` and ``accounts`` can both write the trail without
importing each other.
"""
