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
import re
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


def topic_table(readings):
    topics = []
    for r in readings:
        if r["topic"] not in topics:
            topics.append(r["topic"])
    out = varint(len(topics))
    for t in topics:
        out += varint(len(t.encode())) + t.encode()
    return topics, out


def batch_v1(readings, iat):
    topics, out = topic_table(readings)
    out += varint(len(readings))
    for r in readings:
        if len(topics) > 1:
            out += varint(topics.index(r["topic"]))
        out += varint(zigzag(r["time"] - iat))
        data = bytes.fromhex(r["data_hex"])
        out += varint(len(data)) + data
    return out


PLAIN = rb'[^"\\\x00-\x1f]*'
FIELD = re.compile(rb'"(' + PLAIN + rb')":(?:"(' + PLAIN + rb')"|(-?[0-9]+)(?:\.([0-9]+))?)(,|$)')
I64 = range(-(2 ** 63), 2 ** 63)


def render(fields):
    parts = []
    for key, kind, value in fields:
        if kind == 1:
            text = b'"' + value + b'"'
        elif kind == 0:
            text = str(value).encode()
        else:
            scale = kind - 1
            digits = str(abs(value)).rjust(scale + 1, "0")
            text = (b"-" if value < 0 else b"") + (digits[:-scale] + "." + digits[-scale:]).encode()
        parts.append(b'"' + key + b'":' + text)
    return b"{" + b",".join(parts) + b"}"


def flat_object(data: bytes):
    """[(key, kind, value)] for a flat JSON object that renders back exactly, else None."""
    if not (data.startswith(b"{") and data.endswith(b"}")) or len(data) < 3:
        return None
    body, fields, pos = data[1:-1], [], 0
    while pos < len(body):
        m = FIELD.match(body, pos)
        if not m or (m.group(5) == b"," and m.end() == len(body)):
            return None
        key, string, whole, fraction = m.group(1), m.group(2), m.group(3), m.group(4)
        if string is not None:
            fields.append((key, 1, string))
        elif fraction is None:
            fields.append((key, 0, int(whole)))
        else:
            fields.append((key, 1 + len(fraction), int(whole + fraction)))
        pos = m.end()
    ok = (0 < len(fields) <= 32 and render(fields) == data
          and all(k != 1 and v in I64 or k == 1 for _, k, v in fields)
          and all(k <= 19 for _, k, _ in fields))
    return fields if ok else None


def wrap64(n: int) -> int:
    return (n + 2 ** 63) % 2 ** 64 - 2 ** 63


def batch_v2(readings, iat):
    topics, table = topic_table(readings)
    out = bytes([0, 2]) + table + varint(len(readings))
    shapes = {}  # topic -> [(key, kind)]
    previous = {}  # topic -> {field index: previous value}
    last_time = iat
    for r in readings:
        t = topics.index(r["topic"])
        data = bytes.fromhex(r["data_hex"])
        fields = flat_object(data)
        shape = [(k, kind) for k, kind, _ in fields] if fields else None
        form = 0 if fields is None else (2 if shapes.get(t) == shape else 1)
        out += varint(3 * t + form) + varint(zigzag(r["time"] - last_time))
        last_time = r["time"]
        if form == 0:
            out += varint(len(data)) + data
            continue
        if form == 1:
            shapes[t], previous[t] = shape, {}
            out += varint(len(shape))
            for key, kind in shape:
                out += varint(len(key)) + key + varint(kind)
        for i, (_, kind, value) in enumerate(fields):
            before = previous[t].get(i)
            if kind == 1:
                out += varint(0) if before == value else varint(len(value) + 1) + value
            else:
                out += varint(zigzag(wrap64(value - (before or 0))))
            previous[t][i] = value
    return out


def batch_plaintext(readings, iat):
    """Layout version 2 when it is shorter than version 1, else version 1."""
    v1, v2 = batch_v1(readings, iat), batch_v2(readings, iat)
    return v2 if len(v2) < len(v1) else v1


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
        "batch_version": 2 if plaintext[0] == 0 else 1,
        "header_json": header,
        "claims_json": claims,
        # A text token longer than a frame's 251 bytes cannot be sent: the sealer refuses it.
        "text": text if len(text) <= 251 else None,
        "text_len": len(text),
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
            secure_vector("firmware readings, two sensors, layout version 2", secret, 1, 10, 1000, iat,
                          [reading("s/1", iat - 30, b'{"id":"sensor1","seq":17,"adc":512}'),
                           reading("s/2", iat - 29, b'{"id":"sensor2","seq":9,"adc":87}'),
                           reading("s/1", iat - 15, b'{"id":"sensor1","seq":18,"adc":498}'),
                           reading("s/2", iat - 14, b'{"id":"sensor2","seq":10,"adc":1023}'),
                           reading("s/1", iat, b'{"id":"sensor1","seq":19,"adc":503}'),
                           reading("s/2", iat, b'{"id":"sensor2","seq":11,"adc":90}')]),
            secure_vector("decimals, a new shape, a raw reading, layout version 2", secret, 1, 10, 1001, iat,
                          [reading("/esp8266", iat - 2, b'{"t":21.5,"h":40.25,"ok":"yes"}'),
                           reading("/esp8266", iat - 1, b'{"t":-0.5,"h":39.75,"ok":"yes"}'),
                           reading("/esp8266", iat - 1, b'{"t":21.5, "h":40.25}'),
                           reading("/esp8266", iat, b'{"t":22,"err":"x,y"}'),
                           reading("/esp8266", iat, b'{"t":23,"err":"x,y"}')]),
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
