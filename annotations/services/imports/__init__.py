"""Imports of labels made elsewhere, to bootstrap a project whose images are already ingested.

One format so far: COCO detection JSON (:mod:`.coco`) as CVAT ("COCO 1.0"), Label Studio
("COCO") and MedLoop's own export write it. Images are matched to ingested instances
(:mod:`.matching`); each matched case gets one submitted annotation by the importing user."""

from __future__ import annotations

from annotations.services.imports.cases import ImportReport
from annotations.services.imports.coco import (
    import_coco,
    max_file_bytes,
    parse_category_map,
    parse_coco,
)

__all__ = ["ImportReport", "import_coco", "max_file_bytes", "parse_category_map", "parse_coco"]
