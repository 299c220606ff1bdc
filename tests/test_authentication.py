"""A request's authentication: one statement (token, user, roles and the organisation stamp), no transaction
around it, and a snapshot of the organisation kept current when another process changed it."""
from __future__ import annotations

from sqlalchemy import event

from engine.services.org import authenticate


def test_authentication_is_one_statement_outside_any_transaction(app, rt, demo):
    from app import db

    authenticate(rt, demo["yjp_acceptor"])  # the first use stamps last_used_at (a write of its own)
    with app.app_context():
        engine = db.engine
    sent = []

    def count(_conn, _cursor, statement, _params, _context, _many):
        sent.append(statement.split()[0].upper())

    event.listen(engine, "before_cursor_execute", count)
    try:
        caller = authenticate(rt, demo["yjp_acceptor"])
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert caller.username == "yjp_acceptor" and "acceptor" in caller.roles
    # One SELECT: no BEGIN (SQLite), no separate read of the organisation stamp; on PostgreSQL the
    # connection autocommits, so no BEGIN and no ROLLBACK travel either.
    assert sent == ["SELECT"], sent


def test_an_organisation_change_by_another_process_reaches_the_next_request(app, db_url, demo):
    from app import create_app
    from app import db as flask_db

    other = create_app({"SQLALCHEMY_DATABASE_URI": db_url, "TESTING": True})  # another API process
    here, there = app.test_client(), other.test_client()
    auth = {"Authorization": f"Bearer {demo['yjp_acceptor']}"}
    me = here.get("/api/v1/me", headers=auth).get_json()
    assert me["unit"]["code"] == "XL-XLJD-YJP"
    renamed = there.patch("/api/v1/admin/units/XL-XLJD-YJP", json={"name": "羊角坪社区（新）"},
                          headers={"Authorization": f"Bearer {demo['admin']}"})
    assert renamed.status_code == 200, renamed.get_json()
    assert here.get("/api/v1/me", headers=auth).get_json()["unit"]["name"] == "羊角坪社区（新）"
    with other.app_context():
        flask_db.engine.dispose()
