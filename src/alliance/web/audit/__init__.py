"""The audit trail: who created, changed, deleted or exported what, and who logged in.

``models`` (:class:`~alliance.web.audit.models.AuditEvent`, append-only), ``log``
(:class:`~alliance.web.audit.log.AuditLog`, which every write of the other apps goes through),
``triggers`` (the database triggers that keep the table append-only), ``chain`` (the SHA-256 hash
chain that makes changes made around the triggers visible), ``verify`` (which checks it), the
``flush`` command that can still empty it, and ``roles`` (PostgreSQL's app role, which cannot switch
the triggers off; granted by this app's ``migrate`` and ``grant_app_role`` commands). The audit
page: ``views`` (with ``forms``, its filters, ``display``, events in words, and ``export``, the CSV);
its URL is declared, and guarded by role, by the ``capture`` app. The other apps use this one; it
imports none of them (its events name a ``capture.Study`` by a string foreign key only, and the
chain and the page reach models through the app registry), so ``capture`` and ``accounts`` can
both write the trail without importing each other.
"""
