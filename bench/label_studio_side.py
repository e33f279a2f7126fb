"""Label Studio's side of bench/queue_load.py --vs-label-studio. Run with the Python of Label
Studio's own virtual environment (var/label-studio-<version>/), never MedLoop's:

    python bench/label_studio_side.py migrate
    python bench/label_studio_side.py prepare ANNOTATORS

``migrate`` migrates Label Studio's database (the bench keeps it as a template). ``prepare``
migrates Label Studio's database (DJANGO_DB, POSTGRE_* from the environment), creates an
administrator, the organization (legacy API tokens on: ``Authorization: Token ...`` as MedLoop's
clients send), one annotator with a token per client, and the project: a rectangle and a text
area on an image, one annotation per task, sequential sampling. Prints JSON with the project id,
the administrator's token and the annotators' tokens; the tasks are imported afterwards through
Label Studio's import API by the caller."""

from __future__ import annotations

import json
import os
import pathlib
import sys

LABEL_CONFIG = """<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="label" toName="image">
    <Label value="nodule"/>
  </RectangleLabels>
  <TextArea name="report" toName="image" editable="true"/>
</View>"""


def _setup() -> None:
    import label_studio

    sys.path.insert(0, str(pathlib.Path(label_studio.__file__).parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings.label_studio")
    import django

    django.setup()


def migrate() -> None:
    _setup()
    from django.core.management import call_command

    call_command("migrate", "--no-color", verbosity=0)


def prepare(annotators: int) -> None:
    _setup()
    from django.core.management import call_command
    from jwt_auth.models import JWTSettings
    from organizations.models import Organization
    from projects.models import Project
    from users.models import User

    call_command("migrate", "--no-color", verbosity=0)
    admin = User.objects.create_user(email="admin@bench.local", password="bench-admin-password")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    org = Organization.create_organization(created_by=admin, title="bench")
    admin.active_organization = org
    admin.save(update_fields=["active_organization"])
    JWTSettings.objects.update_or_create(
        organization=org, defaults={"legacy_api_tokens_enabled": True}
    )
    tokens = []
    for i in range(annotators):
        user = User.objects.create_user(
            email=f"annotator{i}@bench.local", username=f"annotator{i}", password=None
        )
        org.add_user(user)
        user.active_organization = org
        user.save(update_fields=["active_organization"])
        tokens.append(user.auth_token.key)
    project = Project.objects.create(
        title="bench", created_by=admin, organization=org, label_config=LABEL_CONFIG
    )
    project.maximum_annotations = 1
    project.sampling = Project.SEQUENCE
    project.show_skip_button = False
    project.save()
    print(json.dumps({"project": project.pk, "admin": admin.auth_token.key, "tokens": tokens}))


if __name__ == "__main__":
    if sys.argv[1:] == ["migrate"]:
        migrate()
    elif len(sys.argv) == 3 and sys.argv[1] == "prepare":
        prepare(int(sys.argv[2]))
    else:
        raise SystemExit(__doc__)
