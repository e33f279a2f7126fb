"""pydicom quotes the values it finds wrong (an unknown character set, an invalid CS or DA) in
its warnings and log lines. An incoming file's values are identifying until de-identified, so
those quotes must never reach a log: ``quiet_pydicom`` redacts them and stops the warnings."""

from __future__ import annotations

import logging
import re
import warnings

import pydicom.config

_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


class RedactQuotedValues(logging.Filter):
    """Replace every quoted value in a record's message with '<redacted>'."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _QUOTED.sub("'<redacted>'", record.getMessage())
        record.args = ()
        return True


def quiet_pydicom() -> None:
    """Skip pydicom's optional value validation (the allow-list judges values), redact quoted
    values in what pydicom still logs, and silence its warnings (they quote values too)."""
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    logger = logging.getLogger("pydicom")
    if not any(isinstance(f, RedactQuotedValues) for f in logger.filters):
        logger.addFilter(RedactQuotedValues())
    warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom(\.|$)")
