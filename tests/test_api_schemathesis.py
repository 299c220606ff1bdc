"""Schemathesis against the OpenAPI document: generated requests, a bounded number per operation, never a 5xx.

Every operation of /api/openapi.json is fed Hypothesis-generated requests
that fit the document (positive) and that break it (negative), as a
community acceptor with a real token and with a demo case in the database.
The only check is the one that matters for robustness: no answer is a 5xx.
Examples are derandomized, so a run is repeatable.
"""
from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

# Per operation and mode; CI keeps the default, a deeper local run raises it.
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "5"))


@pytest.mark.slow
def test_no_generated_request_gets_a_server_error(app, api):
    api.at_signing()
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    headers = api.headers("yjp_acceptor")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 16
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def call(case):
                case.call_and_validate(headers=headers, checks=[not_a_server_error])

            try:
                call()
            except Unsatisfiable:
                # An operation with no parameters and no body has nothing a request could break.
                assert mode is GenerationMode.NEGATIVE, operation.label
