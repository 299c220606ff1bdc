"""`flask demo` keeps the demo users' tokens across restarts unless told to rotate them;
`flask seed demo --token-file FILE` still writes the tokens it issues (a contract)."""
from __future__ import annotations

import pytest


@pytest.fixture
def token_file(app, tmp_path):
    path = tmp_path / "demo_tokens.tsv"
    app.config["DEMO_TOKEN_FILE"] = str(path)
    return path


def tokens_in(path) -> dict[str, str]:
    return dict(line.split("\t") for line in path.read_text().splitlines())


def demo(app, *args) -> str:
    result = app.test_cli_runner().invoke(args=["demo", "--prepare-only", *args])
    assert result.exit_code == 0, result.output
    return result.output


def me(client, token) -> int:
    return client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code


def test_two_demo_preparations_leave_the_first_tokens_valid(app, client, token_file):
    assert "0 kept" in demo(app)
    first = tokens_in(token_file)
    assert "yjp_acceptor" in first and len(set(first.values())) == len(first)
    assert me(client, first["yjp_acceptor"]) == 200

    out = demo(app)
    assert f"{len(first)} kept, 0 new" in out
    assert tokens_in(token_file) == first
    assert all(me(client, token) == 200 for token in first.values())


def test_rotate_tokens_issues_new_ones_and_the_old_stop_working(app, client, token_file):
    demo(app)
    first = tokens_in(token_file)
    demo(app, "--rotate-tokens")
    second = tokens_in(token_file)
    assert set(second) == set(first) and not set(second.values()) & set(first.values())
    assert me(client, first["yjp_acceptor"]) == 401 and me(client, second["yjp_acceptor"]) == 200


def test_a_user_whose_token_is_lost_or_revoked_gets_a_new_one(app, client, token_file):
    demo(app)
    first = tokens_in(token_file)
    # one line lost, one token revoked by an administrator
    lines = [f"{u}\t{t}" for u, t in first.items() if u != "cgj_handler"]
    token_file.write_text("\n".join(lines) + "\n")
    app.test_cli_runner().invoke(args=["users", "token", "cgj_leader", "--revoke-others"])
    demo(app)
    again = tokens_in(token_file)
    assert set(again) == set(first)
    assert again["cgj_handler"] != first["cgj_handler"] and again["cgj_leader"] != first["cgj_leader"]
    assert {u: t for u, t in again.items() if u not in ("cgj_handler", "cgj_leader")} == \
        {u: t for u, t in first.items() if u not in ("cgj_handler", "cgj_leader")}
    assert all(me(client, token) == 200 for token in again.values())


def test_seed_demo_token_file_still_writes_the_tokens_it_issues(app, client, tmp_path):
    path = tmp_path / "seeded.tsv"
    result = app.test_cli_runner().invoke(args=["seed", "demo", "--token-file", str(path)])
    assert result.exit_code == 0, result.output
    tokens = tokens_in(path)
    assert me(client, tokens["jgzx_supervisor"]) == 200
    result = app.test_cli_runner().invoke(args=["seed", "demo", "--token-file", str(path)])
    assert result.exit_code == 0 and "no tokens issued" in result.output
    assert me(client, tokens["jgzx_supervisor"]) == 200
