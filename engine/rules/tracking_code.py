"""The tracking code's rule: its alphabet, its length, how typed input is read, how it is stored.

Codes are 12 symbols of Crockford's base32 (digits and capitals without I, L,
O, U: nothing to misread when read out on the phone or copied from an SMS),
drawn by `secrets`: 60 bits, far beyond guessing through a rate-limited
endpoint. Typed input is forgiving the way Crockford's scheme is: case does
not matter, hyphens and spaces are ignored, I and L read as 1 and O as 0.
Only the sha256 digest of the canonical form is stored.
"""
from __future__ import annotations

import hashlib
import re
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 12
PATTERN = re.compile(f"^[{ALPHABET}]{{{LENGTH}}}$")
_READ_AS = str.maketrans({"I": "1", "L": "1", "O": "0"})


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def canonical(text) -> str | None:
    """The code as issued, from what a citizen typed; None if it cannot be a code at all."""
    if not isinstance(text, str) or len(text) > 4 * LENGTH:
        return None
    code = re.sub(r"[\s\-]", "", text).upper().translate(_READ_AS)
    return code if PATTERN.match(code) else None


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode("ascii")).hexdigest()
