"""`manage.py import_dicom PATH` for folders, zips and DICOMDIR trees, with a summary."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import pydicom
import pytest
from django.core.management import CommandError, call_command

from annotations.models import Case, Instance, Study

pytestmark = pytest.mark.django_db

DICOMDIR_TREE = Path(pydicom.data.get_testdata_file("CT_small.dcm")).parent / "dicomdirtests"


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command("import_dicom", *args, "--quiet", stdout=out)
    return out.getvalue()


def test_folder_import_groups_studies_into_cases_and_is_idempotent(
    project, synthetic_dir, tmp_path
):
    folder = tmp_path / "in"
    shutil.copytree(synthetic_dir, folder)
    (folder / "readme.txt").write_text("hello")
    summary = _run(str(folder), "--project", str(project.pk))
    assert "12 stored, 0 already stored, 2 refused" in summary  # readme.txt, manifest.json
    assert Case.objects.filter(project=project).count() == 12
    again = _run(str(folder), "--project", project.name)
    assert "0 stored, 12 already stored" in again


def test_zip_import(project, synthetic_dir, tmp_path):
    archive = tmp_path / "batch.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(synthetic_dir.glob("*.dcm"))[:4]:
            zf.write(path, f"nested/{path.name}")
    assert "4 stored" in _run(str(archive), "--project", str(project.pk))


def test_dicomdir_import_reads_the_files_it_lists(project):
    summary = _run(str(DICOMDIR_TREE / "DICOMDIR"), "--project", str(project.pk))
    fs_count = len(list(pydicom.fileset.FileSet(pydicom.dcmread(DICOMDIR_TREE / "DICOMDIR"))))
    stored = Instance.objects.count()
    assert stored > 0
    assert f"{stored} stored" in summary
    assert stored <= fs_count
    assert Study.objects.filter(project=project).count() >= 2


def test_unknown_project_or_path_is_a_clear_error(project, tmp_path):
    with pytest.raises(CommandError, match="No project"):
        _run(str(tmp_path), "--project", "nope")
    with pytest.raises(CommandError, match="does not exist"):
        _run(str(tmp_path / "missing"), "--project", str(project.pk))
