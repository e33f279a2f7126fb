"""Batch ingest: many files (uploads, folders, zip archives, DICOMDIR trees) into one
IngestBatch with a line per file. A bad file is refused with its reason and the rest of the
batch goes on; each instance is stored atomically, so nothing is ever half-written."""

from __future__ import annotations

import io
import os
import posixpath
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone
from pydicom.fileset import FileSet

from annotations.models import IngestBatch, Project
from annotations.services import ethics, ingest, loop_signals, source_names
from annotations.services.errors import InvalidInput

ZIP_MAGIC = b"PK\x03\x04"
# A Part 10 file: 128-byte preamble, then "DICM". A bare data set (no preamble) starts with the
# tag of its first element: group 0002 (file meta), 0004 or 0008 (where the SOP UIDs live).
DICOM_HEAD_BYTES = 132
_DATA_SET_FIRST_GROUPS = frozenset({0x0002, 0x0004, 0x0008})


class SourceRefused(InvalidInput):
    """A source file refused before its content is parsed; the batch adds the file's label."""


def looks_like_dicom(head: bytes) -> bool:
    """Whether the first ``DICOM_HEAD_BYTES`` of a file can start DICOM: the 'DICM' prefix at
    byte 128, or a first element tag in group 0002, 0004 or 0008 (little or big endian).
    Cheap, and false for text, images, archives and zero-filled bytes."""
    if head[128:132] == b"DICM":
        return True
    if len(head) < 8:
        return False
    little, big = int.from_bytes(head[:2], "little"), int.from_bytes(head[:2], "big")
    return little in _DATA_SET_FIRST_GROUPS or big in _DATA_SET_FIRST_GROUPS


@dataclass(frozen=True)
class SourceFile:
    """One candidate file: its name (hashed for the report, never stored) and a way to get its
    bytes (or the reason it cannot be read at all, e.g. a zip member with a traversing path)."""

    name: str
    read: Callable[[], bytes]
    refusal: str | None = None


def start_batch(*, project: Project, source: str, actor: User | None) -> IngestBatch:
    """A new batch; refused whole (EthicsApprovalRequired) when the project has no current
    ethics approval."""
    ethics.require_current_approval(project=project, actor=actor, activity="ingest")
    return IngestBatch.objects.create(project=project, source=source, created_by=actor)


def add_to_batch(batch: IngestBatch, item: SourceFile, *, actor: User | None) -> dict[str, Any]:
    """Ingest one source file into ``batch`` and return its report line.

    The line keeps no file name (it may name the patient): ``source`` is a label (position in
    the batch and a short keyed hash) and ``source_key`` the keyed hash a COCO import matches
    by (annotations.services.source_names); reasons name the file by its label too."""
    key = source_names.source_key(batch.project, item.name)
    label = source_names.source_label(len(batch.items) + 1, key, item.name)
    line: dict[str, Any] = {"source": label, "source_key": key}
    try:
        if item.refusal is not None:
            raise InvalidInput(f"{label}: {item.refusal}")
        data = _read_source(item, label)
        result = ingest.ingest_dicom_bytes(
            project=batch.project, data=data, source_name=label, actor=actor
        )
    except InvalidInput as exc:
        line.update(status="refused", reason=exc.message)
        batch.refused += 1
    except OSError as exc:
        line.update(status="refused", reason=f"{label}: cannot be read ({exc.strerror}).")
        batch.refused += 1
    else:
        instance = result.instance
        line.update(
            status="stored" if result.created else "duplicate",
            instance_id=instance.pk,
            case_id=instance.series.study.case.pk,
            quarantined=instance.quarantined,
        )
        if instance.quarantined:
            line["held_reason"] = instance.quarantine_reason
        case = instance.series.study.case
        if case.held_out:
            line["held_out_reason"] = case.held_out_reason
        if result.created:
            batch.stored += 1
            batch.quarantined += int(instance.quarantined)
        else:
            batch.duplicates += 1
    batch.items.append(line)
    if len(batch.items) % 100 == 0:  # a long batch shows its progress and survives a crash
        batch.save()
    return line


def _read_source(item: SourceFile, label: str) -> bytes:
    """The file's bytes, refused unless they start like DICOM (see ``looks_like_dicom``): bytes
    that are not DICOM are never handed to pydicom's forced parse, which is slow on junk."""
    try:
        data = item.read()
    except SourceRefused as exc:
        raise InvalidInput(f"{label}: {exc.message}") from exc
    if data and not looks_like_dicom(data[:DICOM_HEAD_BYTES]):
        raise InvalidInput(
            f"{label}: not a DICOM file (no 'DICM' prefix at byte 128 and no data set at byte 0)."
        )
    return data


def finish_batch(batch: IngestBatch) -> IngestBatch:
    batch.finished_at = timezone.now()
    batch.save()
    if batch.stored:
        loop_signals.reorder_queue(batch.project_id)
    return batch


def ingest_sources(
    *,
    project: Project,
    sources: Iterable[SourceFile],
    source: str,
    actor: User | None = None,
    on_item: Callable[[dict[str, Any]], None] | None = None,
) -> IngestBatch:
    """Ingest every source into a new batch; ``on_item`` sees each report line (progress)."""
    batch = start_batch(project=project, source=source, actor=actor)
    try:
        for item in sources:
            line = add_to_batch(batch, item, actor=actor)
            if on_item is not None:
                on_item(line)
    finally:
        finish_batch(batch)
    return batch


# --- sources ---------------------------------------------------------------------------------


def _unsafe_member_name(name: str) -> str | None:
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute path in archive"
    parts = posixpath.normpath(name.replace("\\", "/")).split("/")
    if ".." in parts:
        return "path traversal ('..') in archive member name"
    return None


def zip_members(data: bytes | io.IOBase, archive_name: str) -> Iterator[SourceFile]:
    """The files of a zip archive, read in memory with limits, all checked from the archive's
    directory before anything is decompressed (a zip bomb costs nothing):

    - the whole archive is refused when it has more than MEDLOOP_MAX_ARCHIVE_MEMBERS members,
      or when its members' declared sizes add up to more than MEDLOOP_MAX_COMPRESSION_RATIO
      times the archive's own size;
    - a member is refused when its name escapes the archive, it is encrypted, it is over the
      instance limit, its own compression ratio is over the limit (whatever its size), or it
      would take the archive past MEDLOOP_MAX_ARCHIVE_BYTES uncompressed;
    - a member whose first bytes are not DICOM is refused before the rest is decompressed."""
    stream = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        archive = zipfile.ZipFile(stream)
        infos = [info for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, OSError) as exc:
        yield SourceFile(archive_name, bytes, refusal=f"not a readable zip archive ({exc})")
        return
    refusal = _archive_refusal(infos, _stream_size(stream))
    if refusal is not None:
        yield SourceFile(archive_name, bytes, refusal=refusal)
        return
    total = 0
    max_ratio = settings.MEDLOOP_MAX_COMPRESSION_RATIO
    for info in infos:
        name = f"{archive_name}/{info.filename}"
        refusal = _unsafe_member_name(info.filename)
        if refusal is None and info.flag_bits & 0x1:
            refusal = "encrypted archive member"
        if refusal is None and info.file_size > ingest.max_instance_bytes():
            refusal = f"{info.file_size} bytes uncompressed is over the instance limit"
        if refusal is None and info.file_size > max_ratio * max(info.compress_size, 1):
            refusal = (
                f"compression ratio {info.file_size // max(info.compress_size, 1)}:1 is over "
                f"the limit of {max_ratio}:1 (zip bomb?)"
            )
        if refusal is None and total + info.file_size > settings.MEDLOOP_MAX_ARCHIVE_BYTES:
            refusal = "archive exceeds the total uncompressed size limit"
        if refusal is None:
            total += info.file_size
        yield SourceFile(name, _member_reader(archive, info), refusal=refusal)


def _stream_size(stream: io.IOBase) -> int:
    position = stream.tell()
    size = stream.seek(0, io.SEEK_END)
    stream.seek(position)
    return size


def _archive_refusal(infos: list[zipfile.ZipInfo], archive_bytes: int) -> str | None:
    """Why the whole archive is refused from its directory alone, or None."""
    max_members = settings.MEDLOOP_MAX_ARCHIVE_MEMBERS
    if len(infos) > max_members:
        return f"{len(infos)} members is over the limit of {max_members} per archive"
    declared = sum(info.file_size for info in infos)
    max_ratio = settings.MEDLOOP_MAX_COMPRESSION_RATIO
    if declared > max_ratio * max(archive_bytes, 1):
        return (
            f"compression ratio {declared // max(archive_bytes, 1)}:1 for the whole archive "
            f"({declared} bytes declared in {archive_bytes}) is over the limit of "
            f"{max_ratio}:1 (zip bomb?)"
        )
    if declared > settings.MEDLOOP_MAX_ARCHIVE_BYTES:
        return (
            f"{declared} bytes uncompressed is over the archive limit of "
            f"{settings.MEDLOOP_MAX_ARCHIVE_BYTES}"
        )
    return None


def _member_reader(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[], bytes]:
    def read() -> bytes:
        limit = ingest.max_instance_bytes()
        try:
            with archive.open(info) as member:
                head = member.read(DICOM_HEAD_BYTES)
                if head and not looks_like_dicom(head):
                    raise SourceRefused(
                        "not a DICOM file (no 'DICM' prefix at byte 128 and no data set at "
                        "byte 0); not decompressed further."
                    )
                # Read one byte past the declared size: a lying header cannot inflate further.
                data = head + member.read(max(min(info.file_size, limit) + 1 - len(head), 0))
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
            raise SourceRefused(f"cannot be extracted ({exc}).") from exc
        if len(data) > min(info.file_size, limit):
            raise SourceRefused("member is larger than its header declares.")
        return data

    return read


def is_zip(head: bytes) -> bool:
    return head.startswith(ZIP_MAGIC)


def _file_reader(path: Path) -> Callable[[], bytes]:
    def read() -> bytes:
        size = path.stat().st_size
        if size > ingest.max_instance_bytes():
            raise SourceRefused(f"{size} bytes is over the limit of {ingest.max_instance_bytes()}.")
        return path.read_bytes()

    return read


def _dicomdir_files(path: Path) -> Iterator[SourceFile]:
    try:
        file_set = FileSet(pydicom.dcmread(path))
    except Exception as exc:  # a broken DICOMDIR is reported, not raised
        yield SourceFile(str(path), bytes, refusal=f"unreadable DICOMDIR ({type(exc).__name__})")
        return
    for instance in file_set:
        member = Path(instance.path)
        yield SourceFile(str(member), _file_reader(member))


def path_sources(root: Path) -> Iterator[SourceFile]:
    """Files under a folder (recursively), a zip archive, a DICOMDIR, or one file."""
    root = Path(root)
    if root.is_file():
        if root.name.upper() == "DICOMDIR":
            yield from _dicomdir_files(root)
        elif is_zip(root.open("rb").read(4)):
            with root.open("rb") as handle:
                yield from zip_members(handle, str(root))
        else:
            yield SourceFile(str(root), _file_reader(root))
        return
    if not root.is_dir():
        yield SourceFile(str(root), bytes, refusal="no such file or folder")
        return
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            if name.upper() == "DICOMDIR":
                continue  # an index; the files it lists are in this tree and imported as such
            yield from path_sources(Path(folder) / name)


def _constant(data: bytes) -> Callable[[], bytes]:
    return lambda: data


def upload_sources(files: Iterable[Any]) -> Iterator[SourceFile]:
    """Uploaded files (in memory, see annotations.uploads): DICOM files or zip archives."""
    for uploaded in files:
        data = uploaded.read()
        if is_zip(data[:4]):
            yield from zip_members(data, uploaded.name)
        else:
            yield SourceFile(uploaded.name, _constant(data))


def count_sources(root: Path) -> int:
    """How many files ``path_sources`` will yield at most (for a progress bar)."""
    root = Path(root)
    if root.is_dir():
        return sum(len(names) for _, _, names in os.walk(root))
    return 1


def hash_stored_source_names() -> int:
    """Replace the file names that report lines written before names were hashed still hold
    (``source`` and the reasons quoting it) by the label and ``source_key`` new lines carry;
    return how many lines changed. Idempotent: lines with a ``source_key`` are left alone."""
    changed = 0
    stored = IngestBatch.objects.exclude(source=IngestBatch.Source.CLINICAL).select_related(
        "project"
    )
    for batch in stored.iterator(chunk_size=50):
        if not isinstance(batch.items, list):
            continue
        touched = False
        for position, line in enumerate(batch.items, start=1):
            if not isinstance(line, dict) or "source_key" in line:
                continue
            name = str(line.get("source") or "")
            key = source_names.source_key(batch.project, name)
            label = source_names.source_label(position, key, name)
            line["source"], line["source_key"] = label, key
            if name and isinstance(line.get("reason"), str):
                line["reason"] = line["reason"].replace(name, label)
            touched = True
            changed += 1
        if touched:
            batch.save(update_fields=["items"])
    return changed
