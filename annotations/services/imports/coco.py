"""Import of box labels from a COCO detection file, matched to images already ingested.

Accepted as CVAT ("COCO 1.0"), Label Studio ("COCO") and MedLoop (``coco`` export) write it:
``images`` (``id``, ``file_name``, ``width``, ``height``), ``categories`` (``id``, ``name``) and
``annotations`` (``id``, ``image_id``, ``category_id``, ``bbox`` [x, y, width, height] in
pixels of that image). Ids may start at 0 (Label Studio) or 1 (CVAT, MedLoop); extra keys
(CVAT's ``attributes``, ``segmentation``, ``area``, ``iscrowd``; MedLoop's ``case_id``) are
ignored; a polygon or mask annotation is imported as its ``bbox``.

Images are matched to stored instances and categories to findings as :mod:`.matching` says;
boxes are scaled from the COCO image's size to the stored image's columns and rows (exports
are often resized); each matched case gets one submitted annotation as :mod:`.cases` says.
Images that match nothing are reported by file name; when none match, the import is refused.
The import is one transaction: any error and nothing is written. A dry run returns the same
report and writes nothing."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.http import HttpRequest

from annotations.models import Project
from annotations.services import annotate
from annotations.services.errors import InvalidInput
from annotations.services.imports import cases
from annotations.services.imports.matching import (
    RULES,
    CocoId,
    ImageMatch,
    map_categories,
    match_images,
)
from annotations.services.ingest import TooLarge

DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_PROBLEMS = 20
# Boxes may overshoot the image edge by this much (pixels of the COCO image): float noise of
# tools that round coordinates or store them as percentages of the image.
EDGE_TOLERANCE = 0.05


def max_file_bytes() -> int:
    """The largest COCO file accepted (``MEDLOOP_MAX_LABEL_IMPORT_BYTES``, default 64 MiB)."""
    return int(getattr(settings, "MEDLOOP_MAX_LABEL_IMPORT_BYTES", DEFAULT_MAX_FILE_BYTES))


# --- the file --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CocoImage:
    id: CocoId
    file_name: str
    width: float
    height: float
    frame: int | None  # MedLoop's export names the frame of a multi-frame image

    @property
    def label(self) -> str:
        return f"image {self.id!r} ({self.file_name})"


@dataclass(frozen=True)
class CocoBox:
    """One annotation's box in pixels of its COCO image: left, top, width, height."""

    image_id: CocoId
    category_id: CocoId
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class CocoFile:
    images: dict[CocoId, CocoImage]
    categories: dict[CocoId, str]
    boxes: list[CocoBox]


class _Problems:
    """Collects what is wrong with a file, so one answer names (the first few of) them all."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.count = 0

    def add(self, message: str) -> None:
        self.count += 1
        if len(self.messages) < MAX_PROBLEMS:
            self.messages.append(message)

    def raise_if_any(self) -> None:
        if not self.count:
            return
        more = f" (and {self.count - len(self.messages)} more)" if self.count > MAX_PROBLEMS else ""
        raise InvalidInput(
            f"The COCO file has {self.count} problem{'s' if self.count > 1 else ''}: "
            + "; ".join(self.messages)
            + more
            + ".",
            problems=self.messages,
        )


def _shown(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _coco_id(value: object) -> CocoId | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) or (isinstance(value, str) and value.strip()):
        return value
    return None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _load(data: bytes) -> dict[str, list[Any]]:
    def refuse_constant(name: str) -> None:
        raise ValueError(f"{name} is not a JSON number")

    try:
        document = json.loads(data, parse_constant=refuse_constant)
    except UnicodeDecodeError as exc:
        raise InvalidInput("The COCO file is not UTF-8 text.") from exc
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"The COCO file is not JSON (line {exc.lineno} column {exc.colno}: {exc.msg})."
        ) from exc
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(f"The COCO file is not usable JSON ({exc}).") from exc
    if not isinstance(document, dict):
        raise InvalidInput(
            "The COCO file must be a JSON object with 'images', 'annotations' and 'categories'."
        )
    missing = [key for key in ("images", "annotations", "categories") if key not in document]
    if missing:
        raise InvalidInput(
            f"The COCO file has no {' and no '.join(repr(k) for k in missing)}; a COCO "
            "detection file has 'images', 'annotations' and 'categories'."
        )
    for key in ("images", "annotations", "categories"):
        if not isinstance(document[key], list):
            raise InvalidInput(
                f"'{key}' in the COCO file must be a list, not {_shown(document[key])}."
            )
    return document


def _images(raw: list[Any], problems: _Problems) -> dict[CocoId, CocoImage]:
    images: dict[CocoId, CocoImage] = {}
    for n, item in enumerate(raw):
        if not isinstance(item, dict):
            problems.add(f"images[{n}] is not an object")
            continue
        image_id = _coco_id(item.get("id"))
        if image_id is None:
            problems.add(
                f"images[{n}]: id must be an integer or a text, got {_shown(item.get('id'))}"
            )
            continue
        if image_id in images:
            problems.add(f"images[{n}]: id {image_id!r} is used by another image")
            continue
        file_name = item.get("file_name")
        if not isinstance(file_name, str) or not file_name.strip():
            problems.add(f"image {image_id!r}: file_name is missing")
            continue
        width, height = _number(item.get("width")), _number(item.get("height"))
        if width is None or height is None or width <= 0 or height <= 0:
            problems.add(
                f"image {image_id!r} ({file_name}): width and height must be positive numbers, "
                f"got {_shown(item.get('width'))} x {_shown(item.get('height'))}"
            )
            continue
        frame = item.get("frame")
        images[image_id] = CocoImage(
            id=image_id,
            file_name=file_name.strip(),
            width=width,
            height=height,
            frame=frame
            if isinstance(frame, int) and not isinstance(frame, bool) and frame >= 1
            else None,
        )
    return images


def _categories(raw: list[Any], problems: _Problems) -> dict[CocoId, str]:
    categories: dict[CocoId, str] = {}
    for n, item in enumerate(raw):
        if not isinstance(item, dict):
            problems.add(f"categories[{n}] is not an object")
            continue
        category_id = _coco_id(item.get("id"))
        name = item.get("name")
        if category_id is None:
            problems.add(
                f"categories[{n}]: id must be an integer or a text, got {_shown(item.get('id'))}"
            )
        elif category_id in categories:
            problems.add(f"categories[{n}]: id {category_id!r} is used by another category")
        elif not isinstance(name, str) or not name.strip():
            problems.add(f"category {category_id!r}: name is missing")
        else:
            categories[category_id] = name.strip()
    return categories


def _box(
    item: dict[str, Any],
    where: str,
    images: dict[CocoId, CocoImage],
    categories: dict[CocoId, str],
    problems: _Problems,
) -> CocoBox | None:
    for key in ("image_id", "category_id", "bbox"):
        if key not in item:
            problems.add(f"{where}: {key} is missing")
            return None
    image = images.get(item["image_id"]) if _coco_id(item["image_id"]) is not None else None
    if image is None:
        problems.add(f"{where}: image_id {_shown(item['image_id'])} is not an image of the file")
        return None
    where = f"{where} on {image.label}"
    category_id = _coco_id(item["category_id"])
    if category_id is None or category_id not in categories:
        problems.add(
            f"{where}: category_id {_shown(item['category_id'])} is not a category of the file"
        )
        return None
    bbox = item["bbox"]
    numbers = [_number(v) for v in bbox] if isinstance(bbox, list) and len(bbox) == 4 else []
    if len(numbers) != 4 or any(v is None for v in numbers):
        problems.add(f"{where}: bbox must be 4 numbers [x, y, width, height], got {_shown(bbox)}")
        return None
    x, y, width, height = (float(v or 0.0) for v in numbers)
    if width <= 0 or height <= 0:
        problems.add(f"{where}: bbox width and height must be positive, got {_shown(bbox)}")
        return None
    if (
        x < -EDGE_TOLERANCE
        or y < -EDGE_TOLERANCE
        or x >= image.width
        or y >= image.height
        or x + width > image.width + EDGE_TOLERANCE
        or y + height > image.height + EDGE_TOLERANCE
    ):
        problems.add(
            f"{where}: bbox {_shown(bbox)} lies outside the {image.width:g}x{image.height:g} image"
        )
        return None
    return CocoBox(image.id, category_id, x, y, width, height)


def parse_coco(data: bytes) -> CocoFile:
    """Read and check a COCO detection file. Raises InvalidInput naming what is wrong (not
    JSON, missing keys, and per image, category or annotation: bad ids, bbox not 4 numbers,
    non-positive size, unknown image_id or category_id, a box outside its image), with up to
    MAX_PROBLEMS messages in ``problems``."""
    document = _load(data)
    problems = _Problems()
    images = _images(document["images"], problems)
    categories = _categories(document["categories"], problems)
    boxes = []
    for n, item in enumerate(document["annotations"]):
        if not isinstance(item, dict):
            problems.add(f"annotations[{n}] is not an object")
            continue
        ann_id = _coco_id(item.get("id"))
        where = f"annotation {ann_id!r}" if ann_id is not None else f"annotations[{n}]"
        box = _box(item, where, images, categories, problems)
        if box is not None:
            boxes.append(box)
    problems.raise_if_any()
    if not images:
        raise InvalidInput("The COCO file lists no images.")
    return CocoFile(images=images, categories=categories, boxes=boxes)


def parse_category_map(raw: str | None) -> dict[str, str] | None:
    """A category map given as JSON text ``{"coco name": "finding key"}``; None when empty."""
    if raw is None or not raw.strip():
        return None
    try:
        mapping = json.loads(raw)
    except ValueError as exc:
        raise InvalidInput(f"category_map is not JSON ({exc}).") from exc
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
    ):
        raise InvalidInput('category_map must be a JSON object {"coco name": "finding key"}.')
    return mapping


# --- the import ------------------------------------------------------------------------------


def _resized(image: CocoImage, match: ImageMatch) -> bool:
    return (image.width, image.height) != (match.instance.columns, match.instance.rows)


def _scaled(box: CocoBox, image: CocoImage, match: ImageMatch, finding: str) -> annotate.BoxInput:
    """``box`` in pixels of the stored image (exports are often resized), kept inside it."""
    instance = match.instance
    sx, sy = instance.columns / image.width, instance.rows / image.height
    x = min(max(box.x * sx, 0.0), float(instance.columns))
    y = min(max(box.y * sy, 0.0), float(instance.rows))
    return annotate.BoxInput(
        instance_id=instance.pk,
        frame=match.frame,
        x=x,
        y=y,
        width=min(box.width * sx, instance.columns - x),
        height=min(box.height * sy, instance.rows - y),
        finding=finding,
    )


def _plans(
    project: Project,
    coco: CocoFile,
    matches: dict[CocoId, ImageMatch],
    finding_of: dict[str, str],
) -> dict[int, cases.CasePlan]:
    locked = cases.lock_cases(project, {m.instance.series.study.case.pk for m in matches.values()})
    plans: dict[int, cases.CasePlan] = {}
    for image_id, match in matches.items():
        case = locked[match.instance.series.study.case.pk]
        plan = plans.setdefault(case.pk, cases.CasePlan(case))
        image = coco.images[image_id]
        plan.file_names.append(image.file_name)
        if match.instance.quarantined and not plan.quarantined:
            plan.quarantined = image.file_name
    for box in coco.boxes:
        box_match = matches.get(box.image_id)
        if box_match is not None:
            finding = finding_of[coco.categories[box.category_id]]
            plan = plans[box_match.instance.series.study.case.pk]
            plan.boxes.append(_scaled(box, coco.images[box.image_id], box_match, finding))
    return dict(sorted(plans.items()))


def import_coco(
    *,
    project: Project,
    data: bytes,
    actor: User,
    category_map: Mapping[str, str] | None = None,
    dry_run: bool = False,
    request: HttpRequest | None = None,
) -> cases.ImportReport:
    """Import the boxes of a COCO file into ``project`` as submitted annotations by ``actor``
    (see the module's docstring for what is matched, written and skipped); with ``dry_run``
    nothing is written. Returns the report.

    Raises TooLarge (413) over :func:`max_file_bytes`, InvalidInput for a malformed file, a
    category that matches no finding (naming it and the project's findings), or a file none
    of whose images matches; nothing is written then."""
    if len(data) > max_file_bytes():
        raise TooLarge(f"The COCO file is {len(data)} bytes; the limit is {max_file_bytes()}.")
    coco = parse_coco(data)
    used = {coco.categories[box.category_id] for box in coco.boxes}
    finding_of = map_categories(project, sorted(used), category_map)
    names = {image.id: (image.file_name, image.frame) for image in coco.images.values()}
    with transaction.atomic():
        matches, unmatched = match_images(project, names)
        if not matches:
            examples = ", ".join(u.file_name for u in list(unmatched.values())[:5])
            raise InvalidInput(
                f"None of the {len(coco.images)} images of the COCO file matches an image "
                f"ingested into this project (by file name, SOP Instance UID or original SOP "
                f"Instance UID); for example {examples}.",
                unmatched=[asdict(u) for u in list(unmatched.values())[:MAX_PROBLEMS]],
            )
        plans = _plans(project, coco, matches, finding_of)
        report = cases.ImportReport(
            format="coco",
            dry_run=dry_run,
            images=len(coco.images),
            matched=len(matches),
            matched_by={rule: 0 for rule in RULES}
            | dict(Counter(m.rule for m in matches.values())),
            scaled_images=len([i for i, m in matches.items() if _resized(coco.images[i], m)]),
            categories=dict(sorted(finding_of.items())),
            unmatched=list(unmatched.values()),
            boxes_not_imported=sum(1 for box in coco.boxes if box.image_id not in matches),
        )
        cases.write_labels(
            project=project, plans=plans, report=report, actor=actor, request=request
        )
    return report
