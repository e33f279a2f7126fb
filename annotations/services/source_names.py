"""Names of ingested files without the names themselves.

A file name can hold a patient's name, MRN or birth date (``DOE_JOHN_MRN-998877.dcm``), so
MedLoop keeps none: an ingest report line carries a label (its position in the batch and a
short keyed hash) and ``source_key``, the full HMAC of the file's stem under the project's
secret. A COCO import matches its ``file_name`` by computing the same key, so labels made on
the original files still find their images (annotations.services.imports.matching)."""

from __future__ import annotations

import re
from urllib.parse import unquote

from annotations.dicom.deidentify import keyed_digest
from annotations.models import Project

IMAGE_EXTENSIONS = (
    ".png",
    ".jpg",
    ".jpeg",
    ".dcm",
    ".dicom",
    ".tif",
    ".tiff",
    ".bmp",
    ".gif",
    ".webp",
    ".jp2",
    ".j2k",
)
# Kept in the label: an extension tells a zip from a DICOM file and says nothing of a patient.
_SAFE_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,8}$")
SOURCE_KEY_KIND = "source-name"


def file_stem(name: str) -> str:
    """``name`` without folders (``/`` or ``\\``) and up to two image extensions, URL-decoded;
    for a Label Studio local-files URL (``/data/local-files/?d=dir/x.png``), its path part."""
    text = unquote(name.strip())
    if "?d=" in text:
        text = text.split("?d=", 1)[1]
    base = text.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    for _ in range(2):
        ext = next((e for e in IMAGE_EXTENSIONS if base.lower().endswith(e)), None)
        if ext is None or len(base) == len(ext):
            break
        base = base[: -len(ext)]
    return base


def stem_key(project: Project, stem: str) -> str:
    """The keyed hash (hex HMAC-SHA256 under the project's secret) of a file stem, case
    ignored: what an ingest report keeps instead of the name, and what a COCO import
    computes from its ``file_name`` to find the file."""
    return keyed_digest(project.pseudonym_secret, SOURCE_KEY_KIND, stem.casefold()).hex()


def source_key(project: Project, name: str) -> str:
    """``stem_key`` of the stem of ``name`` (a path, an archive member or a bare file name)."""
    return stem_key(project, file_stem(name))


def source_label(position: int, key: str, name: str) -> str:
    """What a report shows for the ``position``-th file of a batch (1-based): ``file 3
    (a1b2c3d4e5.dcm)``, the key's first characters and the name's extension when it is a
    plain one. The uploader finds the file by its position; nobody reads a name from it."""
    extension = _SAFE_EXTENSION.search(name.rstrip("/").rsplit("/", 1)[-1])
    suffix = extension.group(0).lower() if extension else ""
    return f"file {position} ({key[:10]}{suffix})"
