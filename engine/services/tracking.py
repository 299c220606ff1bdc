"""Public tracking for the citizen: where is my case, and since when.

The citizen proves nothing but the case number and the last four digits of
the phone they reported with; a wrong suffix and an unknown number give the
same answer, so the endpoint cannot tell anyone which case numbers exist.
The view carries no personal data.
"""
from __future__ import annotations

import hmac
import re

from engine.errors import CaseError, CaseNotFound
from engine.services.cases import find_case
from engine.services.views import track_view


def _last4(phone: str | None) -> str:
    digits = re.sub(r"[^0-9]", "", phone or "")
    return digits[-4:] if len(digits) >= 4 else ""


def track_case(rt, case_no: str, phone_last4: str) -> dict:
    with rt.db.read() as session:
        try:
            case = find_case(rt, session, case_no)
        except CaseError:
            case = None
        expected = _last4(case.reporter_phone) if case is not None else "----"
        given = phone_last4 if isinstance(phone_last4, str) else ""
        if case is None or not expected or not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
            raise CaseNotFound(f"case {case_no} does not exist")
        return track_view(rt.tables, case)
