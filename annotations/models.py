"""The annotator's world: projects and their members, imaging (Patient/Study/Series/Instance),
cases with clinical context, annotations with boxes, and the audit trail.

Business rules live in ``annotations.services``; models hold data and integrity constraints."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

from annotations.pseudonym_keys import derive_project_key, new_salt


class Modality(models.TextChoices):
    CR = "CR", "Computed radiography"
    DX = "DX", "Digital radiography"
    CT = "CT", "Computed tomography"
    MR = "MR", "Magnetic resonance"
    US = "US", "Ultrasound"
    MG = "MG", "Mammography"
    OT = "OT", "Other"


def _new_project_secret() -> str:
    return secrets.token_hex(32)


def validate_ae_titles(value: object) -> None:
    """A list of DICOM AE titles: 1 to 16 characters each, no backslash or control characters."""
    if not isinstance(value, list):
        raise ValidationError("A list of AE titles is expected.")
    for title in value:
        if (
            not isinstance(title, str)
            or not 0 < len(title.strip()) <= 16
            or "\\" in title
            or any(ord(c) < 32 or ord(c) == 127 for c in title)
        ):
            raise ValidationError(f"{title!r} is not a DICOM AE title (1 to 16 characters).")


class Project(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    modality = models.CharField(max_length=8, choices=Modality.choices, default=Modality.DX)
    # {"findings": [{"key", "name", "color", "hotkey"}], "report_sections": [{"key", "title"}]}
    label_schema = models.JSONField(default=dict)
    double_read_fraction = models.FloatField(
        default=0.0, help_text="Share of cases read independently by two annotators."
    )
    # A double-read case goes to adjudication when its two reads call any finding differently,
    # or when their box F1 (IoU 0.5) or report ROUGE-L falls below these.
    adjudication_box_f1 = models.FloatField(
        default=1.0, help_text="Double reads whose box F1 is below this go to adjudication."
    )
    adjudication_report_rouge = models.FloatField(
        default=0.0, help_text="Double reads whose report ROUGE-L is below this go to adjudication."
    )
    validation_fraction = models.FloatField(
        default=0.1, help_text="Share of cases held out at ingest as the fixed validation set."
    )
    lease_seconds = models.PositiveIntegerField(
        default=900, help_text="How long a handed-out case stays reserved without activity."
    )
    # Called AE title under which the C-STORE listener files incoming images into this project.
    dicom_ae_title = models.CharField(max_length=16, null=True, blank=True, unique=True)
    # Calling AE titles (the senders) whose associations the listener accepts for this project;
    # empty: any sender. Others are rejected ("calling AE title not recognised") and logged.
    dicom_calling_ae_titles = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_ae_titles],
        help_text="Sending AE titles accepted for this project (empty: any).",
    )
    # A PACS to pull studies from over DICOMweb (QIDO-RS / WADO-RS), e.g. .../dicom-web
    dicomweb_url = models.URLField(max_length=500, blank=True)
    # The project's pseudonym key is derived from MEDLOOP_PSEUDONYM_KEY (the environment) and
    # this salt: the database alone cannot recompute pseudonyms (annotations.pseudonym_keys).
    pseudonym_salt = models.CharField(max_length=64, default=new_salt, editable=False)
    # Projects created before the key left the database keep their stored secret, so their
    # pseudonyms stay stable; empty for every newer project.
    legacy_pseudonym_secret = models.CharField(
        max_length=64, blank=True, default="", editable=False
    )
    # Ethics review (issue 17): without a current EthicsApproval such a project is read-only for
    # everyone but admins (annotations.services.ethics). New projects take the setting
    # MEDLOOP_REQUIRE_ETHICS_APPROVAL; projects older than the rule were migrated with False.
    requires_ethics_approval = models.BooleanField(
        default=True,
        help_text="Ingest, annotation and training need a current ethics approval.",
    )
    # Inclusion rules checked at ingest from the original header (annotations.dicom.eligibility),
    # e.g. {"min_age_years": 18}; empty: every study is eligible.
    eligibility_rules = models.JSONField(
        default=dict,
        blank=True,
        help_text='Inclusion rules, e.g. {"min_age_years": 18, "if_unknown": "hold"}.',
    )
    # Consent (issue 17): whether cases of patients whose consent is unknown may be labelled.
    label_unknown_consent = models.BooleanField(
        default=True,
        help_text="Cases of patients whose consent is unknown may be handed out and labelled.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(double_read_fraction__gte=0) & Q(double_read_fraction__lte=1),
                name="project_double_read_fraction_0_1",
            ),
            models.CheckConstraint(
                condition=Q(validation_fraction__gte=0) & Q(validation_fraction__lt=1),
                name="project_validation_fraction_0_1",
            ),
            models.CheckConstraint(
                condition=Q(adjudication_box_f1__gte=0)
                & Q(adjudication_box_f1__lte=1)
                & Q(adjudication_report_rouge__gte=0)
                & Q(adjudication_report_rouge__lte=1),
                name="project_adjudication_thresholds_0_1",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def uses_legacy_pseudonym_secret(self) -> bool:
        """True for a project created before keys were derived: its key is in the database."""
        return bool(self.legacy_pseudonym_secret)

    @property
    def pseudonym_secret(self) -> str:
        """The HMAC key for this project's pseudonyms, UID map and date shifts: derived from
        MEDLOOP_PSEUDONYM_KEY and the salt (a legacy project: its stored secret)."""
        if self.legacy_pseudonym_secret:
            return self.legacy_pseudonym_secret
        return derive_project_key(str(settings.MEDLOOP_PSEUDONYM_KEY), self.pseudonym_salt)

    @property
    def finding_keys(self) -> list[str]:
        return [f["key"] for f in self.label_schema.get("findings", [])]

    @property
    def report_section_keys(self) -> list[str]:
        return [s["key"] for s in self.label_schema.get("report_sections", [])]


class Role(models.TextChoices):
    ANNOTATOR = "annotator", "Annotator"
    REVIEWER = "reviewer", "Reviewer"
    LEAD = "lead", "Project lead"
    MODEL_OWNER = "model_owner", "Model owner"
    ADMIN = "admin", "Project admin"
    # Data protection officer (issue 17): patients' consent and data-use reports, nothing else
    # of the patients' data (no cases, images, labels or models).
    DPO = "dpo", "Data protection officer"


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user", "role"], name="membership_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} as {self.role} in {self.project}"


class Consent(models.TextChoices):
    CONSENTED = "consented", "Consented"
    WITHDRAWN = "withdrawn", "Withdrawn"
    UNKNOWN = "unknown", "Unknown"


class ConsentSource(models.TextChoices):
    FHIR = "fhir", "FHIR Consent resource"
    CSV = "csv", "CSV import"
    LEAD = "lead", "Entered by a lead"


class Patient(models.Model):
    """A patient known only by a per-project pseudonym (HMAC of the source identifier)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="patients")
    pseudonym = models.CharField(max_length=64)
    sex = models.CharField(max_length=1, blank=True)
    # Consent to the study's use of their data (annotations.services.consent): a withdrawal
    # takes the patient's cases out of every queue, export and future label snapshot at once,
    # and their files and clinical text are purged after MEDLOOP_WITHDRAWAL_RETENTION_DAYS.
    consent_status = models.CharField(
        max_length=12, choices=Consent.choices, default=Consent.UNKNOWN
    )
    consent_date = models.DateField(null=True, blank=True)
    consent_source = models.CharField(max_length=8, choices=ConsentSource.choices, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    purged_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "pseudonym"], name="patient_pseudonym_unique"
            )
        ]

    def __str__(self) -> str:
        return self.pseudonym


class Study(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="studies")
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="studies")
    study_instance_uid = models.CharField(max_length=64)
    accession_pseudonym = models.CharField(max_length=64, blank=True)
    study_date = models.DateField(null=True, blank=True)
    description = models.CharField(max_length=200, blank=True)
    # The patient's age at this study as a band ("18-29", "90+"; "" unknown): the age itself and
    # the birth date are read at ingest for the eligibility rules and never kept.
    age_band = models.CharField(max_length=8, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "studies"
        constraints = [
            models.UniqueConstraint(
                fields=["project", "study_instance_uid"], name="study_uid_unique_in_project"
            )
        ]

    def __str__(self) -> str:
        return self.study_instance_uid


class Series(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="series")
    series_instance_uid = models.CharField(max_length=64)
    modality = models.CharField(max_length=16, blank=True)
    series_number = models.IntegerField(null=True, blank=True)
    description = models.CharField(max_length=200, blank=True)
    body_part = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name_plural = "series"
        constraints = [
            models.UniqueConstraint(
                fields=["study", "series_instance_uid"], name="series_uid_unique_in_study"
            )
        ]

    def __str__(self) -> str:
        return self.series_instance_uid


class Instance(models.Model):
    """One stored, de-identified DICOM Part 10 file."""

    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="instances")
    sop_instance_uid = models.CharField(max_length=64)
    sop_class_uid = models.CharField(max_length=64)
    instance_number = models.IntegerField(null=True, blank=True)
    file_path = models.CharField(max_length=500, help_text="Relative to MEDLOOP_STORAGE_DIR.")
    sha256 = models.CharField(max_length=64)
    size_bytes = models.PositiveBigIntegerField()
    rows = models.PositiveIntegerField()
    columns = models.PositiveIntegerField()
    number_of_frames = models.PositiveIntegerField(default=1)
    transfer_syntax_uid = models.CharField(max_length=64)
    photometric_interpretation = models.CharField(max_length=32, blank=True)
    quarantined = models.BooleanField(
        default=False, help_text="Possibly burned-in identifiers: hidden until a lead clears it."
    )
    quarantine_reason = models.CharField(max_length=200, blank=True)
    # A lead's decision that the image does show identifiers: it stays hidden for good (still
    # quarantined) and leaves the list of images awaiting review.
    quarantine_rejected_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["series_id", "instance_number", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["series", "sop_instance_uid"], name="instance_uid_unique_in_series"
            )
        ]

    def __str__(self) -> str:
        return self.sop_instance_uid


class Case(models.Model):
    """The unit of work: one study's images plus clinical context."""

    class State(models.TextChoices):
        OPEN = "open", "Needs reading"
        COMPLETE = "complete", "All reads submitted"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="cases")
    study = models.OneToOneField(Study, on_delete=models.CASCADE, related_name="case")
    indication = models.TextField(blank=True)
    history = models.TextField(blank=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.OPEN)
    required_reads = models.PositiveSmallIntegerField(default=1)
    is_validation = models.BooleanField(
        default=False, help_text="Held out at ingest; never trained on."
    )
    # Held out at ingest by the project's eligibility rules (issue 17): never served to
    # annotators, listed for a lead, who includes it (held_out cleared) or excludes it for good
    # (held_out_excluded_at set; it stays held out and leaves the review list).
    held_out = models.BooleanField(default=False)
    held_out_reason = models.CharField(max_length=300, blank=True)
    held_out_excluded_at = models.DateTimeField(null=True, blank=True)
    # Written by the active-learning loop; higher is served first. Equal priority: FIFO.
    priority = models.FloatField(default=0.0)
    leased_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="leased_cases",
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["project", "state", "-priority", "id"], name="case_queue_order"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(leased_to__isnull=True, lease_expires_at__isnull=True)
                | Q(leased_to__isnull=False, lease_expires_at__isnull=False),
                name="case_lease_has_holder_and_expiry",
            )
        ]

    def __str__(self) -> str:
        return f"Case {self.pk}"


class LabResult(models.Model):
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="lab_results")
    code = models.CharField(max_length=32, help_text="LOINC code where known.")
    name = models.CharField(max_length=120)
    value = models.FloatField(null=True, blank=True)
    value_text = models.CharField(max_length=120, blank=True)
    unit = models.CharField(max_length=32, blank=True)
    reference_low = models.FloatField(null=True, blank=True)
    reference_high = models.FloatField(null=True, blank=True)
    observed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["case_id", "observed_at", "id"]

    def __str__(self) -> str:
        return f"{self.name} {self.value} {self.unit}"

    @property
    def out_of_range(self) -> bool:
        if self.value is None:
            return False
        low_bad = self.reference_low is not None and self.value < self.reference_low
        high_bad = self.reference_high is not None and self.value > self.reference_high
        return low_bad or high_bad


class CaseSkip(models.Model):
    """An annotator passed on a case; it is not offered to them again."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="skips")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    reason = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["case", "annotator"], name="case_skip_unique")
        ]

    def __str__(self) -> str:
        return f"{self.annotator} skipped case {self.case_id}: {self.reason}"


class Annotation(models.Model):
    """One annotator's working copy for one case. Submitted content is frozen separately in
    AnnotationRevision, so a draft never overwrites what a reviewer or the model read."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Submitted"
        RETURNED = "returned", "Returned"
        ACCEPTED = "accepted", "Accepted"

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="annotations")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="annotations"
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    # Optimistic concurrency: bumped by every write, exposed as the ETag.
    version = models.PositiveIntegerField(default=1)
    # {finding_key: "present" | "absent" | "uncertain"}
    findings = models.JSONField(default=dict, blank=True)
    # {section_key: text}
    report = models.JSONField(default=dict, blank=True)
    # Ids of suggested boxes the annotator rejected (accepted/edited ones are Box rows).
    rejected_suggestion_boxes = models.JSONField(default=list, blank=True)
    review_comment = models.TextField(blank=True)
    # The final label a reviewer made for a double-read case whose reads disagreed.
    is_adjudication = models.BooleanField(default=False)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reviewed_annotations",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["case", "annotator"], name="annotation_one_per_reader")
        ]

    def __str__(self) -> str:
        return f"Annotation {self.pk} ({self.status})"

    @property
    def etag(self) -> str:
        return f'"annotation-{self.pk}-v{self.version}"'


class Box(models.Model):
    class Origin(models.TextChoices):
        DRAWN = "drawn", "Drawn by the annotator"
        SUGGESTED_ACCEPTED = "suggested_accepted", "Suggestion accepted unchanged"
        SUGGESTED_EDITED = "suggested_edited", "Suggestion edited"

    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="boxes")
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="boxes")
    frame = models.PositiveIntegerField(default=1, help_text="1-based frame number.")
    x = models.FloatField(help_text="Left edge, pixels.")
    y = models.FloatField(help_text="Top edge, pixels.")
    width = models.FloatField()
    height = models.FloatField()
    finding = models.CharField(max_length=64)
    origin = models.CharField(max_length=20, choices=Origin.choices, default=Origin.DRAWN)
    suggestion_box_id = models.CharField(max_length=64, blank=True)
    # A 3D box (a CT or MR series): drawn on ``instance``, one slice of ``series``, and extended
    # over slices slice_first..slice_last (1-based, inclusive, in position order along the
    # slice normal); x, y, width, height are its pixels on every slice. patient_mm: the same box
    # in patient coordinates (LPS, mm) from the series' geometry: {"min", "max", "center",
    # "size"}, each [x, y, z]. All empty for a 2D box.
    series = models.ForeignKey(
        Series, null=True, blank=True, on_delete=models.CASCADE, related_name="boxes"
    )
    slice_first = models.PositiveIntegerField(null=True, blank=True)
    slice_last = models.PositiveIntegerField(null=True, blank=True)
    patient_mm = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(width__gt=0) & Q(height__gt=0), name="box_positive_size"
            ),
            models.CheckConstraint(
                condition=Q(series__isnull=True, slice_first__isnull=True, slice_last__isnull=True)
                | Q(series__isnull=False, slice_first__gte=1, slice_last__gte=F("slice_first")),
                name="box_slice_range_in_order",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.finding} at ({self.x:.0f}, {self.y:.0f}, {self.width:.0f}x{self.height:.0f})"


class AnnotationRevision(models.Model):
    """An immutable snapshot of an annotation as submitted (content, boxes, version)."""

    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="revisions")
    version = models.PositiveIntegerField()
    content = models.JSONField()
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    submitted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["annotation_id", "version"]
        constraints = [
            models.UniqueConstraint(
                fields=["annotation", "version"], name="revision_unique_version"
            )
        ]

    def __str__(self) -> str:
        return f"Annotation {self.annotation_id} as submitted at version {self.version}"


class ShownSuggestion(models.Model):
    """What a model version showed the annotator of one annotation: the boxes, prefilled
    findings and report draft the server served to their workspace (recorded at serving time,
    so it is what the server sent, not what a client says it saw), and, once submitted, how far
    the submitted annotation is from it. The version is stored by id and number, not as a
    foreign key: labels know nothing of the loop."""

    annotation = models.OneToOneField(
        Annotation, on_delete=models.CASCADE, related_name="shown_suggestion"
    )
    model_version_pk = models.PositiveBigIntegerField()
    model_version_number = models.PositiveIntegerField(db_index=True)
    suggestion_pk = models.PositiveBigIntegerField(null=True, blank=True)
    # [{"id", "instance_id", "frame", "x", "y", "width", "height", "finding", "score"}]
    boxes = models.JSONField(default=list, blank=True)
    # {finding: "present" | "absent"} the workspace was told to prefill, and the probabilities
    # it was shown ({finding: p}).
    findings_prefilled = models.JSONField(default=dict, blank=True)
    finding_probabilities = models.JSONField(default=dict, blank=True)
    # {section: text}; {} when no draft was shown.
    report_draft = models.JSONField(default=dict, blank=True)
    # Why the rest was held back: [{"kind", "finding", "message"}].
    withheld = models.JSONField(default=list, blank=True)
    served_at = models.DateTimeField()
    # Filled at submission (0..1; None where nothing of that kind was shown).
    confidence = models.FloatField(null=True, blank=True)
    boxes_kept_fraction = models.FloatField(null=True, blank=True)
    findings_changed_fraction = models.FloatField(null=True, blank=True)
    draft_edit_distance = models.FloatField(null=True, blank=True)
    change = models.FloatField(null=True, blank=True)
    summarised_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["annotation_id"]

    def __str__(self) -> str:
        return f"Suggestion of version {self.model_version_number} shown on {self.annotation_id}"


class DoubleRead(models.Model):
    """Two independent reads of one case, how far they agree, and (when they disagree) the
    adjudication: a reviewer's final label, which then is the case's label."""

    class Status(models.TextChoices):
        AGREED = "agreed", "Reads agree"
        PENDING = "pending", "Awaiting adjudication"
        ADJUDICATED = "adjudicated", "Adjudicated"

    case = models.OneToOneField(Case, on_delete=models.CASCADE, related_name="double_read")
    read_a = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="+")
    read_b = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=12, choices=Status.choices)
    box_f1 = models.FloatField()
    report_rouge_l = models.FloatField()
    report_edit_distance = models.FloatField()
    # Finding keys the two reads call differently, and why the case was sent to adjudication.
    findings_differing = models.JSONField(default=list, blank=True)
    reasons = models.JSONField(default=list, blank=True)
    # {"per_class": {finding: {"matched", "boxes_a", "boxes_b"}}}
    detail = models.JSONField(default=dict, blank=True)
    final_annotation = models.OneToOneField(
        Annotation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    adjudicated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    adjudicated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["status", "created_at"], name="double_read_queue")]

    def __str__(self) -> str:
        return f"Double read of case {self.case_id} ({self.status})"


class IngestBatch(models.Model):
    """One import (upload, folder, listener association, PACS pull) and its per-file report."""

    class Source(models.TextChoices):
        UPLOAD = "upload", "Browser or API upload"
        COMMAND = "command", "import_dicom command"
        CSTORE = "cstore", "DICOM C-STORE"
        DICOMWEB = "dicomweb", "DICOMweb pull"
        CLINICAL = "clinical", "Clinical context import"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="ingest_batches")
    source = models.CharField(max_length=12, choices=Source.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    stored = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    refused = models.PositiveIntegerField(default=0)
    quarantined = models.PositiveIntegerField(default=0)
    # [{"source": name, "status": "stored" | "duplicate" | "refused", "reason": text,
    #   "instance_id": id, "case_id": id, "quarantined": bool}]
    items = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        when = f"{self.created_at:%Y-%m-%d %H:%M}"
        return f"{self.get_source_display()} into {self.project} at {when}"


class AuditEvent(models.Model):
    """Who did what to which object, when, from where. Append-only."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    actor_username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    # Plain ids, not foreign keys: the trail outlives what it describes.
    project_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_object")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_username} {self.action}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None:
            raise PermissionError("Audit events are append-only.")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise PermissionError("Audit events are append-only.")


class EthicsApproval(models.Model):
    """An ethics committee's approval of the project's study: who approved what, when, until
    when, and the approval letter stored with the project. An approval is *current* from its
    approval date to its expiry date (both inclusive) unless it was revoked."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="ethics_approvals")
    committee = models.CharField(max_length=200)
    reference = models.CharField(max_length=100, help_text="The committee's reference number.")
    approved_on = models.DateField()
    expires_on = models.DateField()
    scope = models.TextField(help_text="What the approval covers (data, purposes, population).")
    # The approval document, stored under MEDLOOP_STORAGE_DIR (relative path), with its hash.
    document_path = models.CharField(max_length=500, blank=True)
    document_name = models.CharField(max_length=200, blank=True)
    document_content_type = models.CharField(max_length=100, blank=True)
    document_sha256 = models.CharField(max_length=64, blank=True)
    document_size = models.PositiveBigIntegerField(default=0)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["project_id", "-expires_on", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_on__gte=F("approved_on")),
                name="ethics_approval_expires_after_approval",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.committee} {self.reference} ({self.approved_on} to {self.expires_on})"
