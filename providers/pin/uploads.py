"""Uploaded conversion documents: type by magic bytes, size limit, private random file names.

Files go to ``data_dir/pin_uploads`` (mode 0700, files 0600) under 128-bit random names;
the original file name is never used (no path tricks, no personal data in names). No
route serves that folder: only the back-office admin API reads a file, by conversion id.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from starlette.datastructures import UploadFile

KINDS = {  # magic bytes -> (extension, media type)
    b"%PDF-": ("pdf", "application/pdf"),
    b"\x89PNG\r\n\x1a\n": ("png", "image/png"),
    b"\xff\xd8\xff": ("jpg", "image/jpeg"),
}
FOLDER = "pin_uploads"


class UploadRejected(Exception):
    """``reason``: missing, too_large, wrong_type."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def media_type(data: bytes) -> tuple[str, str] | None:
    for magic, kind in KINDS.items():
        if data.startswith(magic):
            return kind
    return None


async def read_checked(upload: object, max_bytes: int) -> tuple[bytes, str, str]:
    """The file's bytes, extension and media type; ``UploadRejected`` otherwise."""
    if not isinstance(upload, UploadFile):
        raise UploadRejected("missing")
    data = await upload.read(max_bytes + 1)
    if not data:
        raise UploadRejected("missing")
    if len(data) > max_bytes:
        raise UploadRejected("too_large")
    kind = media_type(data)
    if kind is None:
        raise UploadRejected("wrong_type")
    return data, kind[0], kind[1]


def store_file(data_dir: Path, data: bytes, extension: str) -> str:
    """Write privately under a random name; returns the name (relative to the folder)."""
    folder = Path(data_dir) / FOLDER
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = f"{secrets.token_hex(16)}.{extension}"
    fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return name


def read_file(data_dir: Path, name: str) -> bytes:
    """A stored file by the name the database holds (never a path from a request)."""
    if "/" in name or "\\" in name or name.startswith("."):
        raise FileNotFoundError(name)
    return (Path(data_dir) / FOLDER / name).read_bytes()
