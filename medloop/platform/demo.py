"""Demo data: users, a chest radiograph project, and synthetic multimodal cases ingested
through the same path as real data (DICOM bytes -> de-identification -> storage)."""

from __future__ import annotations

import json
import secrets
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from itertools import chain
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.utils import timezone

from active_learning.ml import synthetic
from active_learning.services import loop_settings
from annotations.models import IngestBatch, Project, Role
from annotations.services import batches, ethics, projects
from annotations.services.clinical_import import import_clinical_context

DEMO_PROJECT = "Chest X-ray demo"
# username -> (roles in the demo project, is_superuser)
DEMO_USERS: dict[str, tuple[tuple[str, ...], bool]] = {
    "annotator": ((Role.ANNOTATOR,), False),
    "lead": ((Role.LEAD, Role.REVIEWER), False),
    "modelowner": ((Role.MODEL_OWNER,), False),
    "admin": ((Role.ADMIN,), True),
}


@dataclass(frozen=True)
class DemoSummary:
    project: Project
    credentials: dict[str, str]
    cases_created: int
    cases_total: int


def _credentials_file() -> Path:
    return Path(settings.VAR_DIR) / "demo-credentials.json"


def ensure_demo_users() -> dict[str, str]:
    """Create the demo users once with random passwords, kept in var/demo-credentials.json
    (mode 0600) so every later start can print them again."""
    path = _credentials_file()
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    User = get_user_model()
    for username, (_, superuser) in DEMO_USERS.items():
        user: AbstractUser | None = User.objects.filter(username=username).first()
        if user is not None and username in stored:
            continue
        password = secrets.token_urlsafe(9)
        if user is None:
            user = User(username=username)
        user.is_staff = superuser
        user.is_superuser = superuser
        user.set_password(password)
        user.save()
        stored[username] = password
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(stored, indent=2))
    path.chmod(0o600)
    return stored


DEMO_COMMITTEE = "MedLoop demo ethics committee"
DEMO_APPROVAL_LETTER = (
    "Synthetic approval letter of the MedLoop demo.\n"
    "The demo project holds synthetic chest radiographs only; no patient data.\n"
)


def ensure_demo_approval(project: Project) -> None:
    """The demo project needs an ethics approval like any other: it gets a current one (a
    synthetic letter, valid for a year) whenever it has none, so the demo never turns
    read-only."""
    if ethics.current_approval(project) is not None:
        return
    today = timezone.localdate()
    ethics.record_approval(
        project=project,
        committee=DEMO_COMMITTEE,
        reference=f"DEMO-{today:%Y%m%d}",
        approved_on=today - timedelta(days=1),
        expires_on=today + timedelta(days=365),
        scope="Synthetic chest radiographs with clinical context (demo; no patient data).",
        actor=None,
        document=DEMO_APPROVAL_LETTER.encode(),
        document_name="demo-approval-letter.txt",
    )


def seed_demo(*, count: int = 40, seed: int = 7, size: int = 512) -> DemoSummary:
    """Idempotently create the demo users, project and ``count`` synthetic cases."""
    credentials = ensure_demo_users()
    User = get_user_model()
    project = Project.objects.filter(name=DEMO_PROJECT).first()
    if project is None:
        project = projects.create_project(
            name=DEMO_PROJECT,
            created_by=None,
            modality="DX",
            description="Synthetic chest radiographs with clinical context and lab values.",
            double_read_fraction=0.1,
            # The study enrols adults: a younger patient's study would be held out.
            eligibility_rules={"min_age_years": 18},
        )
        loop_settings.update_loop_settings(project=project, auto_retrain_threshold=20)
    ensure_demo_approval(project)
    for username, (roles, _) in DEMO_USERS.items():
        for role in roles:
            projects.add_member(
                project=project,
                user=User.objects.get(username=username),
                role=role,
                added_by=None,
            )
    with tempfile.TemporaryDirectory(prefix="medloop-demo-") as tmp:
        cases = synthetic.generate_dataset(seed=seed, count=count, out_dir=Path(tmp), size=size)
        # The same paths as real data: DICOM through ingest, clinical context through import.
        batch = batches.ingest_sources(
            project=project,
            sources=chain.from_iterable(
                batches.path_sources(path) for path in sorted(Path(tmp).glob("*.dcm"))
            ),
            source=IngestBatch.Source.COMMAND,
        )
        created = batch.stored
        context = [
            {
                "accession_number": case.accession_number,
                "indication": case.indication,
                "history": case.history,
                "labs": case.labs,
            }
            for case in cases
        ]
        import_clinical_context(
            project=project, data=json.dumps(context).encode(), file_name="demo-context.json"
        )
    return DemoSummary(
        project=project,
        credentials=credentials,
        cases_created=created,
        cases_total=project.cases.count(),
    )
