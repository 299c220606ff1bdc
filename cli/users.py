"""`flask users` and `flask seed`: API users, their roles and tokens; the demo organisation."""
from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup, with_appcontext

from cli import run_service, runtime

users_cli = AppGroup("users", help="API users, their roles and bearer tokens.")
seed_cli = AppGroup("seed", help="Load demo data.")


@users_cli.command("create")
@click.argument("username")
@click.option("--unit", "unit_code", required=True, help="The user's unit code (a unit of the loaded organisation: flask org import).")
@click.option("--role", "roles", multiple=True, required=True,
              help="A role (repeatable): acceptor, grid_worker, handler, dispatcher, leader, supervisor, "
                   "auditor, designer, admin.")
@click.option("--name", "display_name", default=None, help="Display name (default: the username).")
@with_appcontext
def users_create_command(username, unit_code, roles, display_name):
    """Create a user in a unit with one or more roles."""
    from engine.services.org import create_user

    user = run_service(create_user, runtime(), username, unit_code, roles, display_name)
    click.echo(f"created {user['username']} in {user['unit']['code']} as {', '.join(user['roles'])}")


@users_cli.command("token")
@click.argument("username")
@click.option("--revoke-others", is_flag=True, help="Revoke the user's earlier tokens.")
@with_appcontext
def users_token_command(username, revoke_others):
    """Print a new bearer token for the user (shown once; only its hash is stored)."""
    from engine.services.org import issue_token

    click.echo(run_service(issue_token, runtime(), username, revoke_others=revoke_others))


@users_cli.command("password")
@click.argument("username")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="The new password (asked for when left out; at least 8 characters).")
@with_appcontext
def users_password_command(username, password):
    """Set a user's web console password (stored as a scrypt hash; their open console sessions end)."""
    from engine.services.signin import set_password

    run_service(set_password, runtime(), username, password)
    click.echo(f"password set for {username}")


@users_cli.command("list")
@with_appcontext
def users_list_command():
    """List the users, their units and roles."""
    from engine.services.org import list_users

    for u in run_service(list_users, runtime()):
        state = "" if u["active"] else " (inactive)"
        click.echo(f"{u['username']:20} {u['unit']['code']:14} {','.join(u['roles'])}{state}")


@seed_cli.command("demo")
@click.option("--print-tokens", is_flag=True,
              help="Issue fresh tokens to every demo user (revoking their earlier ones) and print them.")
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the tokens issued by this run to this file (username<TAB>token) instead of printing.")
@with_appcontext
def seed_demo_command(print_tokens, token_file):
    """Load the demo organisation and its users (idempotent); tokens only for new users or on request."""
    from engine.services.seed import seed_demo
    from engine.services.signin import DEMO_PASSWORD, set_demo_passwords

    result = run_service(seed_demo, runtime(), rotate_tokens=print_tokens)
    users = result["users"]
    given = run_service(set_demo_passwords, runtime(), [u["username"] for u in users])
    if given:
        click.echo(f"console passwords: {given} demo user(s) got the demo password {DEMO_PASSWORD}", err=True)
    issued = [(u["username"], u["token"]) for u in users if u["token"]]
    click.echo(f"units: {result['units_changed']} changed; users: {sum(u['created'] for u in users)} created, "
               f"{sum(u['updated'] for u in users)} updated, {len(users)} in the demo file", err=True)
    lines = "".join(f"{name}\t{token}\n" for name, token in issued)
    if token_file is not None and issued:
        token_file.write_text(lines)
        token_file.chmod(0o600)
        click.echo(f"wrote {len(issued)} token(s) to {token_file}", err=True)
    elif token_file is not None:
        click.echo("no tokens issued (every demo user exists); --print-tokens rotates them", err=True)
    elif issued:
        click.echo(lines, nl=False)
