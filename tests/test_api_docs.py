"""Swagger UI on an offline network: /api/docs loads no external asset, and every one it loads answers."""
from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.refs += [value for name, value in attrs if name in ("src", "href") and value]


def test_the_docs_page_loads_only_local_assets_and_each_answers(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    parser = _Refs()
    parser.feed(html)
    assert len(parser.refs) >= 3, parser.refs  # the stylesheet, the preset and the bundle
    for ref in parser.refs:
        url = urlsplit(urljoin("http://localhost/api/docs", ref))
        assert url.netloc == "localhost", f"{ref} is not served by this server"
        asset = client.get(url.path)
        assert asset.status_code == 200 and len(asset.data) > 1000, ref
    assert re.search(r'url: "/api/openapi.json"', html)
    assert '"validatorUrl": null' in html  # no badge image from validator.swagger.io
    assert "cdn" not in html.lower() and "https://" not in html


def test_an_unknown_asset_is_a_404_not_a_file_outside_the_bundle(client):
    assert client.get("/api/docs/assets/nothing.js").status_code == 404
    assert client.get("/api/docs/assets/../../../../etc/passwd").status_code == 404
    assert client.get("/api/docs/assets/%2e%2e/%2e%2e/__init__.py").status_code == 404
