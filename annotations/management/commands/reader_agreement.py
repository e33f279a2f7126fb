"""``manage.py reader_agreement --vindr``: inter-reader agreement on the VinDr-CXR box list.

Reads ``vinbigdata-train.csv.gz`` where the torchxrayvision wheel put it (the package is never
imported), compares the three radiologists of every image pairwise and prints, per finding class,
the images any reader marked, the boxes, the box F1 at the IoU threshold (micro over reader pairs)
and Cohen's kappa of image-level presence (pooled over reader pairs, both orders); the
computation lives in :mod:`annotations.agreement`. No database is touched.
"""

import csv
import math
import time
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from annotations.agreement import (
    VINDR_CLASSES,
    ClassAgreement,
    MultiReaderAgreement,
    default_vindr_path,
    multi_reader_agreement,
    read_vindr,
)

CSV_FIELDS = (
    "finding",
    "images",
    "boxes",
    "matched",
    "box_f1",
    "kappa",
    "kappa_reader_pairs",
    "observed_agreement",
)


def _f1(row: ClassAgreement) -> str:
    # A class no reader drew has nothing to match: F1 1.0 by convention, but "n/a" reads better.
    return f"{row.box.f1:.3f}" if row.boxes else "n/a"


def _kappa(value: float) -> str:
    return "NaN" if math.isnan(value) else f"{value:.3f}"


def _csv_row(row: ClassAgreement) -> dict[str, Any]:
    return {
        "finding": row.finding,
        "images": row.images,
        "boxes": row.boxes,
        "matched": row.box.matched,
        "box_f1": _f1(row),
        "kappa": _kappa(row.kappa.kappa),
        "kappa_reader_pairs": row.kappa.cases,
        "observed_agreement": _kappa(row.kappa.observed_agreement),
    }


class Command(BaseCommand):
    help = (
        "Inter-reader agreement of the VinDr-CXR radiologists (vinbigdata-train.csv.gz from the "
        "torchxrayvision wheel): box F1 and Cohen's kappa per finding, over every reader pair."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--vindr", action="store_true", help="use the VinDr-CXR box list")
        parser.add_argument("--limit", type=int, help="only the first N images of the file")
        parser.add_argument("--iou", type=float, default=0.5, help="IoU to match boxes (0.5)")
        parser.add_argument("--csv", type=Path, help="also write the table to this CSV file")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["vindr"]:
            raise CommandError("nothing to compare: pass --vindr")
        limit, iou = options["limit"], options["iou"]
        if limit is not None and limit < 1:
            raise CommandError("--limit must be at least 1")
        if not 0.0 < iou <= 1.0:
            raise CommandError("--iou must be in (0, 1]")
        started = time.perf_counter()
        try:
            path = default_vindr_path()
        except FileNotFoundError as exc:
            raise CommandError(str(exc)) from exc
        if not path.is_file():
            raise CommandError(f"{path} is missing: reinstall the torchxrayvision wheel")
        try:
            reads = read_vindr(path, limit=limit)
        except (OSError, ValueError, KeyError) as exc:
            raise CommandError(f"{path}: cannot read the box list ({exc})") from exc
        result = multi_reader_agreement(reads, iou_threshold=iou, classes=VINDR_CLASSES)
        self._print(result, path, iou, time.perf_counter() - started)
        if options["csv"]:
            self._write_csv(result, options["csv"])

    def _print(self, result: MultiReaderAgreement, path: Path, iou: float, seconds: float) -> None:
        write = self.stdout.write
        write(
            f"VinDr-CXR ({path.name}): {result.images} images, {result.reader_pairs} reader "
            f"pairs, boxes matched within class at IoU >= {iou:g}"
        )
        write(f"{'finding':<22}{'images':>8}{'boxes':>8}{'box F1':>9}{'kappa':>9}")
        for row in [*result.per_class.values(), result.any_finding]:
            write(
                f"{row.finding:<22}{row.images:>8}{row.boxes:>8}{_f1(row):>9}"
                f"{_kappa(row.kappa.kappa):>9}"
            )
        write(
            f"{'mean over classes':<38}{_kappa(result.mean_box_f1):>9}"
            f"{_kappa(result.mean_kappa):>9}"
        )
        write(
            "box F1: micro over reader pairs (2 x matches / boxes of both readers); kappa: "
            "Cohen's, image-level presence, pooled over reader pairs in both orders (= Fleiss' "
            "kappa with three readers per image); 'any finding': box F1 of all classes, kappa of "
            f"abnormal vs normal. {seconds:.1f} s."
        )

    def _write_csv(self, result: MultiReaderAgreement, path: Path) -> None:
        try:
            with path.open("w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
                writer.writeheader()
                for row in [*result.per_class.values(), result.any_finding]:
                    writer.writerow(_csv_row(row))
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror}") from exc
        self.stdout.write(f"Wrote {path}.")
