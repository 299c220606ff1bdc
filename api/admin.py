"""/api/v1/admin/units and /api/v1/admin/users: the administrator's organisation (role `admin`).

Changes take effect in every worker at its next request (the organisation's
version stamp). A change that would leave a task with no unit or no
candidate is a 409 `organisation_gaps` naming each gap, unless
`?allow_gaps=true`; deactivating a unit still in use is a 409 `unit_in_use`.
"""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.auth import caller, require_token, runtime
from api.parsing import Blueprint
from api.schemas import RequestSchema
from api.units import UnitOut
from engine.rules.access import ROLES
from engine.rules.organisation import KINDS
from engine.services import org_admin

blp = Blueprint("admin", __name__, url_prefix="/api/v1/admin",
                description="Units and users, for administrators (takes effect in every worker at once)")
blp.before_request(require_token)

CODE = validate.Length(min=1, max=50)


def role_list(**kwargs):
    return fields.List(fields.String(validate=validate.Length(min=1, max=30)), validate=validate.Length(min=1, max=20),
                       metadata={"description": f"roles: {', '.join(ROLES)}"}, **kwargs)


class GapsQuery(RequestSchema):
    allow_gaps = fields.Boolean(load_default=False, metadata={
        "description": "make the change even if it leaves tasks with no unit or candidate (logged as warnings)"})


class UnitQuery(RequestSchema):
    active = fields.Boolean()
    kind = fields.String(validate=validate.OneOf(KINDS))
    parent = fields.String(validate=CODE)


class UnitIn(RequestSchema):
    code = fields.String(required=True, validate=CODE)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    parent = fields.String(allow_none=True, validate=CODE)
    active = fields.Boolean(load_default=True, metadata={"description": "false: prepare and staff it first"})


class UnitPatch(RequestSchema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    kind = fields.String(validate=validate.OneOf(KINDS))
    parent = fields.String(allow_none=True, validate=CODE)
    active = fields.Boolean()


class AdminUnitOut(UnitOut):
    active = fields.Boolean()


class AdminUnitChangeOut(AdminUnitOut):
    allowed_gaps = fields.List(fields.String(), metadata={"description": "gaps let through by allow_gaps"})


class UserQuery(RequestSchema):
    unit = fields.String(validate=CODE)
    role = fields.String(validate=validate.OneOf(list(ROLES)))
    active = fields.Boolean()


class UserIn(RequestSchema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=100))
    display_name = fields.String(validate=validate.Length(min=1, max=100))
    unit = fields.String(required=True, validate=CODE)
    roles = role_list(required=True)
    active = fields.Boolean(load_default=True)


class UserPatch(RequestSchema):
    display_name = fields.String(validate=validate.Length(min=1, max=100))
    unit = fields.String(validate=CODE)
    roles = role_list()
    active = fields.Boolean()


class AdminUserOut(Schema):
    username = fields.String()
    display_name = fields.String()
    active = fields.Boolean()
    unit = fields.Nested(AdminUnitOut)
    roles = fields.List(fields.String())


class AdminUserChangeOut(AdminUserOut):
    allowed_gaps = fields.List(fields.String())


class TokenIn(RequestSchema):
    revoke_others = fields.Boolean(load_default=False)


class TokenOut(Schema):
    username = fields.String()
    token = fields.String(metadata={"description": "shown once; only its sha256 is stored"})


@blp.route("/units", methods=["GET"])
@blp.arguments(UnitQuery, location="query")
@blp.response(200, AdminUnitOut(many=True))
@blp.alt_response(403, response="FORBIDDEN")
def list_units(query):
    """Every unit, active or not (filters: active, kind, parent)"""
    return org_admin.admin_list_units(runtime(), caller(), query)


@blp.route("/units", methods=["POST"])
@blp.arguments(GapsQuery, location="query", as_kwargs=True)
@blp.arguments(UnitIn)
@blp.response(201, AdminUnitChangeOut)
@blp.alt_response(409, response="CONFLICT")
def create_unit(body, allow_gaps):
    """Create a unit under an existing parent"""
    return org_admin.admin_create_unit(runtime(), caller(), body, allow_gaps=allow_gaps)


@blp.route("/units/<code>", methods=["PATCH"])
@blp.arguments(GapsQuery, location="query", as_kwargs=True)
@blp.arguments(UnitPatch)
@blp.response(200, AdminUnitChangeOut)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def update_unit(body, code, allow_gaps):
    """Rename, re-kind, move or (de)activate a unit"""
    return org_admin.admin_update_unit(runtime(), caller(), code, body, allow_gaps=allow_gaps)


@blp.route("/units/<code>/deactivate", methods=["POST"])
@blp.arguments(GapsQuery, location="query", as_kwargs=True)
@blp.response(200, AdminUnitChangeOut)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def deactivate_unit(code, allow_gaps):
    """Deactivate a unit (409 naming its open tasks, open cases, active users or active units under it)"""
    return org_admin.admin_deactivate_unit(runtime(), caller(), code, allow_gaps=allow_gaps)


@blp.route("/users", methods=["GET"])
@blp.arguments(UserQuery, location="query")
@blp.response(200, AdminUserOut(many=True))
@blp.alt_response(403, response="FORBIDDEN")
def list_users(query):
    """Every user, active or not (filters: unit, role, active)"""
    return org_admin.admin_list_users(runtime(), caller(), query)


@blp.route("/users", methods=["POST"])
@blp.arguments(GapsQuery, location="query", as_kwargs=True)
@blp.arguments(UserIn)
@blp.response(201, AdminUserChangeOut)
@blp.alt_response(409, response="CONFLICT")
def create_user(body, allow_gaps):
    """Create a user in a unit with roles"""
    return org_admin.admin_create_user(runtime(), caller(), body, allow_gaps=allow_gaps)


@blp.route("/users/<username>", methods=["PATCH"])
@blp.arguments(GapsQuery, location="query", as_kwargs=True)
@blp.arguments(UserPatch)
@blp.response(200, AdminUserChangeOut)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def update_user(body, username, allow_gaps):
    """Change a user's unit, roles, display name or active flag"""
    return org_admin.admin_update_user(runtime(), caller(), username, body, allow_gaps=allow_gaps)


@blp.route("/users/<username>/deactivate", methods=["POST"])
@blp.arguments(GapsQuery, location="query", as_kwargs=True)
@blp.response(200, AdminUserChangeOut)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def deactivate_user(username, allow_gaps):
    """Deactivate a user (their tokens stop working at once)"""
    return org_admin.admin_deactivate_user(runtime(), caller(), username, allow_gaps=allow_gaps)


@blp.route("/users/<username>/tokens", methods=["POST"])
@blp.arguments(TokenIn)
@blp.response(201, TokenOut)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def issue_token(body, username):
    """Issue a bearer token for an active user (shown once)"""
    return org_admin.admin_issue_token(runtime(), caller(), username, revoke_others=body["revoke_others"])
