"""/api/v1/units and /api/v1/me: the organisation, and who the caller is."""
from __future__ import annotations

from marshmallow import Schema, fields

from api.auth import caller, require_token, runtime
from api.parsing import Blueprint
from engine.services import org

blp = Blueprint("units", __name__, url_prefix="/api/v1", description="The organisation and the caller")
blp.before_request(require_token)


class UnitOut(Schema):
    code = fields.String()
    name = fields.String()
    kind = fields.String(metadata={"description": "city, district, street, community, city_department, "
                                                  "district_department, coordination_office, joint_meeting, "
                                                  "supervision_centre"})
    level = fields.String(allow_none=True, metadata={"description": "city, district, street or community"})
    parent = fields.String(allow_none=True)


class MeOut(Schema):
    username = fields.String()
    display_name = fields.String()
    unit = fields.Nested(UnitOut)
    roles = fields.List(fields.String())
    acts_as = fields.List(fields.String(), metadata={"description": "the task roles the caller may work on"})


@blp.route("/units", methods=["GET"])
@blp.response(200, UnitOut(many=True))
def list_units():
    """Every unit of the organisation"""
    return org.list_units(runtime())


@blp.route("/me", methods=["GET"])
@blp.response(200, MeOut)
def me():
    """The caller: unit and roles"""
    return org.describe_caller(runtime(), caller())
