#!/usr/bin/env python3
"""Known-answer vector for the key export file (docs/WALLET.md, "Key export files"), computed
from the specification with Python's hashlib (scrypt, SHA-256) and the cryptography package
(HKDF, AES-GCM): an implementation independent of keystore/key_export.c. Prints the C arrays
that tests/keystore/test_key_export.c holds as KAT_FILE (version 1, which tdefs still reads)
and KAT_FILE_V2 (version 2, with each key's creator, the version tdefs writes); run it again
after a format change and keep the version 1 array byte for byte.

  key_export_vectors.py write OUT SECRET_FILE WALLET_ID KEY_ID:MEK_HEX...
writes a version 2 export file of chosen keys (RETIRED, container default, creator
"vectors@test") for the shell tests: a key
ID a wallet holds with other bytes, which tdekey itself never writes.
"""
import hashlib
import os
import struct
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SECRET = b"correct horse battery"
SALT = bytes(range(32))
NONCE = bytes(range(0xA0, 0xAC))
WALLET_ID = bytes(range(0x10, 0x20))
EXPORT_TIME = 1767225600
LOG2_N, R, P = 10, 1, 1
RECORDS = [
    # id, mek, creation, activation, state, origin, tag, container
    (b"\x01" * 16, bytes(range(0x20, 0x40)), 1767225600, 1767225600, 1, 1, b"2026-q1", b"default"),
    (b"\x02" * 16, bytes(range(0x40, 0x60)), 1767225700, 0, 3, 2, b"", b"sales"),
]
# Version 2: the same keys with a creator, the second unknown (a key first read from version 1).
CREATORS = [b"alice@db1.example.com", b""]


def hkdf(key, salt, info, length):
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(key)


def record(version, id_, mek, creation, activation, state, origin, tag, container, creator=b""):
    body = id_ + mek + struct.pack("<qqBBBB", creation, activation, state, origin, len(tag),
                                   len(container))
    if version == 1:
        body += b"\0" * 4
    else:
        body += bytes([len(creator)]) + b"\0" * 3
    body += tag.ljust(64, b"\0") + container.ljust(64, b"\0")
    body += hkdf(mek, id_, b"tdefs key check value v1", 16)
    if version >= 2:
        body += creator.ljust(64, b"\0")
    return body


def encode(secret, salt, nonce, wallet_id, export_time, records, version=1):
    plaintext = b"".join(record(version, *r) for r in records)
    master = hashlib.scrypt(secret, salt=salt, n=1 << LOG2_N, r=R, p=P, dklen=32)
    seal = hkdf(master, salt, b"tdefs key export v1 seal", 32)
    check = hkdf(master, salt, b"tdefs key export v1 check", 32)
    header = b"TDEFSKEX" + struct.pack("<HHI", version, 0, len(records)) + wallet_id
    header += struct.pack("<qB3xIII", export_time, LOG2_N, R, P, len(plaintext))
    header += salt + check + nonce + b"\0" * 12
    body = header + AESGCM(seal).encrypt(nonce, plaintext, header)
    return body + hashlib.sha256(body).digest()


def write(out, secret_file, wallet_id, keys):
    with open(secret_file, "rb") as f:
        secret = f.readline().rstrip(b"\r\n")
    records = []
    for item in keys:
        key_id, mek = item.split(":")
        records.append((bytes.fromhex(key_id), bytes.fromhex(mek), 1767225600, 1767225600, 2, 1,
                        b"", b"default", b"vectors@test"))
    data = encode(secret, os.urandom(32), os.urandom(12), bytes.fromhex(wallet_id), 1767225600,
                  records, version=2)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, data)
    os.close(fd)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "write":
        write(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
        return
    v2_records = [r + (c,) for r, c in zip(RECORDS, CREATORS)]
    for name, version, records in (("KAT_FILE", 1, RECORDS), ("KAT_FILE_V2", 2, v2_records)):
        data = encode(SECRET, SALT, NONCE, WALLET_ID, EXPORT_TIME, records, version)
        print("static const uint8_t %s[%d] = {" % (name, len(data)))
        for i in range(0, len(data), 12):
            print("\t" + " ".join("0x%02x," % b for b in data[i:i + 12]))
        print("};")


if __name__ == "__main__":
    main()
