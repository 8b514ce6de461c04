"""The trusted IdPs: metadata files in folders, loaded at start and reloaded on change.

A file may hold one ``md:EntityDescriptor`` or an ``md:EntitiesDescriptor`` (the form
the SPID registry publishes). An IdP is trusted only while its metadata is within
``validUntil`` and has at least one signing certificate that is valid now and of an
acceptable key; an IdP without one is left out (and the reason logged), so an
expired certificate can never verify a login. ``refresh()`` re-reads the folder when
any file changed, so operators replace metadata without a restart. Every login asks
the registry several times, so the files are stat'ed at most once per ``min_interval``
seconds (the SPID/CIE providers use one second); the folders themselves are stat'ed on
every call, so a file added, removed or replaced by rename is seen at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path

from cryptography import x509
from lxml import etree

from providers.saml.keys import cert_from_b64, cert_problems
from providers.saml.xmlutil import NS, XmlError, parse, parse_time, q, text_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IdpInfo:
    """One trusted IdP as its metadata describes it."""

    entity_id: str
    name: str
    sso: dict[str, str]  # binding -> location
    slo: dict[str, str]
    certs: tuple[x509.Certificate, ...]
    valid_until: datetime | None = None
    logo: str | None = None
    source: str = ""
    attributes: tuple[str, ...] = field(default_factory=tuple)

    @cached_property
    def cert_windows(self) -> tuple[tuple[datetime, datetime], ...]:
        """Each certificate's validity, read once: the registry checks it on every login.

        The rest of a certificate's checks (key type and size) do not change with time
        and were made when the metadata was loaded.
        """
        return tuple((c.not_valid_before_utc, c.not_valid_after_utc) for c in self.certs)


@dataclass(frozen=True)
class Rejected:
    entity_id: str
    source: str
    reason: str


class IdpRegistry:
    """IdPs from a metadata folder, checked against the injected clock."""

    def __init__(self, folders: Path | list[Path], now: Callable[[], datetime], *,
                 pattern: str = "*.xml", min_interval: float = 0.0):
        self.folders = [Path(f) for f in (folders if isinstance(folders, list) else [folders])]
        self._now = now
        self._pattern = pattern
        self._min_interval = min_interval
        # Monotonic time of the last folder scan: a rate limit on file-system reads, not a
        # fact of the login, so it is not the injected (possibly frozen) clock.
        self._scanned_at = float("-inf")
        self._folders_stamp: tuple[int | None, ...] = ()
        self._lock = threading.Lock()
        self._stamp: tuple[tuple[str, float, int], ...] = ()
        self._idps: dict[str, IdpInfo] = {}
        self.rejected: tuple[Rejected, ...] = ()
        self.refresh(force=True)

    def _folder_times(self) -> tuple[int | None, ...]:
        """Each folder's mtime: it changes when a file is added, removed or renamed."""
        times: list[int | None] = []
        for folder in self.folders:
            try:
                times.append(folder.stat().st_mtime_ns)
            except OSError:
                times.append(None)
        return tuple(times)

    def _scan(self) -> tuple[tuple[str, float, int], ...]:
        found = []
        for folder in self.folders:
            if folder.is_dir():
                for p in folder.glob(self._pattern):
                    try:
                        st = p.stat()
                    except OSError:  # removed between listing and stat
                        continue
                    found.append((str(p), st.st_mtime, st.st_size))
        return tuple(sorted(found))

    def refresh(self, force: bool = False) -> bool:
        """Reload if any metadata file changed; True when a reload happened.

        Without ``force``, at most one folder scan per ``min_interval`` seconds.
        """
        at = time.monotonic()
        folders = self._folder_times()
        if (not force and folders == self._folders_stamp
                and at - self._scanned_at < self._min_interval):
            return False
        self._scanned_at, self._folders_stamp = at, folders
        stamp = self._scan()
        if not force and stamp == self._stamp:
            return False
        with self._lock:
            idps: dict[str, IdpInfo] = {}
            rejected: list[Rejected] = []
            for path_s, _mtime, _size in stamp:
                path = Path(path_s)
                try:
                    root = parse(path.read_bytes())
                except (OSError, XmlError) as exc:
                    rejected.append(Rejected("?", path.name, str(exc)))
                    continue
                for info, problem in _entities(root, path.name, self._now()):
                    if isinstance(info, IdpInfo):
                        idps[info.entity_id] = info
                    else:
                        rejected.append(Rejected(info, path.name, problem or "refused"))
                        log.warning("IdP metadata refused: %s in %s: %s", info, path.name,
                                    problem)
            self._idps = idps
            self.rejected = tuple(rejected)
            self._stamp = stamp
        return True

    def get(self, entity_id: str) -> IdpInfo | None:
        """The IdP if trusted now (metadata and certificates re-checked against the clock)."""
        self.refresh()
        return self._trusted(entity_id)

    def has(self, entity_id: str) -> bool:
        """Whether ``entity_id`` is a trusted IdP now (what ``get`` would return)."""
        return self.get(entity_id) is not None

    def _trusted(self, entity_id: str) -> IdpInfo | None:
        info = self._idps.get(entity_id)
        if info is None:
            return None
        now = self._now()
        if info.valid_until is not None and now >= info.valid_until:
            return None
        certs = tuple(cert for cert, (start, end) in zip(info.certs, info.cert_windows, strict=True)
                      if start <= now < end)
        if not certs:
            return None
        return info if certs == info.certs else _with_certs(info, certs)

    def all(self) -> list[IdpInfo]:
        self.refresh()
        found = [self._trusted(eid) for eid in sorted(self._idps)]
        return sorted((i for i in found if i is not None), key=lambda i: i.name.lower())


def _with_certs(info: IdpInfo, certs: tuple[x509.Certificate, ...]) -> IdpInfo:
    from dataclasses import replace

    return replace(info, certs=certs)


def _entities(root: etree._Element, source: str, now: datetime
              ) -> Iterator[tuple[IdpInfo | str, str | None]]:
    """Yield ``(IdpInfo, None)`` for each usable IdP in a metadata tree and
    ``(entityID, problem)`` for each refused one.

    A bad file is one refusal, never an exception: raised from ``refresh`` it would make
    every ``get`` fail, so one broken federation feed would stop every login.
    """
    try:
        outer_until = _valid_until(root)
    except XmlError as exc:
        yield root.get("entityID") or "?", f"validUntil: {exc}"
        return
    if root.tag == q("md", "EntitiesDescriptor"):
        descriptors = root.iterfind(f".//{q('md', 'EntityDescriptor')}")
    elif root.tag == q("md", "EntityDescriptor"):
        descriptors = iter([root])
    else:
        yield "?", "not SAML metadata"
        return
    for ed in descriptors:
        eid = ed.get("entityID") or "?"
        idp = ed.find(q("md", "IDPSSODescriptor"))
        if idp is None:
            continue
        try:
            until = min((t for t in (outer_until, _valid_until(ed)) if t), default=None)
        except XmlError as exc:
            yield eid, f"validUntil: {exc}"
            continue
        if until is not None and now >= until:
            yield eid, f"metadata expired (validUntil {until:%Y-%m-%d})"
            continue
        certs, problems = [], []
        for kd in idp.iterfind(q("md", "KeyDescriptor")):
            if kd.get("use", "signing") != "signing":
                continue
            for node in kd.iterfind(".//ds:X509Certificate", namespaces=NS):
                try:
                    cert = cert_from_b64(node.text or "")
                except ValueError:
                    problems.append("unreadable certificate")
                    continue
                bad = cert_problems(cert, now)
                if bad:
                    problems.extend(bad)
                else:
                    certs.append(cert)
        if not certs:
            yield eid, "no usable signing certificate: " + "; ".join(problems or ["none"])
            continue
        sso = {s.get("Binding", ""): s.get("Location", "")
               for s in idp.iterfind(q("md", "SingleSignOnService"))}
        slo = {s.get("Binding", ""): s.get("Location", "")
               for s in idp.iterfind(q("md", "SingleLogoutService"))}
        if not sso:
            yield eid, "no SingleSignOnService"
            continue
        name = (text_of(ed.find(f"{q('md', 'Organization')}/{q('md', 'OrganizationDisplayName')}"))
                or text_of(ed.find(f"{q('md', 'Organization')}/{q('md', 'OrganizationName')}"))
                or eid)
        attrs = tuple(a.get("Name", "") for a in idp.iterfind(q("saml", "Attribute")))
        yield IdpInfo(entity_id=eid, name=name, sso=sso, slo=slo, certs=tuple(certs),
                      valid_until=until, source=source, attributes=attrs), None


def _valid_until(elem: etree._Element) -> datetime | None:
    value = elem.get("validUntil")
    return parse_time(value) if value else None
