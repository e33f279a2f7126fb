"""ASGI entry point for production servers; defaults to the production settings (see wsgi.py)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medloop.settings.production")
application = get_asgi_application()
