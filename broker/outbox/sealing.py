"""Sealing of the secrets an outbox message carries (PIN halves, recovery codes).

Why sealed and not simply rendered and sent at once: the outbox exists so that a
channel that is down loses nothing, which means the message must survive in the
database until it is delivered, and "no PIN half is ever stored in clear" forbids
keeping it readable there. So the row holds the secret values only as AES-256-GCM
ciphertext, with the row id as associated data (a ciphertext copied onto another row
does not open). The key is not in the database: it comes from an environment variable
(``VARCO_OUTBOX_KEY``, 64 hex characters) or, for the embedded demo, a file created with
mode 0600 in the data folder. The worker opens the seal in memory, renders the message,
hands it to the channel, and on success overwrites the ciphertext with NULL: after
delivery the half exists only where it was sent (the letter, the phone, the mailbox).
A database copy without the key reveals no half; rows never hold them in clear.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_FILE = "outbox.key"
_NONCE = 12


class SealError(Exception):
    """A sealed payload that does not open (wrong key, tampered, or moved row)."""


class Sealer:
    """AES-256-GCM with one key; ``seal``/``open`` a dict of short strings."""

    def __init__(self, key: bytes):
        if len(key) != 32:
            raise ValueError("the outbox key must be 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def from_environment(cls, data_dir: Path, env: str = "VARCO_OUTBOX_KEY") -> Sealer:
        """The key from ``env`` (hex), else from ``data_dir/outbox.key`` (created once)."""
        value = os.environ.get(env, "").strip()
        if value:
            try:
                return cls(bytes.fromhex(value))
            except ValueError as exc:
                raise ValueError(f"{env} must hold 64 hex characters") from exc
        path = Path(data_dir) / KEY_FILE
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process made it first
            else:
                with os.fdopen(fd, "w") as fh:
                    fh.write(secrets.token_bytes(32).hex())
        return cls(bytes.fromhex(path.read_text().strip()))

    def seal(self, values: dict[str, str], aad: str) -> bytes:
        nonce = secrets.token_bytes(_NONCE)
        data = json.dumps(values, sort_keys=True).encode()
        return nonce + self._aead.encrypt(nonce, data, aad.encode())

    def open(self, blob: bytes, aad: str) -> dict[str, str]:
        try:
            data = self._aead.decrypt(blob[:_NONCE], blob[_NONCE:], aad.encode())
        except Exception as exc:  # InvalidTag and malformed input alike
            raise SealError("sealed payload does not open") from exc
        values = json.loads(data)
        return {str(k): str(v) for k, v in values.items()}
