"""Webhooks for other government systems: a JSON POST signed with HMAC-SHA256.

Headers: `Content-Type: application/json`, `Idempotency-Key: <key>` (the same on
every attempt), `X-Timestamp: <unix seconds>`, and
`X-Signature: sha256=<hex HMAC-SHA256 over "<timestamp>.<raw body>" keyed with the recipient's secret>`.
The receiver recomputes the signature, refuses stale timestamps, and ignores a
key it has already processed. Body: `{"id", "kind", "case_no", "title", "text",
"params", "created_at"}`. Any 2xx is delivered; 4xx (but 408/409/425/429) is
permanent; 5xx, timeouts and network errors are tried again.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time

from channels import Delivery, DeliveryFailed
from channels.http import post


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class WebhookChannel:
    name = "webhook"

    def __init__(self, timeout: float = 10.0):
        self.timeout = timeout

    def send(self, d: Delivery) -> str:
        if not d.secret:
            raise DeliveryFailed(f"webhook {d.address} has no secret to sign with", permanent=True)
        body = json.dumps({"id": d.key, "kind": d.kind, "case_no": d.case_no, "title": d.title, "text": d.text,
                           "params": d.params, "created_at": d.created_at},
                          ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        status, _ = post(d.address, body, {"Content-Type": "application/json", "Idempotency-Key": d.key,
                                           "X-Timestamp": timestamp, "X-Signature": sign(d.secret, timestamp, body)},
                         self.timeout)
        return f"HTTP {status}"
