#!/usr/bin/env python3
"""Known-answer wallet file of format version 2 (docs/WALLET.md, "File format"), computed from
the specification with Python's hashlib and the cryptography package (HKDF, AES-GCM): an
implementation independent of keystore/wallet_*.c. It writes an auto-login key wallet holding
two keys, one with a creator and one whose creator is unknown (a key first read from a
version 1 file), behind the fuzz corpus's mode byte 0:

  wallet_vectors.py OUT      (tests/keystore/corpus/fuzz_wallet_file/autologin-v2-creators)

test_wallet_format.c opens it (test_known_wallets_open) and checks every field; run this again
only after a deliberate format change.
"""
import hashlib
import struct
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = 2
WALLET_ID = bytes(range(0x30, 0x40))
GENERATION = 7
WRITE_TIME = 1767225600
SALT = bytes(range(0x40, 0x60))
STORED_KEY = bytes(range(0x60, 0x80))
NONCE = bytes(range(0xB0, 0xBC))
CONTAINER = b"default"
RECORDS = [
    # id, mek, creation, activation, state, origin, flags, tag, container, creator
    (b"\x11" * 16, bytes(range(0x80, 0xA0)), 1767225600, 1767225600, 1, 1, 1, b"v2-active",
     b"default", b"alice@db1.example.com"),
    (b"\x22" * 16, bytes(range(0xA0, 0xC0)), 1767225500, 1767225500, 2, 2, 0, b"", b"sales",
     b""),
]


def record(id_, mek, creation, activation, state, origin, flags, tag, container, creator):
    body = id_ + mek + struct.pack("<qqBBBBBB", creation, activation, state, origin, flags,
                                   len(tag), len(container), len(creator))
    body += b"\0" * 2 + tag.ljust(64, b"\0") + container.ljust(64, b"\0")
    return body + creator.ljust(64, b"\0")


def main():
    payload = struct.pack("<IB3x", len(RECORDS), len(CONTAINER)) + CONTAINER.ljust(64, b"\0")
    payload += b"".join(record(*r) for r in RECORDS)
    seal = HKDF(algorithm=hashes.SHA256(), length=32, salt=SALT,
                info=b"tdefs wallet v1 auto-login sealing key").derive(STORED_KEY)
    header = b"TDEFSWLT" + struct.pack("<HBBI", VERSION, 2, 1, 0) + WALLET_ID
    header += struct.pack("<QqB3xIII", GENERATION, WRITE_TIME, 0, 0, 0, len(payload))
    header += SALT + STORED_KEY + b"\0" * 32 + NONCE + b"\0" * 4
    assert len(header) == 176
    body = header + AESGCM(seal).encrypt(NONCE, payload, header)
    data = body + hashlib.sha256(body).digest()
    with open(sys.argv[1], "wb") as f:
        f.write(b"\0" + data)


if __name__ == "__main__":
    main()
