#!/usr/bin/env python3
"""Independent reference for docs/wire-format.md's test vectors.

Written from the specification, sharing no code with the Rust implementation: AES comes from the
`openssl` command line tool, HKDF (RFC 5869) and HMAC-SHA256 from Python's standard library. Run it
to regenerate `vectors.json`; the Rust tests (crates/tmc-envelope/tests/vectors.rs) check their
output against that file byte for byte.

    python3 docs/vectors/make_vectors.py > docs/vectors/vectors.json
"""
import base64
import hashlib
import hmac
import json
import subprocess


def hkdf_sha256(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    okm, block, i = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        okm += block
        i += 1
    return okm[:length]


def openssl(cipher: str, key: bytes, iv: bytes, data: bytes, decrypt: bool = False) -> bytes:
    args = ["openssl", "enc", "-" + cipher, "-K", key.hex(), "-iv", iv.hex(), "-nosalt", "-nopad"]
    if decrypt:
        args.append("-d")
    return subprocess.run(args, input=data, capture_output=True, check=True).stdout


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 63) if n >= 0 else ((n << 1) ^ -1) & 0xFFFFFFFFFFFFFFFF


def batch_plaintext(readings, iat):
    topics = []
    for r in readings:
        if r["topic"] not in topics:
            topics.append(r["topic"])
    out = varint(len(topics))
    for t in topics:
        out += varint(len(t.encode())) + t.encode()
    out += varint(len(readings))
    for r in readings:
        if len(topics) > 1:
            out += varint(topics.index(r["topic"]))
        out += varint(zigzag(r["time"] - iat))
        data = bytes.fromhex(r["data_hex"])
        out += varint(len(data)) + data
    return out


def secure_vector(name, secret, kid, sid, ctr, iat, readings):
    aes_key = hkdf_sha256(b"tmc-envelope/v1", secret, b"aes-128-ctr", 16)
    mac_key = hkdf_sha256(b"tmc-envelope/v1", secret, b"hmac-sha256", 32)
    plaintext = batch_plaintext(readings, iat)
    iv = sid.to_bytes(4, "big") + ctr.to_bytes(4, "big") + bytes(8)
    ciphertext = openssl("aes-128-ctr", aes_key, iv, plaintext)
    header = '{"alg":"HS256","kid":"%d"}' % kid
    claims = '{"sid":%d,"ctr":%d,"iat":%d,"dat":"%s"}' % (sid, ctr, iat, b64url(ciphertext))
    signing_input = b64url(header.encode()) + "." + b64url(claims.encode())
    signature = hmac.new(mac_key, signing_input.encode(), hashlib.sha256).digest()
    text = signing_input + "." + b64url(signature)
    packed = bytes([0x01, kid]) + varint(sid) + varint(ctr) + varint(iat) + ciphertext + signature
    return {
        "name": name,
        "secret_hex": secret.hex(),
        "kid": kid,
        "sender": sid,
        "counter": ctr,
        "iat": iat,
        "readings": readings,
        "aes_key_hex": aes_key.hex(),
        "mac_key_hex": mac_key.hex(),
        "plaintext_hex": plaintext.hex(),
        "header_json": header,
        "claims_json": claims,
        "text": text,
        "packed_hex": packed.hex(),
    }


def legacy_vector(plaintext: bytes, padding: str = "nul"):
    """The old deployment's senders padded with NULs (TMC seals so); some padded with PKCS#7 (open only)."""
    key, iv, secret = b"tmctmctmctmctmcA", b"0123456789123456", b"MQTT"
    if padding == "pkcs7":
        n = 16 - len(plaintext) % 16
        padded = plaintext + bytes([n]) * n
    else:
        padded = plaintext + b"\0" * (-len(plaintext) % 16)
    ciphertext = openssl("aes-128-cbc", key, iv, padded)
    header = '{"typ":"JWT","alg":"HS256"}'
    claims = '{"data":"%s"}' % base64.b64encode(ciphertext).decode()
    signing_input = b64url(header.encode()) + "." + b64url(claims.encode())
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    token = signing_input + "." + b64url(signature)
    return {
        "padding": padding,
        "plaintext_hex": plaintext.hex(),
        "ciphertext_hex": ciphertext.hex(),
        "token": token,
        "frame_hex": (token.encode() + b"\0").hex(),
    }


def reading(topic, time, data: bytes):
    return {"topic": topic, "time": time, "data_hex": data.hex()}


def main():
    secret = bytes(range(32))
    iat = 1763766000
    vectors = {
        "secure": [
            secure_vector("one reading", secret, 1, 10, 0, iat,
                          [reading("/esp8266", iat, b"t=21.5 h=40.2")]),
            secure_vector("batch of three, two topics, counter 300", secret, 7, 10, 300, iat,
                          [reading("/esp8266", iat - 120, bytes(range(8))),
                           reading("sensors/k/reading", iat - 60, b"22.0"),
                           reading("/esp8266", iat, bytes(range(8, 16)))]),
        ],
        "legacy": [
            legacy_vector(b"Temperature: 21.50 C"),
            legacy_vector(b"0123456789abcdef"),
            legacy_vector(b"Temperature: 21.50 C", "pkcs7"),
            legacy_vector(b"0123456789abcdef", "pkcs7"),
        ],
    }
    print(json.dumps(vectors, indent=2))


if __name__ == "__main__":
    main()
