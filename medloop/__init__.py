"""MedLoop Django project package (see README).

The Celery app is loaded on first use (``medloop.celery_app`` or ``import medloop.celery``), not
here, so that the Django-free modules of this package (:mod:`medloop.metrics`,
:mod:`medloop.public_data`) import without Django. Every module that queues a task imports
:mod:`medloop.celery` (the task modules too), so the app is configured before any task is sent.
"""

from __future__ import annotations

from typing import Any

__all__ = ["celery_app"]


def __getattr__(name: str) -> Any:
    if name == "celery_app":
        from medloop.celery import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
