"""NIR at rest: AES-GCM encryption, and a keyed hash (HMAC-SHA256) for exact lookup.

One 32-byte master key (``GUICHET_NIR_KEY``, base64, or generated once in the data folder)
derives two independent subkeys, so the lookup hash reveals nothing about the ciphertext key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from api.settings import Settings

_NONCE_BYTES = 12


class NirCipher:
    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != 32:
            raise ValueError("the NIR key must be 32 bytes")
        self._aead = AESGCM(hmac.digest(master_key, b"guichet:nir:encrypt", hashlib.sha256))
        self._hash_key = hmac.digest(master_key, b"guichet:nir:lookup", hashlib.sha256)

    def encrypt(self, nir: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, nir.encode(), b"nir")

    def decrypt(self, blob: bytes) -> str:
        return self._aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], b"nir").decode()

    def derived_key(self, purpose: str) -> bytes:
        """A key for another keyed hash (login limits…), independent of the NIR keys."""
        return hmac.digest(self._hash_key, b"guichet:derived:" + purpose.encode(), hashlib.sha256)

    def lookup_hash(self, nir: str) -> str:
        return hmac.new(self._hash_key, nir.encode(), hashlib.sha256).hexdigest()

    @classmethod
    def from_settings(cls, settings: Settings) -> NirCipher:
        if settings.nir_key is not None:
            return cls(base64.b64decode(settings.nir_key.get_secret_value()))
        return cls(_local_key(settings.data_dir / "nir.key"))


def _local_key(path: Path) -> bytes:
    """Generated once; losing it makes every stored NIR unreadable: back it up with the DB."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another worker created it first
            pass
        else:
            with os.fdopen(fd, "w") as out:
                out.write(base64.b64encode(os.urandom(32)).decode())
    return base64.b64decode(path.read_text().strip())
