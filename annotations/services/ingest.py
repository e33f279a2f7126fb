"""Ingest: DICOM bytes in, de-identified instance stored, grouped into Patient / Study /
Series / Instance, and each study made into a Case. Idempotent: the same file twice is stored
once (de-identification is deterministic per project, so the stored bytes are identical)."""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pydicom
import pydicom.uid
from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from pydicom.errors import InvalidDicomError

from annotations.dicom import completeness, eligibility, pixels
from annotations.dicom.deidentify import deidentify, keyed_digest, quarantine_reason
from annotations.models import Case, Instance, Patient, Project, Series, Study
from annotations.services import audit, ethics
from annotations.services.errors import InvalidInput
from medloop.compiled_queries import CompiledInsert, CompiledQuery

# The statements every slice runs, compiled once (medloop.compiled_queries): building and
# compiling a queryset costs more Python time than the database takes to answer it.
# The project's instance with this (de-identified) SOP Instance UID: what .first() finds.
_EXISTING_INSTANCE = CompiledQuery(
    lambda *, project_id, sop_uid: Instance.objects.filter(
        series__study__project_id=project_id, sop_instance_uid=sop_uid
    )[:1]
)
# The series of a slice whose patient, study and series rows all exist already.
_KNOWN_SERIES = CompiledQuery(
    lambda *, project_id, study_uid, pseudonym, series_uid: (
        Series.objects.filter(
            study__project_id=project_id,
            study__study_instance_uid=study_uid,
            study__patient__pseudonym=pseudonym,
            series_instance_uid=series_uid,
        )
        .order_by("pk")
        .values_list("pk")[:1]
    )
)
_INSERT_INSTANCE = CompiledInsert(Instance)


@dataclass(frozen=True)
class IngestResult:
    instance: Instance
    created: bool


def storage_path(relative: str) -> Path:
    return Path(settings.STORAGE_DIR) / relative


def _fraction(secret: str, kind: str, uid: str) -> float:
    """A stable number in [0, 1) per study: decides validation hold-out and double reading."""
    return int.from_bytes(keyed_digest(secret, kind, uid)[:8], "big") / 2**64


def _parse_date(value: object) -> date | None:
    text = str(value or "")
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except (ValueError, IndexError):
        return None


class TooLarge(InvalidInput):
    """An instance or upload over the configured size limit (HTTP 413)."""

    status_code = 413
    code = "too_large"


def max_instance_bytes() -> int:
    return int(settings.MEDLOOP_MAX_INSTANCE_BYTES)


_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
KNOWN_TRANSFER_SYNTAXES = frozenset(
    pydicom.uid.AllTransferSyntaxes + pydicom.uid.PrivateTransferSyntaxes
)


def _parse(data: bytes, name: str) -> pydicom.FileDataset:
    """Parse a Part 10 file; files without preamble and meta header are accepted when they
    parse as a dataset with the identifying UIDs (real-world exports often lack them).

    pydicom reads a truncated file without complaint, so the transfer syntax and the
    completeness of the data set (annotations.dicom.completeness) are checked here."""
    if not data:
        raise InvalidInput(f"{name}: empty file (0 bytes), not a DICOM file.")
    dataset = _read(data, name)
    transfer_syntax = str(dataset.file_meta.get("TransferSyntaxUID", ""))
    if not transfer_syntax:
        raise InvalidInput(
            f"{name}: no transfer syntax: the file meta information has no (0002,0010) "
            "Transfer Syntax UID (truncated or incomplete header)."
        )
    if transfer_syntax not in KNOWN_TRANSFER_SYNTAXES:
        raise InvalidInput(
            f"{name}: transfer syntax UID {transfer_syntax[:64]!r} is not a known transfer "
            "syntax; the data set cannot be read."
        )
    incomplete = completeness.incomplete_reason(dataset)
    if incomplete:
        raise InvalidInput(f"{name}: {incomplete}.")
    return dataset


def _read(data: bytes, name: str) -> pydicom.FileDataset:
    """pydicom's reading of ``data``: as Part 10, else forced (see ``_parse``)."""
    try:
        return pydicom.dcmread(io.BytesIO(data), force=False)
    except InvalidDicomError:
        pass
    except Exception as exc:  # any parser failure on user input is a refusal, never a crash
        raise InvalidInput(f"{name}: not a readable DICOM file ({exc}).") from exc
    try:
        dataset = pydicom.dcmread(io.BytesIO(data), force=True)
        dataset.get("SOPInstanceUID")  # parses the elements read lazily
    except Exception as exc:
        raise InvalidInput(f"{name}: not a DICOM file ({exc}).") from exc
    if not dataset.get("SOPInstanceUID") or not dataset.get("SOPClassUID"):
        raise InvalidInput(f"{name}: not a DICOM file (no DICM prefix and no SOP UIDs).")
    meta = dataset.file_meta
    if "TransferSyntaxUID" not in meta:
        implicit = dataset.original_encoding[0]
        little = dataset.original_encoding[1]
        if implicit:
            meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
        elif little:
            meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
        else:
            meta.TransferSyntaxUID = pydicom.uid.ExplicitVRBigEndian
    return dataset


def ingest_dicom_bytes(
    *, project: Project, data: bytes, source_name: str = "", actor: User | None = None
) -> IngestResult:
    """De-identify and store one DICOM Part 10 file given as bytes (never written to disk
    before de-identification).

    Raises InvalidInput naming what is wrong: over the size limit (TooLarge), not DICOM, no
    pixel data, missing UIDs, pixel data that cannot be decoded; EthicsApprovalRequired when
    the project has no current ethics approval (annotations.services.ethics)."""
    ethics.require_current_approval(project=project, actor=actor, activity="ingest")
    try:
        return _ingest(project=project, data=data, name=source_name or "file", actor=actor)
    except InvalidInput as exc:
        # Reasons quote the file's own bytes; PostgreSQL refuses NUL in text and JSON columns
        # (the batch report), so it is written out as an escape.
        exc.message = exc.message.replace("\x00", "\\x00")
        exc.args = (exc.message,)
        raise


def _ingest(*, project: Project, data: bytes, name: str, actor: User | None) -> IngestResult:
    if len(data) > max_instance_bytes():
        raise TooLarge(f"{name}: {len(data)} bytes is over the limit of {max_instance_bytes()}.")
    dataset = _parse(data, name)
    try:
        for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "SOPClassUID"):
            if not dataset.get(keyword):
                raise InvalidInput(f"{name}: {keyword} is missing.")
            # De-identification replaces UIDs by their VR, and only UIDs fit the columns: a
            # damaged one (another VR, garbage, too long) would be kept or refused by the
            # database.
            element = dataset[keyword]
            uid = str(element.value)
            if element.VR != "UI" or len(uid) > 64 or not _UID.fullmatch(uid):
                raise InvalidInput(
                    f"{name}: {keyword} {uid[:80]!r} (VR {element.VR}) is not a valid UID."
                )
        if (
            "PixelData" not in dataset
            and "FloatPixelData" not in dataset
            and "DoubleFloatPixelData" not in dataset
        ):
            raise InvalidInput(f"{name}: no pixel data; only images are ingested.")
        if not dataset.get("Rows") or not dataset.get("Columns"):
            raise InvalidInput(f"{name}: Rows or Columns missing.")
        try:
            pixels.check_decodable(dataset)
        except pixels.UnsupportedPixelData as exc:
            raise InvalidInput(f"{name}: {exc}") from exc
        quarantine = quarantine_reason(dataset) or ""
        # Eligibility is read from the original header (birth date, age, sex); only the age
        # band survives it. With rules, the stored file keeps no age either.
        verdict = eligibility.evaluate(project.eligibility_rules, dataset)
        _, patient_pseudonym = deidentify(dataset, secret=project.pseudonym_secret)
        if project.eligibility_rules and "PatientAge" in dataset:
            del dataset.PatientAge
    except InvalidInput:
        raise
    except Exception as exc:  # malformed content found while reading elements lazily
        raise InvalidInput(
            f"{name}: malformed DICOM content ({type(exc).__name__}: {exc})."
        ) from exc

    study_uid = str(dataset.StudyInstanceUID)
    series_uid = str(dataset.SeriesInstanceUID)
    sop_uid = str(dataset.SOPInstanceUID)
    # De-identification is deterministic per project: the same file maps to the same UIDs.
    for existing in _EXISTING_INSTANCE.fetch(project_id=project.pk, sop_uid=sop_uid):
        return IngestResult(instance=existing, created=False)

    relative = f"projects/{project.pk}/{study_uid}/{series_uid}/{sop_uid}.dcm"
    try:
        encoded = _encode(dataset)
    except Exception as exc:  # pydicom refused to encode what it read: the file is malformed
        raise InvalidInput(
            f"{name}: cannot be written as DICOM ({type(exc).__name__}: {exc})."
        ) from exc
    # The file is written to a temporary name, fsynced and renamed into place on a helper
    # thread while it is hashed and the rows are looked up and inserted here; the transaction
    # waits for it before it commits: a committed Instance row always names a complete file
    # on stable storage.
    stored = _start_durable_write(storage_path(relative), encoded)
    sha256, size = hashlib.sha256(encoded).hexdigest(), len(encoded)
    detail: dict[str, object] = {"sha256": sha256, "bytes": size}
    if verdict.held_out_reason:
        detail["held_out_reason"] = verdict.held_out_reason
    for attempt in range(3):
        try:
            with transaction.atomic(), audit.batched():
                instance, created = _register(
                    project=project,
                    dataset=dataset,
                    patient_pseudonym=patient_pseudonym,
                    relative=relative,
                    sha256=sha256,
                    size=size,
                    quarantine=quarantine,
                    verdict=verdict,
                    check_existing=attempt > 0,
                )
                if created:
                    # In the same transaction as the row it records: both or neither.
                    audit.record(
                        action="instance.ingest",
                        actor=actor,
                        target=instance,
                        project_id=project.pk,
                        detail=detail,
                    )
                stored.result()  # the file is in place and durable before the rows commit
            break
        except IntegrityError:
            # A concurrent ingest created the same patient, study, series or instance first;
            # its transaction has committed, so looking again finds its rows.
            if attempt == 2:
                raise
    return IngestResult(instance=instance, created=created)


def _encode(dataset: pydicom.FileDataset) -> memoryview:
    """``dataset`` as Part 10 bytes. Encoded in memory: pydicom seeks back to patch sequence
    lengths, so the bytes are final only at the end; getbuffer() hashes and writes them
    without another copy."""
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getbuffer()


# One thread that makes written files durable (fsync, then rename into place) while the
# ingesting thread goes on with the database rows; fsync releases the GIL.
_SYNCER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-fsync")


def _start_durable_write(path: Path, data: memoryview) -> Future[None]:
    """Write ``data`` to ``path`` through a temporary file beside it, on the helper thread:
    the returned future is done once the temporary file is written, fsynced and renamed to
    ``path`` (``os.replace``, atomic on POSIX), so a reader never sees a half-written file. On
    any failure the temporary file is removed and the future raises. ``data`` must not change
    until the future is done."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")

    def finish() -> None:
        try:
            try:
                with os.fdopen(handle, "wb", closefd=False) as stream:
                    stream.write(data)
                os.fsync(handle)
            finally:
                os.close(handle)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    try:
        return _SYNCER.submit(finish)
    except BaseException:
        os.close(handle)
        Path(temporary).unlink(missing_ok=True)
        raise


def _register(
    *,
    project: Project,
    dataset: pydicom.FileDataset,
    patient_pseudonym: str,
    relative: str,
    sha256: str,
    size: int,
    quarantine: str,
    verdict: eligibility.Verdict,
    check_existing: bool,
) -> tuple[Instance, bool]:
    """The Instance row of ``dataset``, with its Patient, Study (and Case) and Series rows
    when they are new; (instance, created). ``check_existing``: look for the instance first
    (the caller has not just done so in this attempt)."""
    study_uid = str(dataset.StudyInstanceUID)
    series_uid = str(dataset.SeriesInstanceUID)
    # The slices of a series after its first: the patient, study and series rows all exist, and
    # one look-up finds the series (where the old path took three).
    known = _KNOWN_SERIES.rows(
        project_id=project.pk,
        study_uid=study_uid,
        pseudonym=patient_pseudonym,
        series_uid=series_uid,
    )
    if known:
        series_id = int(known[0][0])
    else:
        series_id = _register_series(
            project=project,
            dataset=dataset,
            patient_pseudonym=patient_pseudonym,
            verdict=verdict,
        ).pk
    sop_uid = str(dataset.SOPInstanceUID)
    if check_existing:
        instance = Instance.objects.filter(series_id=series_id, sop_instance_uid=sop_uid).first()
        if instance is not None:
            return instance, False
    instance = Instance(
        series_id=series_id,
        sop_instance_uid=sop_uid,
        sop_class_uid=str(dataset.SOPClassUID),
        instance_number=_int_or_none(dataset.get("InstanceNumber")),
        file_path=relative,
        sha256=sha256,
        size_bytes=size,
        rows=int(dataset.Rows),
        columns=int(dataset.Columns),
        number_of_frames=_int_or_none(dataset.get("NumberOfFrames")) or 1,
        transfer_syntax_uid=str(dataset.file_meta.TransferSyntaxUID),
        photometric_interpretation=_text(dataset, "PhotometricInterpretation", 32),
        quarantined=bool(quarantine),
        quarantine_reason=quarantine[:200],
    )
    _INSERT_INSTANCE.insert([instance])  # one INSERT ... RETURNING, as create() (no signals)
    return instance, True


def _register_series(
    *,
    project: Project,
    dataset: pydicom.FileDataset,
    patient_pseudonym: str,
    verdict: eligibility.Verdict,
) -> Series:
    """The Series row of ``dataset``: found or created, with its Patient and Study (and the
    study's Case) when they are new."""
    # Plain look-ups and inserts, not get_or_create: no savepoint per row. A unique-constraint
    # race surfaces as IntegrityError and the caller retries the whole transaction.
    patient = Patient.objects.filter(project=project, pseudonym=patient_pseudonym).first()
    if patient is None:
        patient = Patient.objects.create(
            project=project,
            pseudonym=patient_pseudonym,
            sex=_text(dataset, "PatientSex", 1),
        )
    study_uid = str(dataset.StudyInstanceUID)
    study = Study.objects.filter(project=project, study_instance_uid=study_uid).first()
    if study is None:
        study = Study.objects.create(
            project=project,
            patient=patient,
            study_instance_uid=study_uid,
            accession_pseudonym=_text(dataset, "AccessionNumber", 64),
            study_date=_parse_date(dataset.get("StudyDate")),
            description=_text(dataset, "StudyDescription", 200),
            age_band=verdict.age_band,
        )
        secret = project.pseudonym_secret
        Case.objects.create(
            project=project,
            study=study,
            is_validation=_fraction(secret, "validation", study_uid) < project.validation_fraction,
            required_reads=2
            if _fraction(secret, "double-read", study_uid) < project.double_read_fraction
            else 1,
            # An ineligible study (or one whose eligibility is unknown) is held out for a lead.
            held_out=bool(verdict.held_out_reason),
            held_out_reason=verdict.held_out_reason[:300],
        )
    series_uid = str(dataset.SeriesInstanceUID)
    series = Series.objects.filter(study=study, series_instance_uid=series_uid).first()
    if series is None:
        series = Series.objects.create(
            study=study,
            series_instance_uid=series_uid,
            modality=_text(dataset, "Modality", 16),
            series_number=_int_or_none(dataset.get("SeriesNumber")),
            description=_text(dataset, "SeriesDescription", 200),
            body_part=_text(dataset, "BodyPartExamined", 64),
        )
    return series


def _int_or_none(value: object) -> int | None:
    """An IS value as a number for an integer column; None when absent, not a number or out
    of the column's range."""
    try:
        number = int(str(value)) if value not in (None, "") else None
    except ValueError:
        return None
    return number if number is None or -(2**31) <= number < 2**31 else None


def _text(dataset: pydicom.FileDataset, keyword: str, limit: int) -> str:
    """A text attribute for a column of ``limit`` characters: NUL characters (which
    PostgreSQL refuses in text) removed, cut to the column's length."""
    return str(dataset.get(keyword, "") or "").replace("\x00", "")[:limit]


def ingest_dicom_path(*, project: Project, path: Path, actor: User | None = None) -> IngestResult:
    """Ingest one file from disk (see ingest_dicom_bytes)."""
    return ingest_dicom_bytes(
        project=project, data=Path(path).read_bytes(), source_name=str(path), actor=actor
    )
