"""SMS through an HTTP gateway speaking the Aliyun Dysms `SendSms` request format (阿里云短信).

The request is a form-encoded POST of the RPC-style API (version 2017-05-25):
`Action=SendSms`, `PhoneNumbers`, `SignName` (短信签名), `TemplateCode` (the
kind's `sms_template`), `TemplateParam` (a JSON object of the template's
parameters), `OutId` (our idempotency key, echoed in delivery receipts), the
common parameters (`AccessKeyId`, `Format=JSON`, `RegionId`,
`SignatureMethod=HMAC-SHA1`, `SignatureVersion=1.0`, `SignatureNonce`,
`Timestamp` in UTC ISO 8601, `Version`) and `Signature`: base64 of
HMAC-SHA1 keyed with `secret + "&"` over
`POST&%2F&` + percent-encode(the sorted, percent-encoded `k=v` pairs joined by `&`),
percent-encoding per RFC 3986 (only `A-Za-z0-9-_.~` unescaped). The answer is
JSON: `{"Code": "OK", "BizId": ..., "RequestId": ...}` on success, else a code
such as `isv.BUSINESS_LIMIT_CONTROL` (throttled: tried again) or
`isv.MOBILE_NUMBER_ILLEGAL` (permanent).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse
import uuid
from datetime import datetime, timezone

from channels import Delivery, DeliveryFailed
from channels.http import post

VERSION = "2017-05-25"
# Provider codes after which sending the same request again cannot succeed.
PERMANENT_CODES = {
    "isv.MOBILE_NUMBER_ILLEGAL", "isv.SMS_TEMPLATE_ILLEGAL", "isv.SMS_SIGNATURE_ILLEGAL",
    "isv.TEMPLATE_MISSING_PARAMETERS", "isv.INVALID_PARAMETERS", "isv.PARAM_LENGTH_LIMIT",
    "isv.BLACK_KEY_CONTROL_LIMIT", "InvalidAccessKeyId.NotFound", "SignatureDoesNotMatch",
    "isv.ACCOUNT_NOT_EXISTS", "isv.MOBILE_COUNT_OVER_LIMIT",
}


def percent(value: str) -> str:
    return urllib.parse.quote(str(value), safe="-_.~")


def signature(params: dict, secret: str, method: str = "POST") -> str:
    """The Aliyun RPC signature (SignatureVersion 1.0) of `params` (without `Signature`)."""
    canonical = "&".join(f"{percent(k)}={percent(v)}" for k, v in sorted(params.items()))
    to_sign = f"{method}&{percent('/')}&{percent(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class SmsChannel:
    name = "sms"

    def __init__(self, url: str, access_key_id: str, access_key_secret: str, sign_name: str, *,
                 region: str = "cn-hangzhou", timeout: float = 10.0):
        self.url, self.access_key_id, self.secret = url, access_key_id, access_key_secret
        self.sign_name, self.region, self.timeout = sign_name, region, timeout

    def request_params(self, d: Delivery) -> dict:
        params = {
            "Action": "SendSms", "Version": VERSION, "Format": "JSON", "RegionId": self.region,
            "AccessKeyId": self.access_key_id, "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0",
            "SignatureNonce": uuid.uuid4().hex,
            "Timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "PhoneNumbers": d.address, "SignName": self.sign_name, "TemplateCode": d.sms_template,
            "TemplateParam": json.dumps(d.params, ensure_ascii=False, separators=(",", ":")),
            "OutId": d.key,
        }
        params["Signature"] = signature(params, self.secret)
        return params

    def send(self, d: Delivery) -> str:
        body = urllib.parse.urlencode(self.request_params(d), quote_via=urllib.parse.quote).encode()
        _status, raw = post(self.url, body, {"Content-Type": "application/x-www-form-urlencoded"}, self.timeout)
        try:
            answer = json.loads(raw)
        except ValueError:
            raise DeliveryFailed(f"the SMS gateway answered no JSON: {raw[:200]!r}") from None
        code = answer.get("Code")
        if code != "OK":
            raise DeliveryFailed(f"SMS gateway refused: {code}: {answer.get('Message')}",
                                 permanent=code in PERMANENT_CODES)
        return str(answer.get("BizId") or answer.get("RequestId") or "")
