"""The store: tables, sessions and the append-only ledger.

Plain SQLAlchemy, no SpiffWorkflow and no Flask. Nothing here imports the other
rooms of `engine/`; they import it. Importing this package registers every table
on `Base.metadata`, which is what Alembic compares the migrations against.
"""
from engine.store import idempotency_models, models, org_models, timer_models  # noqa: F401  (registers the tables)
from engine.store.base import Base

__all__ = ["Base"]
