"""Real local servers standing in for the providers that cannot run here.

`Gateway` is a threaded `http.server` that answers as an Aliyun-style SMS
gateway (form-encoded `SendSms`, signature checked) and as a webhook receiver
(JSON, HMAC-SHA256 checked), and records every request it received. It can be
told to fail: `plan` is a list of behaviours taken one per request
(`"ok"`, `500`, `"timeout"` (answer after the client gave up), `"slow"`
(answer after `slow_seconds`), `"hold"` (answer once `release` is set, at most
`timeout_seconds` later), or an Aliyun error code such as
`"isv.MOBILE_NUMBER_ILLEGAL"`), then `default` for the rest.
`Mailbox` is a real SMTP server (aiosmtpd) recording every message, which can
refuse recipients with 4xx or 5xx.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from channels.sms import signature

ACCESS_KEY_ID, ACCESS_KEY_SECRET, SIGN_NAME = "LTAI-test-key", "test-secret", "矛盾联调"


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # several dispatchers with several sends in flight each: no refused connects


class Gateway:
    def __init__(self, default="ok", slow_seconds: float = 0.3, timeout_seconds: float = 3.0):
        self.default = default
        self.plan: list = []
        self.slow_seconds, self.timeout_seconds = slow_seconds, timeout_seconds
        self.received: list[dict] = []
        self.release = threading.Event()  # what "hold" waits for
        self._lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body leave at once (no 40 ms delayed-ACK stall)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                gateway._handle(self, body)

            def log_message(self, *args):
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def _behaviour(self):
        with self._lock:
            return self.plan.pop(0) if self.plan else self.default

    def _handle(self, req, body: bytes):
        behaviour = self._behaviour()
        record = {"path": req.path, "headers": dict(req.headers), "body": body, "behaviour": behaviour,
                  "at": time.time()}
        if req.path.startswith("/sms"):
            form = dict(urllib.parse.parse_qsl(body.decode()))
            record["form"] = form
            given = form.pop("Signature", None)
            record["signature_ok"] = given == signature(form, ACCESS_KEY_SECRET)
            form["Signature"] = given
        else:
            record["json"] = json.loads(body)
        with self._lock:
            self.received.append(record)
        if behaviour == "timeout":
            time.sleep(self.timeout_seconds)
        elif behaviour == "slow":
            time.sleep(self.slow_seconds)
        elif behaviour == "hold":
            self.release.wait(self.timeout_seconds)
        if behaviour == 500:
            return self._answer(req, 500, {"error": "internal"})
        if req.path.startswith("/sms"):
            code = "OK" if behaviour in ("ok", "slow", "timeout", "hold") else behaviour
            if not record["signature_ok"]:
                code = "SignatureDoesNotMatch"
            return self._answer(req, 200, {"Code": code, "Message": code, "RequestId": "req-1",
                                           "BizId": f"biz-{len(self.received)}"})
        return self._answer(req, 200, {"ok": True})

    @staticmethod
    def _answer(req, status: int, payload: dict):
        data = json.dumps(payload).encode()
        try:
            req.send_response(status)
            req.send_header("Content-Type", "application/json")
            req.send_header("Content-Length", str(len(data)))
            req.end_headers()
            req.wfile.write(data)
        except OSError:  # the client gave up (a timeout): nothing to answer
            pass

    # -- what it saw -------------------------------------------------------------------

    def sms(self) -> list[dict]:
        return [r for r in self.received if r["path"].startswith("/sms")]

    def hooks(self) -> list[dict]:
        return [r for r in self.received if not r["path"].startswith("/sms")]


def webhook_signature_ok(record: dict, secret: str) -> bool:
    ts = record["headers"]["X-Timestamp"]
    expected = "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + record["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, record["headers"]["X-Signature"])


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Mailbox:
    """A real SMTP server on a free local port; `refuse[address] = (code, text)` refuses a recipient."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.messages: list = []
        self.refuse: dict[str, tuple[int, str]] = {}
        box = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                if address in box.refuse:
                    code, text = box.refuse[address]
                    return f"{code} {text}"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                from email import message_from_bytes, policy

                box.messages.append(message_from_bytes(envelope.content, policy=policy.default))
                return "250 Message accepted for delivery"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()


def channel_config(gateway: Gateway, mailbox: Mailbox | None = None, **extra) -> dict:
    """The configuration keys that point the channels at the local servers."""
    config = {"SMS_GATEWAY_URL": f"{gateway.url}/sms", "SMS_ACCESS_KEY_ID": ACCESS_KEY_ID,
              "SMS_ACCESS_KEY_SECRET": ACCESS_KEY_SECRET, "SMS_SIGN_NAME": SIGN_NAME, "OUTBOX_HTTP_TIMEOUT": "1"}
    if mailbox is not None:
        # The HTTP timeout is short for the gateway's timeout tests; a real SMTP exchange gets its own.
        config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=str(mailbox.port), MAIL_FROM="noreply@dispute.example.cn",
                      SMTP_TIMEOUT="10")
    config.update(extra)
    return config
