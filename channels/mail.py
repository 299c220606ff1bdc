"""E-mail over SMTP with smtplib; the Message-ID is derived from the idempotency key.

A resend after a crash carries the same `Message-ID` (`<key@domain of From>`)
and an `X-Idempotency-Key` header, so mail systems and readers see one message.
SMTP 5xx answers are permanent failures; 4xx and network errors are tried again.
"""
from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import formatdate

from channels import Delivery, DeliveryFailed


class EmailChannel:
    name = "email"

    def __init__(self, host: str, port: int, sender: str, *, user: str | None = None,
                 password: str | None = None, starttls: bool = False, timeout: float = 10.0):
        self.host, self.port, self.sender = host, port, sender
        self.user, self.password, self.starttls, self.timeout = user, password, starttls, timeout

    def message(self, d: Delivery) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = d.address
        msg["Subject"] = d.title
        msg["Date"] = formatdate(usegmt=True)
        msg["Message-ID"] = f"<{d.key}@{self.sender.rpartition('@')[2] or 'localhost'}>"
        msg["X-Idempotency-Key"] = d.key
        msg.set_content(d.text)
        return msg

    def send(self, d: Delivery) -> str:
        msg = self.message(d)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.user:
                    smtp.login(self.user, self.password or "")
                smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryFailed(f"SMTP refused {d.address}: {exc.recipients}",
                                 permanent=all(c >= 500 for c in codes)) from None
        except smtplib.SMTPResponseException as exc:
            raise DeliveryFailed(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", permanent=exc.smtp_code >= 500) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(f"SMTP {self.host}:{self.port}: {exc}") from None
        return msg["Message-ID"]
