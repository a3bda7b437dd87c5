"""Mints the JWTs the policy tests present, with PyJWT (and by hand for the attack tokens PyJWT
refuses to make). Usage: python3 mint_jwt.py SPEC_JSON; prints the token.

SPEC: {"alg": "ES256", "key_file": "tests/keys/es256.key" | "secret": "...", "kid": "es",
       "claims": {...}, "forge": null | "none" | "hs256_with_file"}
"""
import base64
import hashlib
import hmac
import json
import sys

import jwt


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict, claims: dict, sign) -> str:
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    return signing_input + "." + sign(signing_input.encode())


def main() -> None:
    spec = json.loads(sys.argv[1])
    claims = spec.get("claims", {})
    headers = {"kid": spec["kid"]} if spec.get("kid") else {}
    forge = spec.get("forge")
    if forge == "none":
        # An unsigned token: `alg: none`, empty signature.
        print(forged({"alg": "none", "typ": "JWT", **headers}, claims, lambda _: ""))
        return
    if forge == "hs256_with_file":
        # The classic confusion attack: HMAC-SHA256 keyed with the bytes of a public key file.
        key = open(spec["key_file"], "rb").read()
        sign = lambda data: b64url(hmac.new(key, data, hashlib.sha256).digest())
        print(forged({"alg": "HS256", "typ": "JWT", **headers}, claims, sign))
        return
    key = open(spec["key_file"]).read() if "key_file" in spec else spec["secret"]
    print(jwt.encode(claims, key, algorithm=spec["alg"], headers=headers or None))


main()
