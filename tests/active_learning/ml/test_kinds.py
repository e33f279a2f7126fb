"""The model-kind registry: a cycle's model is built by kind name from a project's settings."""

from __future__ import annotations

import pytest

from active_learning.ml import kinds
from active_learning.ml.builtin import BuiltinModel
from active_learning.ml.interface import SuggestionModel


def test_the_default_kind_is_built_from_a_projects_settings():
    model = kinds.new_model(kinds.DEFAULT_KIND, ["nodule", "effusion"], {"train_steps": 7})
    assert isinstance(model, SuggestionModel) and isinstance(model, BuiltinModel)
    assert model.kind == "builtin" and model.finding_classes == ("nodule", "effusion")
    assert model.training_steps == 7


def test_every_registered_kind_is_listed_and_an_unknown_one_is_refused_by_name():
    assert {"builtin", "local-checkpoint"} <= set(kinds.registered())
    with pytest.raises(kinds.UnknownModelKind, match=r"unknown model kind 'resnet'.*builtin"):
        kinds.new_model("resnet", ["nodule"], {})


def test_a_setting_the_kind_does_not_take_is_named():
    with pytest.raises(TypeError, match="no_such_setting"):
        kinds.new_model("builtin", ["nodule"], {"no_such_setting": 1})


def test_a_kind_that_needs_its_own_files_is_not_built_from_settings():
    with pytest.raises(NotImplementedError, match="local-checkpoint models are not built"):
        kinds.new_model("local-checkpoint", ["nodule"], {})
