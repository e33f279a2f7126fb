"""Environment variables are read by type: a value that is not of the type stops the start."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from medloop.env import env_bool, env_float, env_int


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), (" On ", True), ("YES", True), ("0", False), ("off", False), ("", False)],
)
def test_booleans_are_read_in_their_usual_spellings(monkeypatch, value, expected):
    monkeypatch.setenv("MEDLOOP_TEST_FLAG", value)
    assert env_bool("MEDLOOP_TEST_FLAG", not expected) is expected


@pytest.mark.parametrize("value", ["ture", "enabled", "2"])
def test_a_boolean_typo_is_refused_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv("MEDLOOP_TEST_FLAG", value)
    with pytest.raises(ImproperlyConfigured, match=f"MEDLOOP_TEST_FLAG='{value}'"):
        env_bool("MEDLOOP_TEST_FLAG", True)


def test_unset_variables_give_their_defaults(monkeypatch):
    monkeypatch.delenv("MEDLOOP_TEST_VALUE", raising=False)
    assert env_bool("MEDLOOP_TEST_VALUE", True) is True
    assert env_int("MEDLOOP_TEST_VALUE", 900) == 900
    assert env_float("MEDLOOP_TEST_VALUE", 2.5) == 2.5


def test_numbers_are_parsed_and_garbage_is_refused(monkeypatch):
    monkeypatch.setenv("MEDLOOP_TEST_VALUE", " 42 ")
    assert env_int("MEDLOOP_TEST_VALUE", 0) == 42
    assert env_float("MEDLOOP_TEST_VALUE", 0.0) == 42.0
    for bad in ("5x", "", "1.5"):
        monkeypatch.setenv("MEDLOOP_TEST_VALUE", bad)
        with pytest.raises(ImproperlyConfigured, match="MEDLOOP_TEST_VALUE"):
            env_int("MEDLOOP_TEST_VALUE", 0)
    for bad in ("nan", "inf", "two"):
        monkeypatch.setenv("MEDLOOP_TEST_VALUE", bad)
        with pytest.raises(ImproperlyConfigured, match="not a finite number"):
            env_float("MEDLOOP_TEST_VALUE", 0.0)


def test_a_mistyped_setting_stops_the_settings_from_loading(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        DJANGO_SETTINGS_MODULE="medloop.settings.local",
        MEDLOOP_VAR_DIR=str(tmp_path),
        MEDLOOP_LOGIN_LOCKOUT="ture",
    )
    result = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; settings.AXES_ENABLED"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "MEDLOOP_LOGIN_LOCKOUT='ture' is not a boolean" in result.stderr
