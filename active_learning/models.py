"""Models learn from labels; labels come where models are unsure.

ModelVersion is an immutable, checksummed set of weights; Suggestion is one version's output for
one case; RetrainingCycle is one run of the loop. The loop issue fills them; the schema is here."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotations.models import Case, Project


class ModelVersion(models.Model):
    class Status(models.TextChoices):
        CANDIDATE = "candidate", "Candidate"
        PROMOTED = "promoted", "Promoted (serving)"
        RETIRED = "retired", "Retired"
        FAILED = "failed", "Failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="model_versions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.CANDIDATE)
    model_kind = models.CharField(max_length=64, default="builtin")
    metrics = models.JSONField(default=dict, blank=True)
    # Annotation ids and versions the model was trained on: the data set snapshot.
    label_snapshot = models.JSONField(default=list, blank=True)
    label_count = models.PositiveIntegerField(default=0)
    strategy = models.CharField(max_length=40, blank=True)
    code_version = models.CharField(max_length=64, blank=True)
    weights_path = models.CharField(max_length=500, blank=True)
    weights_sha256 = models.CharField(max_length=64, blank=True)
    # Lineage: the version whose weights training started from (None: from scratch), and why
    # that one (LoopSettings.warm_start, a label schema change...).
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    parent_reason = models.CharField(max_length=300, blank=True)
    # The promotion guard's numbers when the cycle decided (validation labels and positives per
    # class, the paired bootstrap against the serving version, the decision and its reason).
    promotion_check = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    promoted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project_id", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="model_version_number"),
            models.UniqueConstraint(
                fields=["project"],
                condition=Q(status="promoted"),
                name="one_promoted_version_per_project",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project} v{self.number}"


# The settings of what the loop does and when (strategy, retraining, training, promotion); a
# project's JSON shows them too (active_learning.apps).
RUN_FIELDS = (
    "acquisition_strategy",
    "auto_promote",
    "auto_retrain_threshold",
    "model_config",
    "promotion_metric",
    "training_epochs",
)


class LoopSettings(models.Model):
    """How a project's loop runs: its strategy, when it retrains, how long it trains and with
    which model settings, how a version is promoted (metric, guard) and where a cycle's training
    starts. One row per project, created with the defaults the first time a setting is changed;
    read and changed through ``active_learning.services.loop_settings``."""

    class WarmStart(models.TextChoices):
        LATEST = "latest", "Latest trained version (when it saw every label the serving one saw)"
        SERVING = "serving", "Serving version"

    class ColdStart(models.TextChoices):
        # active_learning.ml.builtin.starting_point: trained once on synthetic phantoms.
        STORED = "stored", "Stored detector starting point (synthetic phantoms)"
        BACKBONE = "backbone", "The project's self-supervised image backbone"
        SCRATCH = "scratch", "From scratch"

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="loop_settings")
    # How the loop orders the queue (active_learning.strategies).
    acquisition_strategy = models.CharField(
        max_length=40,
        default="hybrid",
        help_text="How the loop orders the queue (active_learning.strategies).",
    )
    auto_retrain_threshold = models.PositiveIntegerField(
        default=50,
        help_text="Newly submitted annotations that trigger a retraining cycle (0: off).",
    )
    # Retraining cycles: promote a better version by itself, or wait for a model owner.
    auto_promote = models.BooleanField(
        default=True,
        help_text="Promote a new version when its validation metric improves on the serving one.",
    )
    # A name of active_learning.services.metric_schema.PROMOTION_METRICS.
    promotion_metric = models.CharField(max_length=40, default="combined")
    training_epochs = models.PositiveSmallIntegerField(default=5)
    # Overrides of the built-in model's configuration (active_learning.ml.builtin.BuiltinConfig),
    # among them the thresholds a version shows and drafts reports by.
    model_config = models.JSONField(default=dict, blank=True)
    # Automatic promotion needs at least this many labelled validation cases; below it a
    # version waits for a model owner, the numbers shown.
    min_validation_labels = models.PositiveIntegerField(default=20)
    # Paired bootstrap of (candidate - serving) over the validation cases: resamples, seed and
    # the two-sided interval whose lower end must lie above zero.
    bootstrap_resamples = models.PositiveIntegerField(default=2000)
    bootstrap_confidence = models.FloatField(default=0.95)
    bootstrap_seed = models.PositiveIntegerField(default=0)
    warm_start = models.CharField(
        max_length=12, choices=WarmStart.choices, default=WarmStart.LATEST
    )
    # Where a cycle without an earlier version to build on starts: the stored detector starting
    # point, falling back to the project's pretrained backbone when it does not fit the model's
    # settings; the backbone first; or nothing.
    cold_start = models.CharField(
        max_length=12, choices=ColdStart.choices, default=ColdStart.STORED
    )
    # The model kind a cycle trains (active_learning.ml.kinds); empty: by the project's modality
    # (active_learning.services.loop_settings.model_kind: CT gets the 3D CT detector).
    model_kind = models.CharField(
        max_length=40,
        blank=True,
        default="",
        help_text="Model kind a cycle trains; empty: by the project's modality (CT: 3D detector).",
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(bootstrap_resamples__gte=1000),
                name="loop_settings_bootstrap_resamples_min_1000",
            ),
            models.CheckConstraint(
                condition=Q(bootstrap_confidence__gt=0.5) & Q(bootstrap_confidence__lt=1),
                name="loop_settings_bootstrap_confidence_0_5_1",
            ),
        ]

    def __str__(self) -> str:
        return f"Loop settings of {self.project}"


class Suggestion(models.Model):
    """One model version's proposal for one case: boxes, findings, report draft, uncertainty."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="suggestions")
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="suggestions"
    )
    # [{"id", "instance_id", "frame", "x", "y", "width", "height", "finding", "score",
    #   "uncertainty"}] in pixel space.
    boxes = models.JSONField(default=list, blank=True)
    finding_probabilities = models.JSONField(default=dict, blank=True)
    report_draft = models.JSONField(default=dict, blank=True)
    uncertainty = models.JSONField(default=dict, blank=True)
    acquisition_score = models.FloatField(null=True, blank=True)
    # The model's case embedding (float list), for diversity sampling.
    embedding = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["case_id", "-model_version__number"]
        constraints = [
            models.UniqueConstraint(
                fields=["case", "model_version"], name="suggestion_one_per_case_version"
            )
        ]

    def __str__(self) -> str:
        return f"Suggestion for case {self.case_id} by version {self.model_version_id}"


class RetrainingCycle(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    class Trigger(models.TextChoices):
        MANUAL = "manual", "Model owner"
        AUTOMATIC = "automatic", "Label threshold"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="cycles")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    trigger = models.CharField(max_length=12, choices=Trigger.choices, default=Trigger.MANUAL)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    stage = models.CharField(max_length=40, blank=True)
    progress = models.FloatField(default=0.0)
    log = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="cycles"
    )
    strategy = models.CharField(max_length=40, blank=True)
    # [[annotation id, version], ...] frozen when the cycle starts: exactly what it trains on.
    label_snapshot = models.JSONField(default=list, blank=True)
    # Which task delivery works on the cycle ("host:pid:task id") and when it last said so: a
    # second delivery of the same task (broker redelivery) sees a live claim and stops.
    claimed_by = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Scoring: the case ids of each chunk, and the chunks done (any order, any worker).
    chunks = models.JSONField(default=list, blank=True)
    chunks_done = models.JSONField(default=list, blank=True)
    # Progress within the current stage in its own unit, for the Models page and the time-left
    # estimate: {"stage": "training", "unit": "steps", "done": 120, "total": 400, "started_at":
    # ISO time}; while scoring, "cases" done per chunk ({"chunks": {"0": 16, ...}}) summed into
    # "done", so chunks scored by several workers at once add up.
    stage_progress = models.JSONField(default=dict, blank=True)
    # Wall seconds per stage, and what the stages decided (metrics compared, promotion).
    stage_seconds = models.JSONField(default=dict, blank=True)
    outcome = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One cycle per project at a time, enforced by the database.
            models.UniqueConstraint(
                fields=["project"],
                condition=Q(status__in=["queued", "running"]),
                name="one_active_cycle_per_project",
            )
        ]

    def __str__(self) -> str:
        return f"Cycle {self.pk} of {self.project} ({self.status})"


class ImageFeatures(models.Model):
    """Simple image features of a case (a downsampled, standardised thumbnail of its first
    image) for diversity ordering before any model exists; computed once per case."""

    case = models.OneToOneField(Case, on_delete=models.CASCADE, related_name="image_features")
    vector = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Image features of case {self.case_id}"


class PretrainedBackbone(models.Model):
    """A self-supervised image backbone pretrained on a project's unlabelled images: an
    artefact written once under MODELS_DIR, identified by the checksum of its files, with the
    instances (images) it saw. Cycles that train from scratch start from the newest ready one."""

    class Status(models.TextChoices):
        RUNNING = "running", "Pretraining"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="pretrained_backbones"
    )
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    method = models.CharField(max_length=40, default="simclr")
    weights_path = models.CharField(max_length=500, blank=True)
    weights_sha256 = models.CharField(max_length=64, blank=True)
    # Instance ids of the images it was pretrained on, and sha256 over them (sorted).
    instance_ids = models.JSONField(default=list, blank=True)
    image_count = models.PositiveIntegerField(default=0)
    images_sha256 = models.CharField(max_length=64, blank=True)
    # Backbone and pretraining settings, steps, loss curve (sampled), seconds.
    config = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    claimed_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project_id", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="backbone_number"),
            # One pretraining at a time per project, enforced by the database.
            models.UniqueConstraint(
                fields=["project"],
                condition=Q(status="running"),
                name="one_running_pretraining_per_project",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project} backbone b{self.number}"


class BackboneEmbedding(models.Model):
    """A case's image embedding from a pretrained backbone (L2-normalised pooled features of
    its first image), for the cold start's TypiClust and k-center; computed once per pair."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="backbone_embeddings")
    backbone = models.ForeignKey(
        PretrainedBackbone, on_delete=models.CASCADE, related_name="embeddings"
    )
    vector = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["case", "backbone"], name="backbone_embedding_one_per_case"
            )
        ]

    def __str__(self) -> str:
        return f"Embedding of case {self.case_id} by backbone {self.backbone_id}"


class TestSetPlan(models.Model):
    """A project's locked test set (issue 16): the share of cases held out at ingest by a
    stratified draw, apart from the validation set; never trained on, never used for promotion or
    operating thresholds (``active_learning.services.test_sets``)."""

    __test__ = False  # not a pytest test class despite its name

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="test_set_plan")
    fraction = models.FloatField(help_text="Share of the non-validation cases held out.")
    # Reference standard: double reading with adjudication, set on held-out cases not yet read.
    double_read = models.BooleanField(default=True)
    # A subgroup with fewer test cases than this is flagged in reports (never hidden).
    min_subgroup_cases = models.PositiveIntegerField(default=30)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(fraction__gt=0) & Q(fraction__lte=0.5),
                name="test_set_plan_fraction_0_0_5",
            )
        ]

    def __str__(self) -> str:
        return f"Test set plan of {self.project}"


class TestSetDraw(models.Model):
    """The draw's decision for one case, made once: held out in the test set or not, and the
    stratum it was drawn in (``sex|age band|findings``)."""

    __test__ = False  # not a pytest test class despite its name

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="test_set_draws")
    case = models.OneToOneField(Case, on_delete=models.CASCADE, related_name="test_set_draw")
    held_out = models.BooleanField()
    stratum = models.CharField(max_length=200)
    drawn_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["project", "held_out"], name="test_set_draw_held_out")]

    def __str__(self) -> str:
        return f"Case {self.case_id} {'in' if self.held_out else 'not in'} the test set"


class LockedTestSet(models.Model):
    """One locked version of a project's test set: its members and their reference labels
    frozen in ``content`` under ``content_hash`` (SHA-256 of its canonical JSON). A later change
    of membership or labels makes a new version; a version is never edited."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="locked_test_sets")
    version = models.PositiveIntegerField()
    content_hash = models.CharField(max_length=64)
    # {"cases": [{"case_id", "study_uid", "label": null | {"annotation_id", "annotator_id",
    #   "adjudicated", "findings", "boxes", "report"}}]}
    content = models.JSONField()
    case_count = models.PositiveIntegerField()
    labelled_count = models.PositiveIntegerField()
    previous = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.CharField(max_length=200)
    locked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    locked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project_id", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["project", "version"], name="locked_test_set_version"),
        ]

    def __str__(self) -> str:
        return f"{self.project} test set v{self.version} ({self.content_hash[:12]})"


class BackgroundJob(models.Model):
    """What every job a Celery task does for a user and a page follows has: its state
    (queued, running, then succeeded or failed), stage and percent while it runs, its result
    or error, who asked and when. Written by :mod:`active_learning.services.jobs`."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)
    stage = models.CharField(max_length=40, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]


class ValidationReport(BackgroundJob):
    """A model version's figures on a locked test set version, with bootstrap intervals,
    subgroups, failures and the provenance it can be regenerated from
    (``active_learning.services.validation_reports``)."""

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="validation_reports"
    )
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="validation_reports"
    )
    test_set = models.ForeignKey(LockedTestSet, on_delete=models.PROTECT, related_name="reports")
    resamples = models.PositiveIntegerField(default=2000)
    seed = models.PositiveBigIntegerField(default=0)
    confidence = models.FloatField(default=0.95)

    class Meta(BackgroundJob.Meta):
        constraints = [
            models.CheckConstraint(
                condition=Q(resamples__gte=1000), name="validation_report_resamples_min_1000"
            ),
        ]

    def __str__(self) -> str:
        return f"Validation report {self.pk} of {self.model_version}"


class VersionComparison(BackgroundJob):
    """Two validation reports on the same locked test set compared case by case (paired
    bootstrap differences of every figure, DeLong per finding), computed by the
    ``active_learning.version_comparison`` task with progress
    (``active_learning.services.comparisons``)."""

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="version_comparisons"
    )
    report_a = models.ForeignKey(ValidationReport, on_delete=models.CASCADE, related_name="+")
    report_b = models.ForeignKey(ValidationReport, on_delete=models.CASCADE, related_name="+")

    def __str__(self) -> str:
        return f"Comparison {self.pk}: report {self.report_a_id} against {self.report_b_id}"
