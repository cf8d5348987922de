"""An EHR's signing keys and JWKS file, and the tokens it would send (CDS Hooks 2.0 JWTs)."""

from __future__ import annotations

import json
import time
import uuid

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ISSUER = "https://ehr.example.org"


class EHRKeys:
    """An EHR's signing keys (EC P-384 'ec1', RSA 'rsa1') and its JWKS file."""

    def __init__(self, folder):
        self.ec = ec.generate_private_key(ec.SECP384R1())
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        keys = []
        for kid, key, alg in (("ec1", self.ec, "ES384"), ("rsa1", self.rsa, "RS384")):
            jwk = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "alg": alg, "use": "sig"})
        self.jwks = {"keys": keys}
        self.path = folder / "jwks.json"
        self.path.write_text(json.dumps(self.jwks))

    def token(self, aud: str, *, kid="ec1", alg="ES384", iss=ISSUER, key=None, **claims) -> str:
        now = int(time.time())
        body = {"iss": iss, "sub": "ehr-client", "aud": aud, "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex}
        body.update(claims)
        key = key or (self.ec if kid == "ec1" else self.rsa)
        return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm=alg, headers={"kid": kid})
