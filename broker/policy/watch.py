"""Hot reload: a background thread polls the policy folder's files and reloads on change.

Polling (about once a second) instead of inotify keeps it portable and dependency-free;
no request ever reads a policy file. A good change is in force for the next login; a
broken one leaves the last good policy in force, and the reason goes to the log and to
the audit trail (``policy.reload`` entries, ``ok: false`` with the problems).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Protocol

from broker.policy.engine import PolicyHolder

log = logging.getLogger("varco.policy")
Signature = tuple[tuple[str, int, int], ...]
MAX_AUDITED_PROBLEMS = 50


def folder_signature(directory: Path) -> Signature:
    """Name, mtime and size of every policy file (``*.yaml``/``*.yml``, not tests)."""
    out = []
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        try:
            st = path.stat()
        except OSError:
            continue
        out.append((path.name, st.st_mtime_ns, st.st_size))
    return tuple(out)


class AuditRecord(Protocol):
    """Where reloads are written: ``AuditLog.record``."""

    def __call__(self, kind: str, **fields: Any) -> None: ...


class PolicyWatcher:
    """Reloads ``holder`` when its folder changes; ``audit(kind, **fields)`` records it."""

    def __init__(self, holder: PolicyHolder, audit: AuditRecord,
                 interval: float = 1.0):
        self.holder = holder
        self.audit = audit
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen = folder_signature(holder.directory)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="policy-watcher",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception:  # the watcher must outlive any surprise
                log.exception("policy watcher: unexpected error")

    def check(self) -> bool | None:
        """Reload if the folder changed: True (reloaded), False (refused), None (no change)."""
        now = folder_signature(self.holder.directory)
        if now == self._seen:
            return None
        self._seen = now
        problems = self.holder.reload()
        if problems:
            log.error("policy reload refused, the last good policy stays: %s",
                      "; ".join(problems))
            self.audit("policy.reload", ok=False, directory=str(self.holder.directory),
                       problems=problems[:MAX_AUDITED_PROBLEMS])
            return False
        rules = len(self.holder.engine.rules)
        log.info("policy reloaded: %d rules from %s", rules, self.holder.directory)
        self.audit("policy.reload", ok=True, directory=str(self.holder.directory),
                   rules=rules, files=[name for name, _, _ in now])
        return True
