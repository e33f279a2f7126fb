"""The loop's per-project settings (:class:`~active_learning.models.LoopSettings`): the
strategy, when a cycle starts, how long it trains and with which model settings, how a version
is promoted (metric, auto-promote, the guard) and where training starts. Read with their
defaults, changed with checks, all together or nothing. A project without a row uses the
defaults; the row is created the first time a setting changes. Every reader of these settings
goes through :func:`loop_settings`."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from active_learning import strategies
from active_learning.models import RUN_FIELDS, LoopSettings
from active_learning.services.metric_schema import PROMOTION_METRICS, promotion_metrics
from annotations.models import Project
from annotations.services import audit, loop_signals
from annotations.services.errors import InvalidInput

# The promotion guard's and the starting point's settings.
GUARD_FIELDS = (
    "min_validation_labels",
    "bootstrap_resamples",
    "bootstrap_confidence",
    "bootstrap_seed",
    "warm_start",
    "cold_start",
)
# Which model kind a cycle trains (active_learning.ml.kinds); empty: by the project's modality.
KIND_FIELDS = ("model_kind",)
EDITABLE = (*GUARD_FIELDS, *RUN_FIELDS, *KIND_FIELDS)
# The kind a project trains when LoopSettings.model_kind is empty, by Project.modality: CT
# volumes get the 3D detector (active_learning.ml.ct_detector), every other modality the
# built-in 2D model.
KIND_BY_MODALITY = {"CT": "ct_retinanet3d"}
DEFAULT_MODEL_KIND = "builtin"

# The built-in model's settings the settings page edits, with their ranges (low, high, low
# excluded): what a version may show (precision targets and the evidence a class needs), when
# it drafts reports (the two floors) and how long a cycle trains.
MODEL_CONFIG_RANGES: dict[str, tuple[float, float | None, bool]] = {
    "box_precision_target": (0, 1, True),
    "box_precision_confidence": (0, 1, False),
    "finding_precision_target": (0, 1, True),
    "min_class_ap": (0, 1, False),
    "report_metric_floor": (0, 1, False),
    "report_finding_f1_floor": (0, 1, False),
    "report_min_validation_reports": (0, None, False),
    "min_validation_positives": (0, None, False),
    "min_finding_positives": (0, None, False),
    "train_steps": (0, 1_000_000, False),
}
# The 3D CT detector's settings with ranges (as above): what a version may show (the AP floor
# is at 3D IoU froc_iou), how long and how a cycle trains, and how candidates are found and
# matched. Its other settings (patch_size, inference_roi, the network's sizes...) are checked
# by its configuration (active_learning.ml.ct_detector.config).
CT_MODEL_CONFIG_RANGES: dict[str, tuple[float, float | None, bool]] = {
    "box_precision_target": (0, 1, True),
    "min_class_ap": (0, 1, False),
    "min_validation_positives": (0, None, False),
    "train_steps": (0, 1_000_000, False),
    "warmup_steps": (0, 1_000_000, False),
    "batch_size": (1, 64, False),
    "learning_rate": (0, 1, True),
    "froc_iou": (0, 1, True),
    "detection_score_threshold": (0, 1, False),
    "suggestion_score_threshold": (0, 1, False),
    "nms_threshold": (0, 1, True),
}
# Per trainable kind, the settings the settings page edits and their ranges.
MODEL_CONFIG_RANGES_BY_KIND = {
    DEFAULT_MODEL_KIND: MODEL_CONFIG_RANGES,
    "ct_retinanet3d": CT_MODEL_CONFIG_RANGES,
}
# Whole numbers with their ranges (inclusive; None: no upper end).
_WHOLE_NUMBERS: dict[str, tuple[int, int | None]] = {
    "min_validation_labels": (0, None),
    "bootstrap_resamples": (1000, None),
    "bootstrap_seed": (0, None),
    "auto_retrain_threshold": (0, 1_000_000),
    "training_epochs": (1, 200),
}


def loop_settings(project: Project) -> LoopSettings:
    """The project's settings; an unsaved row with the defaults when none was ever changed."""
    found = LoopSettings.objects.filter(project=project).first()
    return found if found is not None else LoopSettings(project=project)


def model_kind(project: Project) -> str:
    """The model kind ``project`` trains: ``LoopSettings.model_kind`` when set, else the kind
    for the project's modality (:data:`KIND_BY_MODALITY`; a CT project gets the 3D CT
    detector), else the built-in model."""
    return kind_of(loop_settings(project))


def kind_of(settings: LoopSettings) -> str:
    """The model kind of ``settings``' project with these settings (:func:`model_kind`)."""
    return _effective_kind(settings.project, settings.model_kind)


def _effective_kind(project: Project, chosen: str) -> str:
    return chosen or KIND_BY_MODALITY.get(project.modality, DEFAULT_MODEL_KIND)


def _config_classes() -> dict[str, Any]:
    """Per trainable kind, the configuration class whose defaults a project's
    ``model_config`` overrides (what the kind's ``SuggestionModel.from_settings`` builds)."""
    from active_learning.ml.builtin.config import BuiltinConfig  # loads torch: at the call
    from active_learning.ml.ct_detector.config import CTDetectorConfig

    return {DEFAULT_MODEL_KIND: BuiltinConfig, "ct_retinanet3d": CTDetectorConfig}


def _config_class(kind: str) -> Any:
    classes = _config_classes()
    if kind not in classes:
        raise InvalidInput(
            f"model_config: the model kind {kind!r} takes no model settings from a project"
        )
    return classes[kind]


def _check_model_kind(kind: Any) -> None:
    from active_learning.ml.kinds import registered  # loads torch: at the call

    if not isinstance(kind, str):
        raise InvalidInput(f"model_kind must be a name, got {kind!r}")
    trainable = sorted(name for name, cls in registered().items() if _built_from_settings(cls))
    if kind and kind not in trainable:
        raise InvalidInput(
            f"model_kind must be empty (by the project's modality) or one of "
            f"{', '.join(trainable)}, got {kind!r}"
        )


def _built_from_settings(cls: type) -> bool:
    """Whether a kind builds from a project's settings (it overrides ``from_settings``; a kind
    that needs a hospital's checkpoint files does not)."""
    from active_learning.ml.interface import SuggestionModel

    return any(
        "from_settings" in vars(klass) for klass in cls.__mro__ if klass is not SuggestionModel
    )


def model_defaults(kind: str) -> dict[str, Any]:
    """The defaults of ``kind``'s settings the settings page edits (for the kind a project
    trains, :func:`model_kind`: the built-in model's or the CT detector's; a project's
    ``model_config`` holds only its overrides); empty for a kind without settings."""
    config_class = _config_classes().get(kind)
    if config_class is None:
        return {}
    defaults = config_class().to_dict()
    return {key: defaults[key] for key in MODEL_CONFIG_RANGES_BY_KIND.get(kind, {})}


def box_match_iou(project: Project) -> tuple[float, bool]:
    """The IoU at which a suggested box finds its lesion when ``project``'s versions fit their
    operating points (the AP floor is at the same IoU), and whether it is a 3D IoU: 0.5 in 2D
    for the built-in model, the CT detector's ``froc_iou`` (0.1 by default) in 3D."""
    found = loop_settings(project)
    kind = kind_of(found)
    return match_iou_for(kind, found), kind == "ct_retinanet3d"


def match_iou_for(kind: str, settings: LoopSettings) -> float:
    """The IoU at which boxes of a ``kind`` model built from ``settings`` match their lesions
    (operating points, AP floor, the promotion guard's box metrics): the CT detector's
    ``froc_iou`` (3D; 0.1 by default), 0.5 for every other kind."""
    if kind != "ct_retinanet3d":
        return 0.5
    default = model_defaults("ct_retinanet3d")["froc_iou"]
    return float(settings.model_config.get("froc_iou", default))


def project_part(project: Project) -> dict[str, Any]:
    """The settings a project's JSON carries (``annotations.api.project_parts``), by their
    names there."""
    found = loop_settings(project)
    return {name: getattr(found, name) for name in RUN_FIELDS}


def strategy_choices() -> list[tuple[str, str]]:
    """The acquisition strategies a project may name, as (name, description)."""
    return strategies.available()


def promotion_metric_choices() -> list[tuple[str, str]]:
    """The promotion metrics some project may name, as (name, name); which of them a project
    may name depends on the kind it trains (:func:`_check_promotion_metric`)."""
    return [(name, name) for name in PROMOTION_METRICS]


def _check_promotion_metric(metric: str, kind: str) -> None:
    """``metric`` is one the versions of ``kind`` can be promoted on: their evaluation stores
    it and the promotion guard recomputes it (a CT project's lung nodule measures; a
    radiograph project's box, finding and report metrics); else InvalidInput names it."""
    known = promotion_metrics(kind)
    if metric not in known:
        raise InvalidInput(
            f"promotion_metric {metric!r} cannot be computed for the {kind} model kind, the "
            f"kind this project trains; it takes one of {', '.join(known)}"
        )


def _range_text(ranges: dict[str, tuple[float, float | None, bool]], key: str) -> str:
    low, high, open_low = ranges[key]
    left = "(" if open_low else "["
    return f"{left}{low:g}, {high:g}]" if high is not None else f"{left}{low:g}, ...)"


def _out_of_range(
    ranges: dict[str, tuple[float, float | None, bool]], key: str, value: float
) -> bool:
    low, high, open_low = ranges[key]
    return value < low or (open_low and value == low) or (high is not None and value > high)


def _wrong_type(expected: Any, value: Any) -> str:
    """What ``value`` should have been to take the place of the default ``expected`` (a JSON
    value: lists for tuples), or "" when it fits."""
    if isinstance(expected, bool):
        return "" if isinstance(value, bool) else "true or false"
    if type(expected) is int:
        return "" if isinstance(value, int) and not isinstance(value, bool) else "a whole number"
    if isinstance(expected, float):
        fits = isinstance(value, int | float) and not isinstance(value, bool)
        return "" if fits else "a number"
    if isinstance(expected, str):
        return "" if isinstance(value, str) else "a str"
    if isinstance(expected, list):
        if not isinstance(value, list):
            return "a list"
        wrong = [_wrong_type(expected[0], item) for item in value] if expected else []
        return f"a list whose items are each {next(w for w in wrong if w)}" if any(wrong) else ""
    if isinstance(expected, dict):
        return "" if isinstance(value, dict) else "an object"
    return ""


def _check_model_config(config: Any, kind: str) -> None:
    """``config`` overrides settings of ``kind``'s configuration: every key one of its
    settings, every value of its type and in its range; InvalidInput names the key and the
    kind."""
    if not isinstance(config, dict):
        raise InvalidInput(f"model_config must be an object of {kind} model settings.")
    if "finding_classes" in config:
        raise InvalidInput("model_config cannot set finding_classes: they follow the schema.")
    config_class = _config_class(kind)
    defaults = config_class().to_dict()
    unknown = sorted(set(config) - set(defaults))
    if unknown:
        # The known settings are not listed: the settings page marks every field a message
        # names; GET loop-settings shows them (model_defaults).
        raise InvalidInput(
            f"model_config: {', '.join(unknown)} is not a setting of the {kind} model kind, "
            f"the kind this project trains"
        )
    ranges = MODEL_CONFIG_RANGES_BY_KIND.get(kind, {})
    for key, value in config.items():
        wanted = _wrong_type(defaults[key], value)
        if wanted:
            raise InvalidInput(
                f"model_config: {key} must be {wanted} for the {kind} model kind, got {value!r}"
            )
        if key in ranges and _out_of_range(ranges, key, value):
            raise InvalidInput(
                f"model_config: {key} must lie in {_range_text(ranges, key)} for the {kind} "
                f"model kind, got {value!r}"
            )
    try:
        config_class.from_dict(config)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"model_config: {exc} (the {kind} model kind)") from exc


def check_changes(changes: dict[str, Any], *, project: Project) -> None:
    """Raise :class:`InvalidInput` (a 400) naming the first setting at fault: an unknown name,
    a value of the wrong type or out of range, a strategy, metric or model setting the loop
    does not know. The model settings and the promotion metric are those of the kind
    ``project`` trains once the changes apply (:func:`model_kind`): a CT project's the CT
    detector's, another's the built-in model's; a new kind checks the stored model settings
    and promotion metric too. The API, the settings page and the Django admin run these
    checks."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise InvalidInput(
            f"unknown loop settings: {', '.join(sorted(unknown))}; known: {', '.join(EDITABLE)}"
        )
    for name, (low, high) in _WHOLE_NUMBERS.items():
        if name not in changes:
            continue
        value = changes[name]
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidInput(f"{name} must be a whole number, got {value!r}")
        if value < low or (high is not None and value > high):
            span = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise InvalidInput(f"{name} must be {span}, got {value}")
    if "bootstrap_confidence" in changes:
        value = changes["bootstrap_confidence"]
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0.5 < value < 1:
            raise InvalidInput(f"bootstrap_confidence must lie in (0.5, 1), got {value!r}")
    if "auto_promote" in changes and not isinstance(changes["auto_promote"], bool):
        raise InvalidInput(f"auto_promote must be true or false, got {changes['auto_promote']!r}")
    for name, choices in (
        ("warm_start", LoopSettings.WarmStart.values),
        ("cold_start", LoopSettings.ColdStart.values),
        ("promotion_metric", list(PROMOTION_METRICS)),
    ):
        if name in changes and changes[name] not in choices:
            raise InvalidInput(f"{name} must be one of {', '.join(choices)}, got {changes[name]!r}")
    for name in ("acquisition_strategy", "promotion_metric"):
        if name in changes and not isinstance(changes[name], str):
            raise InvalidInput(f"{name} must be a name, got {changes[name]!r}")
    if "acquisition_strategy" in changes:
        try:
            strategies.get(changes["acquisition_strategy"])
        except strategies.UnknownStrategy as exc:
            raise InvalidInput(f"acquisition_strategy: {exc}") from exc
    if "model_kind" in changes:
        _check_model_kind(changes["model_kind"])
    if "model_config" in changes or "model_kind" in changes or "promotion_metric" in changes:
        stored = loop_settings(project)
        kind = _effective_kind(project, changes.get("model_kind", stored.model_kind))
        _check_promotion_metric(changes.get("promotion_metric", stored.promotion_metric), kind)
        if "model_config" in changes or "model_kind" in changes:
            _check_model_config(changes.get("model_config", stored.model_config), kind)


def check_modality_change(project: Project, modality: str) -> None:
    """Raise :class:`InvalidInput` when ``project``'s stored model settings or promotion metric
    do not fit the kind it would train with ``modality`` (a project whose ``model_kind`` is
    empty trains by its modality: CT the 3D detector, another modality the built-in model),
    naming the setting and the kind, so that a modality change cannot leave the next cycle
    settings it cannot build or a metric it cannot be promoted on."""
    stored = loop_settings(project)
    if stored.model_kind:
        return
    kind = KIND_BY_MODALITY.get(modality, DEFAULT_MODEL_KIND)
    if kind == _effective_kind(project, ""):
        return
    try:
        _check_promotion_metric(stored.promotion_metric, kind)
        if stored.model_config:
            _check_model_config(stored.model_config, kind)
    except InvalidInput as exc:
        raise InvalidInput(
            f"modality {modality} would train the {kind} model kind, but the loop settings "
            f"hold settings of another kind ({exc}); change them on the loop settings page "
            f"first"
        ) from exc


@transaction.atomic
def update_loop_settings(
    *, project: Project, changed_by: User | None = None, **changes: Any
) -> LoopSettings:
    """Change the project's loop settings (:data:`EDITABLE`) in one transaction. Every value
    is checked before anything is stored (:func:`check_changes`), so a bad one leaves all of
    them as they were. The audit event ``loop.settings`` names the fields, the old and new
    values of the scalar ones that changed and the keys of new model settings; a new strategy
    re-ranks the queue once the change is committed."""
    check_changes(changes, project=project)
    settings, _ = LoopSettings.objects.select_for_update().get_or_create(project=project)
    values = {
        name: [getattr(settings, name), value]
        for name, value in changes.items()
        if getattr(settings, name) != value
    }
    for name, value in changes.items():
        setattr(settings, name, value)
    settings.save()
    detail: dict[str, Any] = {"fields": sorted(changes)}
    # Old and new values of the scalar settings that changed; the model settings by name.
    if values.pop("model_config", None) is not None:
        detail["model_config"] = sorted(changes["model_config"])
    if values:
        detail["values"] = values
    audit.record(
        action="loop.settings",
        actor=changed_by,
        target=project,
        project_id=project.pk,
        detail=detail,
    )
    if "acquisition_strategy" in values:
        loop_signals.reorder_queue(project.pk)
    return settings
