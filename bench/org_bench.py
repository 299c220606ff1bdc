"""Organisation benchmark: importing and checking a city the size of Yichang's, and what the
version stamp costs each unit of work.

    python bench/org_bench.py [--communities 105] [--streets 16] [--db-url URL]

Writes a synthetic organisation (the demo's city units, districts of streets and communities,
112 district departments, every community staffed with an acceptor and ten grid workers, every
street with a handler and a leader) to TOML, then times `flask org import` (first load, then an
idempotent re-import), `flask org check` on the loaded organisation, a reload of one worker's
snapshot after a change, and 1,000 one-query read units of work with and without the version check.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.engine_bench import make_runtime  # noqa: E402


def city(communities: int, streets: int) -> str:
    import tomllib

    demo = tomllib.loads((ROOT / "processes" / "organisation.toml").read_text())["units"]
    users = tomllib.loads((ROOT / "processes" / "demo_users.toml").read_text())["users"]
    units = [u for u in demo if u["kind"] not in ("district", "street", "community", "district_department")
             and u.get("parent") == "YC" or u["code"] == "YC"]
    users = [u for u in users if any(u["unit"] == x["code"] for x in units)]
    districts = 4
    for d in range(districts):
        units += [{"code": f"D{d}", "name": f"区{d}", "kind": "district", "parent": "YC"},
                  {"code": f"D{d}-ZZB", "name": f"区{d}综治办", "kind": "coordination_office", "parent": f"D{d}"}]
        users.append({"username": f"d{d}zzb_leader", "unit": f"D{d}-ZZB", "roles": ["leader"]})
        units += [{"code": f"D{d}-B{b}", "name": f"区{d}部门{b}", "kind": "district_department", "parent": f"D{d}"}
                  for b in range(112 // districts)]
    for s in range(streets):
        code = f"D{s % districts}-S{s}"
        units.append({"code": code, "name": f"街道{s}", "kind": "street", "parent": f"D{s % districts}"})
        users += [{"username": f"s{s}_handler", "unit": code, "roles": ["handler"]},
                  {"username": f"s{s}_leader", "unit": code, "roles": ["leader"]}]
    for c in range(communities):
        s = c % streets
        code = f"D{s % districts}-S{s}-C{c}"
        units.append({"code": code, "name": f"社区{c}", "kind": "community", "parent": f"D{s % districts}-S{s}"})
        users.append({"username": f"c{c}_acceptor", "unit": code, "roles": ["acceptor"]})
        users += [{"username": f"c{c}_grid{g}", "unit": code, "roles": ["grid_worker"]} for g in range(10)]

    def row(section, r):
        body = "\n".join(f'{k} = {v!r}'.replace("'", '"') for k, v in r.items())
        return f"[[{section}]]\n{body}\n"

    return "\n".join([*(row("units", u) for u in units), *(row("users", u) for u in users)])


def timed(label: str, fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    print(f"{label:48} {(time.perf_counter() - t) * 1000:9.1f} ms")
    return out


def _one_read(rt) -> None:
    with rt.db.read():
        pass


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--communities", type=int, default=105)
    parser.add_argument("--streets", type=int, default=16)
    parser.add_argument("--db-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args(argv)

    from sqlalchemy import text

    from engine.rules.access import Caller
    from engine.services.org_admin import admin_update_unit
    from engine.services.org_load import check_loaded, import_organisation

    rt, url, cleanup = make_runtime(args.db_url)
    try:
        path = Path(tempfile.mkdtemp(prefix="org-bench-")) / "city.toml"
        path.write_text(city(args.communities, args.streets))
        first = timed("org import (first load)", import_organisation, rt, [path])
        print(f"  {first['units']['created']} units, {first['users']['created']} users; {first['check']['summary']}")
        timed("org import (again: nothing changes)", import_organisation, rt, [path])
        report = timed("org check (the loaded organisation)", check_loaded, rt)
        assert report["ok"], report["gaps"][:3]
        admin = Caller("bench", "bench", "YC", "city", frozenset({"admin"}))
        timed("admin: rename a unit (check before and after)", admin_update_unit, rt, admin, "D0-S0", {"name": "改名"})
        rt.org_cache.version = -1  # as if another worker had changed it
        timed("a worker reloads its snapshot", _one_read, rt)
        for hooked in (True, False):
            hooks = list(rt.db.on_begin)
            if not hooked:
                rt.db.on_begin.clear()
            t = time.perf_counter()
            for _ in range(1000):
                with rt.db.read() as session:
                    session.execute(text("SELECT code FROM unit LIMIT 1"))  # the unit of work's own (small) read
            rt.db.on_begin[:] = hooks
            print(f"{'1,000 read units of work, ' + ('with' if hooked else 'without') + ' the stamp check':48} "
                  f"{(time.perf_counter() - t) * 1000:9.1f} ms")
    finally:
        if cleanup:
            cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
