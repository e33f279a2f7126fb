"""What a COCO file's images and categories are in a project: its ingested instances and its
finding keys.

Images are matched by file name, in this order (the first rule that names exactly one image
wins):

1. ``source_name``: the file's stem equals the stem of a file ingested into the project, e.g.
   ``images/case_00001.png`` for ``case_00001.dcm``. Ingest keeps no file name, only its keyed
   hash (an ingest batch line's ``source_key``, see annotations.services.source_names), so the
   stem is hashed the same way and compared;
2. ``sop_instance_uid``: the stem is the de-identified SOP Instance UID of a stored instance
   (MedLoop's own COCO export names images ``<uid>_<frame>``);
3. ``original_uid``: the stem is an original SOP Instance UID, which maps to a stored one
   through the project's keyed UID map (as ingest de-identified it).

A stem is the file name without folders and image extensions (``.png``, ``.jpg``, ``.dcm`` ...),
URL-decoded; Label Studio's 8-hex-digit upload prefix (``1a2b3c4d-name.png``) is tried with and
without it.

Category names match a finding's key or display name ignoring case and separators
(``Pleural effusion`` == ``pleural_effusion`` == ``PleuralEffusion``); an explicit map
{coco name: finding key} comes first."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar

from annotations.dicom.deidentify import STANDARD_UID_ROOT, replacement_uid
from annotations.models import IngestBatch, Instance, Project
from annotations.services.errors import InvalidInput
from annotations.services.source_names import file_stem, stem_key

# COCO ids: integers (from 0 in Label Studio, from 1 in CVAT and MedLoop) or, rarely, text.
CocoId = int | str
T = TypeVar("T")

SOURCE_NAME, SOP_INSTANCE_UID, ORIGINAL_UID = "source_name", "sop_instance_uid", "original_uid"
RULES = (SOURCE_NAME, SOP_INSTANCE_UID, ORIGINAL_UID)
# Label Studio stores uploads as <first 8 hex digits of a uuid4>-<original name>.
_UPLOAD_PREFIX = re.compile(r"^[0-9a-fA-F]{8}-(.+)$")
# MedLoop's COCO export: one image per frame, named <SOP Instance UID>_<frame>.
_FRAME_SUFFIX = re.compile(r"^(.+)_(\d{1,6})$")
_UID = re.compile(r"^[0-9]+(?:\.[0-9]+)+$")
_MAX_UID_CHARS = 64
_CHUNK = 500


@dataclass(frozen=True)
class Candidate:
    rule: str
    name: str
    frame: int | None


def candidates(file_name: str) -> list[Candidate]:
    """The names under which a COCO image may be known, in the order they are tried."""
    stem = file_stem(file_name)
    plain = [stem]
    prefixed = _UPLOAD_PREFIX.match(stem)
    if prefixed:
        plain.append(prefixed.group(1))
    framed = [
        (match.group(1), int(match.group(2)))
        for name in plain
        if (match := _FRAME_SUFFIX.match(name)) is not None
    ]
    found = [Candidate(SOURCE_NAME, name, None) for name in plain]
    for rule in (SOP_INSTANCE_UID, ORIGINAL_UID):
        found += [Candidate(rule, name, None) for name in plain if _is_uid(name)]
        found += [Candidate(rule, name, frame) for name, frame in framed if _is_uid(name)]
    return found


def _is_uid(name: str) -> bool:
    return len(name) <= _MAX_UID_CHARS and _UID.match(name) is not None


@dataclass(frozen=True)
class ImageMatch:
    """A COCO image found in the project: the stored instance and frame (1-based), and the
    rule that found it."""

    instance: Instance
    frame: int
    rule: str


@dataclass(frozen=True)
class Unmatched:
    file_name: str
    reason: str


def _source_index(project: Project, wanted: set[str]) -> dict[str, set[int]]:
    """{casefolded stem: instance ids} of files ingested into ``project`` whose stem is wanted.

    A report line holds the keyed hash of its file's stem (``source_key``); lines written
    before names were hashed hold the name itself (``source``) and are matched by it."""
    index: dict[str, set[int]] = defaultdict(set)
    by_key = {stem_key(project, stem): stem for stem in wanted}
    batches = IngestBatch.objects.filter(project=project).exclude(
        source=IngestBatch.Source.CLINICAL
    )
    for items in batches.values_list("items", flat=True).iterator(chunk_size=50):
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict) or not isinstance(item.get("instance_id"), int):
                continue
            if "source_key" in item:
                stem = by_key.get(str(item["source_key"]), "")
            else:
                stem = file_stem(str(item.get("source") or "")).casefold()
            if stem in wanted:
                index[stem].add(item["instance_id"])
    return index


def _chunks(values: Iterable[T]) -> Iterator[list[T]]:
    items = list(values)
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _instances(project: Project, ids: set[int], uids: set[str]) -> list[Instance]:
    found: list[Instance] = []
    stored = Instance.objects.filter(series__study__project=project).select_related(
        "series__study__case"
    )
    for pks in _chunks(ids):
        found += stored.filter(pk__in=pks)
    for names in _chunks(uids):
        found += stored.filter(sop_instance_uid__in=names)
    return found


def match_images(
    project: Project, file_names: Mapping[CocoId, tuple[str, int | None]]
) -> tuple[dict[CocoId, ImageMatch], dict[CocoId, Unmatched]]:
    """Find each image of ``file_names`` ({image id: (file name, frame the file names or
    None)}) among the project's stored instances; returns (matches, unmatched with reasons)."""
    tried = {image_id: candidates(name) for image_id, (name, _) in file_names.items()}
    wanted_sources = {
        c.name.casefold() for cs in tried.values() for c in cs if c.rule == SOURCE_NAME
    }
    sources = _source_index(project, wanted_sources)
    secret = project.pseudonym_secret
    mapped = {
        c.name: replacement_uid(secret, c.name)
        for cs in tried.values()
        for c in cs
        if c.rule == ORIGINAL_UID and not c.name.startswith(STANDARD_UID_ROOT)
    }
    uids = {c.name for cs in tried.values() for c in cs if c.rule == SOP_INSTANCE_UID}
    source_ids = {pk for ids in sources.values() for pk in ids}
    by_pk: dict[int, Instance] = {}
    by_uid: dict[str, dict[int, Instance]] = defaultdict(dict)
    for instance in _instances(project, source_ids, uids | set(mapped.values())):
        by_pk[instance.pk] = instance
        by_uid[instance.sop_instance_uid][instance.pk] = instance

    def look_up(candidate: Candidate) -> list[Instance]:
        if candidate.rule == SOURCE_NAME:
            ids = sources.get(candidate.name.casefold(), set())
            return [by_pk[pk] for pk in sorted(ids) if pk in by_pk]
        uid = candidate.name if candidate.rule == SOP_INSTANCE_UID else mapped.get(candidate.name)
        return list(by_uid.get(uid or "", {}).values())

    matches: dict[CocoId, ImageMatch] = {}
    unmatched: dict[CocoId, Unmatched] = {}
    for image_id, (file_name, named_frame) in file_names.items():
        ambiguous = ""
        for candidate in tried[image_id]:
            found = look_up(candidate)
            if len(found) > 1:
                ambiguous = ambiguous or f"{len(found)} ingested images go by {candidate.name!r}"
                continue
            if not found:
                continue
            instance = found[0]
            frame = candidate.frame or named_frame or 1
            if frame > instance.number_of_frames:
                unmatched[image_id] = Unmatched(
                    file_name,
                    f"names frame {frame}; the stored image has {instance.number_of_frames}",
                )
            else:
                matches[image_id] = ImageMatch(instance, frame, candidate.rule)
            break
        else:
            unmatched[image_id] = Unmatched(
                file_name,
                ambiguous
                or (
                    f"no file named {file_stem(file_name)!r} was ingested into this project, "
                    "and no stored image has it as (de-identified or original) SOP Instance UID"
                ),
            )
    return matches, unmatched


def normalised(name: str) -> str:
    """A category or finding name compared without case and separators."""
    return re.sub(r"[\W_]+", "", name.casefold())


def _findings_text(project: Project) -> str:
    return ", ".join(
        f"{f['key']} ({f.get('name', f['key'])})" for f in project.label_schema.get("findings", [])
    )


def finding_lookup(project: Project) -> dict[str, str]:
    """{normalised key or display name: finding key}; a key wins over another's display name."""
    findings = project.label_schema.get("findings", [])
    lookup = {normalised(str(f.get("name", ""))): f["key"] for f in findings if f.get("name")}
    lookup.update({normalised(f["key"]): f["key"] for f in findings})
    lookup.pop("", None)
    return lookup


def map_categories(
    project: Project, names: Iterable[str], explicit: Mapping[str, str] | None = None
) -> dict[str, str]:
    """{COCO category name: finding key} for every name in ``names``.

    ``explicit`` ({coco name: finding key or display name}) comes first, its names matched
    exactly or normalised. Raises InvalidInput naming every category that matches no finding,
    and the project's findings."""
    lookup = finding_lookup(project)
    keys = set(project.finding_keys)
    exact: dict[str, str] = {}
    loose: dict[str, str] = {}
    for coco_name, target in (explicit or {}).items():
        key = target if target in keys else lookup.get(normalised(target))
        if key is None:
            raise InvalidInput(
                f"category_map maps {coco_name!r} to {target!r}, which is not a finding of this "
                f"project; its findings are: {_findings_text(project)}.",
                finding_keys=project.finding_keys,
            )
        exact[coco_name] = key
        loose.setdefault(normalised(coco_name), key)
    mapping: dict[str, str] = {}
    unknown: list[str] = []
    for name in names:
        key = exact.get(name) or loose.get(normalised(name)) or lookup.get(normalised(name))
        if key is None:
            unknown.append(name)
        else:
            mapping[name] = key
    if unknown:
        raise InvalidInput(
            f"Categories not in this project's label schema: {sorted(set(unknown))}. Its "
            f"findings are: {_findings_text(project)}. Rename the categories, or map them "
            'with category_map {"coco name": "finding key"}.',
            unknown_categories=sorted(set(unknown)),
            finding_keys=project.finding_keys,
        )
    return mapping
