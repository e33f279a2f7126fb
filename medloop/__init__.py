"""MedLoop Django project package (the user's card calls it ``platform``; see README)."""

from .celery import app as celery_app

__all__ = ["celery_app"]
