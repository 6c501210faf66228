"""WSGI entry point for running the web app behind a server such as gunicorn.

Example: ``gunicorn alliance.web.wsgi`` with ``DATABASE_URL`` and ``ALLIANCE_SECRET_KEY`` set.
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alliance.web.settings")
application = get_wsgi_application()
