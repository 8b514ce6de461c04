"""Where the data folders (mappings/, policies/, config/) are, however Varco was installed.

From a checkout or an editable install they sit beside the ``broker`` package; a wheel
install puts them under ``<prefix>/share/varco``. ``VARCO_HOME`` overrides both.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DATA_FOLDERS = ("mappings", "policies", "config")


def project_root() -> Path:
    """The folder that holds mappings/, policies/ and config/."""
    env = os.environ.get("VARCO_HOME")
    candidates = [Path(env)] if env else []
    candidates += [
        Path(__file__).resolve().parent.parent,
        Path(sys.prefix) / "share" / "varco",
    ]
    for candidate in candidates:
        if all((candidate / name).is_dir() for name in DATA_FOLDERS):
            return candidate
    raise FileNotFoundError(
        "cannot find Varco's mappings/, policies/ and config/ folders; set VARCO_HOME")


def project_dir(name: str) -> Path:
    """One of the data folders, e.g. ``project_dir("policies")``."""
    if name not in DATA_FOLDERS:
        raise ValueError(f"unknown data folder {name!r}")
    return project_root() / name
