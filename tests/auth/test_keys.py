"""The signing key ring: creation, permissions, kid, ordering, rotation, JWKS."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from api.auth.keys import KeyRing, jwk_thumbprint


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def write_pem(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def test_load_or_create_makes_a_private_folder_and_one_key(tmp_path: Path) -> None:
    folder = tmp_path / "deep" / "keys"
    ring = KeyRing.load_or_create(folder)

    pems = list(folder.glob("*.pem"))
    assert len(pems) == 1 and len(ring.keys) == 1
    assert mode(folder) == 0o700
    assert mode(pems[0]) == 0o600
    assert ring.signing_key.path == pems[0]
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_loading_again_keeps_the_same_key_and_kid(tmp_path: Path) -> None:
    first = KeyRing.load_or_create(tmp_path)
    second = KeyRing.load_or_create(tmp_path)
    assert len(second.keys) == 1
    assert second.signing_key.kid == first.signing_key.kid


def test_kid_is_the_rfc7638_thumbprint() -> None:
    # The EC public key of RFC 7517 appendix A.1, and its canonical JSON written by hand.
    x = "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4"
    y = "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"

    def number(text: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")

    public = ec.EllipticCurvePublicNumbers(number(x), number(y), ec.SECP256R1()).public_key()
    canonical = f'{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}'.encode()
    expected = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()
    assert jwk_thumbprint(public) == expected


def test_jwks_publishes_public_members_only(tmp_path: Path) -> None:
    ring = KeyRing.load_or_create(tmp_path)
    (jwk,) = ring.jwks()["keys"]
    assert set(jwk) == {"kty", "crv", "x", "y", "kid", "use", "alg"}
    assert (jwk["kty"], jwk["crv"], jwk["use"], jwk["alg"]) == ("EC", "P-256", "sig", "ES256")
    assert jwk["kid"] == ring.signing_key.kid
    numbers = ring.signing_key.public_key.public_numbers()
    assert base64.urlsafe_b64decode(jwk["x"] + "=") == numbers.x.to_bytes(32, "big")
    assert base64.urlsafe_b64decode(jwk["y"] + "=") == numbers.y.to_bytes(32, "big")


def test_newest_file_signs_and_every_key_verifies(tmp_path: Path) -> None:
    a, b, c = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    write_pem(tmp_path / "z-oldest.pem", a)
    write_pem(tmp_path / "a-newest.pem", b)
    write_pem(tmp_path / "m-middle.pem", c)
    os.utime(tmp_path / "z-oldest.pem", ns=(1_000_000_000, 1_000_000_000))
    os.utime(tmp_path / "m-middle.pem", ns=(2_000_000_000, 2_000_000_000))
    os.utime(tmp_path / "a-newest.pem", ns=(3_000_000_000, 3_000_000_000))

    ring = KeyRing.load_or_create(tmp_path)

    assert [k.path.name for k in ring.keys] == ["a-newest.pem", "m-middle.pem", "z-oldest.pem"]
    assert ring.signing_key.kid == jwk_thumbprint(b.public_key())
    for key in (a, b, c):
        found = ring.find(jwk_thumbprint(key.public_key()))
        assert found is not None
    assert ring.find("unknown") is None
    assert len(ring.jwks()["keys"]) == 3


def test_equal_mtimes_are_ordered_by_name(tmp_path: Path) -> None:
    for name in ("key-1.pem", "key-2.pem"):
        write_pem(tmp_path / name, ec.generate_private_key(ec.SECP256R1()))
        os.utime(tmp_path / name, ns=(5_000_000_000, 5_000_000_000))
    assert KeyRing.from_folder(tmp_path).signing_key.path.name == "key-2.pem"


def test_rotate_adds_a_newer_key_and_keeps_the_old(tmp_path: Path) -> None:
    before = KeyRing.load_or_create(tmp_path)
    added = KeyRing.rotate(tmp_path)
    after = KeyRing.from_folder(tmp_path)
    assert mode(added.path) == 0o600
    assert after.signing_key.kid == added.kid
    assert [k.kid for k in after.keys] == [added.kid, before.signing_key.kid]


def test_a_copied_key_is_listed_once(tmp_path: Path) -> None:
    ring = KeyRing.load_or_create(tmp_path)
    (tmp_path / "copy.pem").write_bytes(ring.signing_key.path.read_bytes())
    assert len(KeyRing.from_folder(tmp_path).keys) == 1


def test_non_p256_keys_fail_loudly(tmp_path: Path) -> None:
    write_pem(tmp_path / "rsa.pem", rsa.generate_private_key(public_exponent=65537, key_size=2048))
    with pytest.raises(ValueError, match="P-256"):
        KeyRing.load_or_create(tmp_path)
    (tmp_path / "rsa.pem").unlink()
    write_pem(tmp_path / "p384.pem", ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(ValueError, match="P-256"):
        KeyRing.load_or_create(tmp_path)


def test_empty_folder_without_create_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        KeyRing.from_folder(tmp_path)
    with pytest.raises(ValueError):
        KeyRing(())


def test_concurrent_first_start_agrees_on_one_key(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    kids: list[str] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        kids.append(KeyRing.load_or_create(folder).signing_key.kid)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(kids) == 8 and len(set(kids)) == 1
    assert len(list(folder.glob("*.pem"))) == 1
