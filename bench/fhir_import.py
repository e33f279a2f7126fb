"""FHIR import speed (issue 17, section 1): a Bundle of 10,000 resources (per patient: Patient,
ImagingStudy, Condition, Consent and laboratory Observations) imported into a project of
synthetic cases, on the embedded SQLite database (or --database-url). Prints resources per
second and the total; the goal is at most 30 s on 2 cores.

    python bench/fhir_import.py [--resources 10000] [--patients 50]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _setup_django(var_dir: Path, database_url: str | None) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "medloop.settings.local"
    os.environ["MEDLOOP_VAR_DIR"] = str(var_dir)
    os.environ["MEDLOOP_LOG_LEVEL"] = "WARNING"
    os.environ["MEDLOOP_REQUIRE_ETHICS_APPROVAL"] = "false"
    os.environ["DATABASE_URL"] = database_url or f"sqlite:///{var_dir / 'bench.sqlite3'}"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def bundle(manifest: list[dict], total: int) -> dict:
    """``total`` resources spread over the manifest's patients."""
    entries: list[dict] = []
    per_patient_fixed = 4
    labs = max(1, total // len(manifest) - per_patient_fixed)
    for n, item in enumerate(manifest):
        pid = f"p{n}"
        subject = {"reference": f"Patient/{pid}"}
        entries += [
            {
                "resource": {
                    "resourceType": "Patient",
                    "id": pid,
                    "identifier": [{"value": item["patient_id"]}],
                }
            },
            {
                "resource": {
                    "resourceType": "ImagingStudy",
                    "status": "available",
                    "subject": subject,
                    "identifier": [
                        {
                            "system": "urn:dicom:uid",
                            "value": f"urn:oid:{item['study_instance_uid']}",
                        }
                    ],
                }
            },
            {
                "resource": {
                    "resourceType": "Condition",
                    "subject": subject,
                    "code": {"text": "Chronic obstructive pulmonary disease"},
                }
            },
            {
                "resource": {
                    "resourceType": "Consent",
                    "status": "active",
                    "scope": {"text": "research"},
                    "category": [{"text": "research"}],
                    "patient": subject,
                    "dateTime": "2024-01-01",
                    "provision": {"type": "permit"},
                }
            },
        ]
        for k in range(labs):
            entries.append(
                {
                    "resource": {
                        "resourceType": "Observation",
                        "status": "final",
                        "subject": subject,
                        "code": {
                            "coding": [
                                {
                                    "system": "http://loinc.org",
                                    "code": "1988-5",
                                    "display": "C reactive protein",
                                }
                            ]
                        },
                        "effectiveDateTime": f"2024-02-{1 + k % 28:02d}T{k % 24:02d}:00:00+00:00",
                        "valueQuantity": {"value": 3 + k % 50, "unit": "mg/L"},
                        "referenceRange": [{"high": {"value": 5}}],
                    }
                }
            )
    return {"resourceType": "Bundle", "type": "collection", "entry": entries[:total]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--resources", type=int, default=10_000)
    parser.add_argument("--patients", type=int, default=50)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="medloop-fhir-bench-") as tmp:
        var = Path(tmp)
        _setup_django(var, args.database_url)
        from active_learning.ml import synthetic
        from annotations.services import ingest, projects
        from annotations.services.fhir_import import import_fhir

        images = var / "images"
        synthetic.generate_dataset(seed=5, count=args.patients, out_dir=images, size=64)
        manifest = synthetic.load_manifest(images)
        project = projects.create_project(name="FHIR bench", created_by=None)
        for item in manifest:
            ingest.ingest_dicom_path(project=project, path=images / item["file"])
        data = json.dumps(bundle(manifest, args.resources)).encode()
        started = time.perf_counter()
        batch = import_fhir(project=project, data=data)
        seconds = time.perf_counter() - started
        print(f"resources        {args.resources}")
        print(f"imported         {batch.stored}  not imported {batch.refused}")
        print(f"seconds          {seconds:.1f}  (goal <= 30 on 2 cores)")
        print(f"resources/s      {args.resources / seconds:.0f}")


if __name__ == "__main__":
    main()
