"""WSGI entry point for production servers (gunicorn medloop.wsgi).

A production entry point defaults to the production settings, which refuse to start without a
real secret key and database; ``make run`` (run_platform) names the local settings explicitly."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medloop.settings.production")
application = get_wsgi_application()
