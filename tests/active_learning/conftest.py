"""Fixtures shared by the loop's tests."""

from __future__ import annotations

import pytest

from annotations.services import projects


@pytest.fixture
def ct_project(make_user):
    """A chest CT project (its loop trains the 3D CT detector), with no validation hold-out at
    ingest: the tests choose their validation cases."""
    owner = make_user("ct-owner", is_staff=True)
    return projects.create_project(
        name="Chest CT", created_by=owner, modality="CT", validation_fraction=0.0
    )
