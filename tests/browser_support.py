"""The browser tests' tools: the app on a real HTTP server, Debian's chromium through Playwright.

`LiveServer` serves the test's app (its database, the test's manual clock)
with werkzeug's threaded server on a free port of 127.0.0.1. Chromium is
Debian's (`CHROMIUM`, else `chromium` on the PATH, else /usr/bin/chromium):
Playwright's own browser downloads are not reachable here, so it is launched
by `executable_path`. `Person` is one signed-in user in their own browser
context (their own cookies); `shot` saves a full-page screenshot as
tests/output/<test>/<NN>-<name>.png (and in the test's tmp_path).
"""
from __future__ import annotations

import os
import re
import shutil
import threading
from pathlib import Path

from werkzeug.serving import make_server

OUTPUT = Path(__file__).resolve().parent / "output"
PASSWORD = "console pass 1"


def chromium_path() -> str | None:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    return found if found and Path(found).exists() else None


class LiveServer:
    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.thread.join(10)


class Shots:
    """Numbered screenshots of one test, listed in `names`."""

    def __init__(self, test_name: str, tmp_path: Path):
        self.folder = OUTPUT / re.sub(r"[^\w.-]", "_", test_name)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.tmp = tmp_path / "screenshots"
        self.tmp.mkdir(exist_ok=True)
        self.names: list[str] = []

    def __call__(self, page, name: str) -> Path:
        file = f"{len(self.names) + 1:02d}-{name}.png"
        path = self.folder / file
        page.screenshot(path=str(path), full_page=True)
        shutil.copy(path, self.tmp / file)
        self.names.append(file)
        return path


class Person:
    """One user signed in to the console in a browser context of their own."""

    def __init__(self, browser, server: LiveServer, username: str, password: str = PASSWORD):
        self.username = username
        self.server = server
        self.context = browser.new_context(locale="zh-CN", viewport={"width": 1400, "height": 900})
        self.context.set_default_timeout(30_000)
        self.page = self.context.new_page()
        self.page.goto(server.url + "/")
        self.page.fill("#username", username)
        self.page.fill("#password", password)
        self.page.click("#signin")
        self.page.wait_for_load_state()
        assert "/console/signin" not in self.page.url, f"{username} could not sign in"

    def go(self, path: str):
        return self.page.goto(self.server.url + path)

    def fill_form(self, values: dict, leave_out: tuple = ()) -> None:
        """Fill the generated task form: the given values, and any other required box with something valid."""
        page = self.page
        for box in page.query_selector_all("#task-form .field"):
            name = box.get_attribute("data-field")
            if name in leave_out:
                continue
            control = box.query_selector("select, textarea, input")
            tag = control.evaluate("e => e.tagName.toLowerCase()")
            value = values.get(name)
            if value is None and control.get_attribute("required") is None:
                continue
            if tag == "select":
                if value is None:
                    options = [o.get_attribute("value") for o in control.query_selector_all("option")]
                    value = next(o for o in options if o)
                control.select_option(value)
            else:
                control.fill(str(value if value is not None else "已按要求办理"))

    def open_task(self, element: str, case_no: str, scope: str = "candidate") -> None:
        self.go(f"/console/tasks?scope={scope}&case={case_no}")
        self.page.click(f'tr[data-element="{element}"] a.task-link')
        self.page.wait_for_selector("h1")

    def close(self):
        self.context.close()
