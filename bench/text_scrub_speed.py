"""Clinical text scrubbing time against text length: the regex e-mail search it replaced
(quadratic on a long run of word characters with no "@") and the linear one it uses now.

Prints, per input kind and length, the median and spread (min-max) of --repeats runs of the
whole scrubber with each e-mail step, their ratio, and whether both outputs are equal (they
must be: the script exits non-zero otherwise). Inputs are built from a fixed seed (--seed) so
every run scrubs the same texts. Writes bench/results/text_scrub_speed.json.

    python bench/text_scrub_speed.py            # lengths 15000, 30000, 60000; 3 repeats
    python bench/text_scrub_speed.py --quick    # lengths 5000, 10000; 1 repeat
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from annotations.dicom import text_scrub


def inputs(length: int, seed: int) -> dict[str, str]:
    rng = random.Random(seed)
    prose = (
        "Patient seen by Dr Smith on 12/03/2024, MRN 1234567, tel 617-555-0100, "
        "e-mail j.smith@example.org. Cough for two weeks; 92 yo; lives at 12 Elm Street. "
    )
    words = "".join(rng.choice("abcdefghij0123456789_.") for _ in range(length))
    return {
        "word run, no @": ("a" * length),
        "digits, no @": ("7" * length),
        "random word characters": words,
        "clinical prose": (prose * (length // len(prose) + 1))[:length],
    }


def scrub(text: str, quadratic: bool) -> str:
    if not quadratic:
        return text_scrub.scrub_clinical_text(text, secret="bench-key", patient_key="p1")
    linear = text_scrub._replace_emails
    old = re.compile(text_scrub.EMAIL_PATTERN)
    text_scrub._replace_emails = lambda t, replacement="[EMAIL]": old.sub(replacement, t)  # type: ignore[assignment]
    try:
        return text_scrub.scrub_clinical_text(text, secret="bench-key", patient_key="p1")
    finally:
        text_scrub._replace_emails = linear  # type: ignore[assignment]


def timed(text: str, quadratic: bool, repeats: int) -> tuple[list[float], str]:
    times, out = [], ""
    for _ in range(repeats):
        start = time.perf_counter()
        out = scrub(text, quadratic)
        times.append(time.perf_counter() - start)
    return times, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="15000,30000,60000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20261205)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    lengths = [5000, 10000] if args.quick else [int(n) for n in args.lengths.split(",")]
    repeats = 1 if args.quick else args.repeats
    rows, all_equal = [], True
    print(f"seed {args.seed}, {repeats} repeat(s); seconds: median (min-max)")
    print(
        f"{'input':24} {'chars':>7} {'regex e-mail':>22} {'linear e-mail':>22} {'ratio':>7} equal"
    )
    for length in lengths:
        for kind, text in inputs(length, args.seed).items():
            old_times, old_out = timed(text, True, repeats)
            new_times, new_out = timed(text, False, repeats)
            equal = old_out == new_out
            all_equal &= equal
            old_med, new_med = statistics.median(old_times), statistics.median(new_times)
            ratio = old_med / new_med if new_med else float("inf")
            rows.append(
                {
                    "input": kind,
                    "chars": length,
                    "regex_seconds": old_times,
                    "linear_seconds": new_times,
                    "ratio": ratio,
                    "equal": equal,
                }
            )
            print(
                f"{kind:24} {length:>7} "
                f"{old_med:>8.3f} ({min(old_times):.3f}-{max(old_times):.3f}) "
                f"{new_med:>8.3f} ({min(new_times):.3f}-{max(new_times):.3f}) "
                f"{ratio:>6.1f}x {equal}"
            )
    out = Path(__file__).resolve().parent / "results" / "text_scrub_speed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"seed": args.seed, "repeats": repeats, "rows": rows}, indent=2))
    return 0 if all_equal else 1


if __name__ == "__main__":
    raise SystemExit(main())
