"""The store: tables, sessions and the append-only ledger.

Plain SQLAlchemy, no SpiffWorkflow and no Flask. Nothing here imports the other
rooms of `engine/`; they import it. Importing this package registers every table
on `Base.metadata`, which is what Alembic compares the migrations against.
"""
from engine.store import (  # noqa: F401  (registers the tables)
    case_facts,
    client_models,
    idempotency_models,
    incident_models,
    models,
    org_models,
    report_models,
    settings_models,
    timer_models,
    tracking_models,
    worker_models,
    procedure_models,
)
from engine.store.base import Base

__all__ = ["Base"]
