"""Delivery channels: the network I/O behind the outbox (SMS gateway, SMTP, webhooks).

Why a top-level package and not a room of `engine/`: a channel is an adapter at
the edge of the system, like a database driver. It knows HTTP, SMTP and one
provider's request format, and nothing of cases, sessions or Flask. The engine
never imports it: the composition root (`cli/outbox.py`) builds the channels
from the configuration with `build_channels` and hands the registry to the
dispatcher (`engine.services.outbox.Dispatcher`), the way `handlers/` is handed
to the runtime. Channels depend on the engine's port (`Delivery`, `DeliveryFailed`), never the
other way round. So the engine's rooms stay free of network code, a channel is
tested alone against a real local server, and adding one touches one module
and one line of `build_channels`.

Every channel is `send(delivery) -> provider reference` and raises
`DeliveryFailed` (transient, tried again later; or `permanent`) on failure,
always sending `delivery.key`, the message's idempotency key, to the provider.
"""
from __future__ import annotations

# The port the channels implement is the engine's: the dispatcher hands each one a `Delivery`.
from engine.services.outbox import Delivery, DeliveryFailed  # noqa: F401  (re-exported for the channels)

CHANNELS = ("sms", "email", "webhook")


def build_channels(config: dict) -> dict:
    """The configured channels by name (a channel without its settings is left out)."""
    from channels.mail import EmailChannel
    from channels.sms import SmsChannel
    from channels.webhook import WebhookChannel

    timeout = float(config.get("OUTBOX_HTTP_TIMEOUT") or 10)
    out: dict = {"webhook": WebhookChannel(timeout=timeout)}
    if config.get("SMS_GATEWAY_URL"):
        out["sms"] = SmsChannel(config["SMS_GATEWAY_URL"], config.get("SMS_ACCESS_KEY_ID") or "",
                                config.get("SMS_ACCESS_KEY_SECRET") or "", config.get("SMS_SIGN_NAME") or "",
                                region=config.get("SMS_REGION") or "cn-hangzhou", timeout=timeout)
    if config.get("SMTP_HOST"):
        out["email"] = EmailChannel(config["SMTP_HOST"], int(config.get("SMTP_PORT") or 25),
                                    config.get("MAIL_FROM") or "noreply@localhost",
                                    user=config.get("SMTP_USER"), password=config.get("SMTP_PASSWORD"),
                                    starttls=str(config.get("SMTP_STARTTLS", "")).lower() in ("1", "true", "yes"),
                                    timeout=float(config.get("SMTP_TIMEOUT") or timeout))
    return out
