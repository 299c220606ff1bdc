"""One HTTP POST with the standard library, its failures sorted into transient and permanent."""
from __future__ import annotations

import socket
import urllib.error
import urllib.request

from channels import DeliveryFailed

# Client errors that a later attempt may cure: timeout, conflict-in-progress, throttling.
TRANSIENT_4XX = {408, 409, 425, 429}


def post(url: str, body: bytes, headers: dict, timeout: float) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:200].decode("utf-8", "replace")
        permanent = 400 <= exc.code < 500 and exc.code not in TRANSIENT_4XX
        raise DeliveryFailed(f"HTTP {exc.code} from {url}: {detail}", permanent=permanent) from None
    except (socket.timeout, TimeoutError):
        raise DeliveryFailed(f"no answer from {url} within {timeout:g} s") from None
    except urllib.error.URLError as exc:
        raise DeliveryFailed(f"cannot reach {url}: {exc.reason}") from None
    except OSError as exc:  # reset or closed mid-answer
        raise DeliveryFailed(f"connection to {url} failed: {exc}") from None
