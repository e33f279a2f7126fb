"""Upload handling that never writes an original to disk.

Django spools large uploads to temporary files; uploaded DICOM still carries identifiers, so
MedLoop keeps every upload in memory until it is de-identified. The request's total size is
checked against MEDLOOP_MAX_UPLOAD_BYTES before reading (413, see the upload view) and again
while reading, for clients whose Content-Length lies."""

from __future__ import annotations

import io
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadedfile import InMemoryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler


class MemoryOnlyUploadHandler(FileUploadHandler):
    def __init__(self, request: Any = None) -> None:
        super().__init__(request)
        self.total = 0
        self.buffer = io.BytesIO()

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.buffer = io.BytesIO()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.total += len(raw_data)
        if self.total > settings.MEDLOOP_MAX_UPLOAD_BYTES:
            raise RequestDataTooBig(f"Upload exceeds {settings.MEDLOOP_MAX_UPLOAD_BYTES} bytes.")
        self.buffer.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> InMemoryUploadedFile:
        self.buffer.seek(0)
        return InMemoryUploadedFile(
            file=self.buffer,
            field_name=self.field_name,
            name=self.file_name,
            content_type=self.content_type,
            size=file_size,
            charset=self.charset,
            content_type_extra=self.content_type_extra,
        )
