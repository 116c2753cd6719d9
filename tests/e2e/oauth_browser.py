"""A browser as OAuth sees one: a cookie jar, redirects followed one at a time across config-api
(http) and the sandbox provider (https, verified with its CA), and the consent form filled in as a
person would. No shortcut: every step is the request a browser would make."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from mailbridge.devstack.certs import client_ssl_context

MAX_REDIRECTS = 10


@dataclass
class ConsentForm:
    action: str
    hidden: dict[str, str] = field(default_factory=dict)
    email: str = ""
    scopes: list[str] = field(default_factory=list)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.form: ConsentForm | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {name: value or "" for name, value in attrs}
        if tag == "form" and self.form is None:
            self.form = ConsentForm(action=a.get("action", ""))
        elif tag == "input" and self.form is not None:
            self._input(self.form, a)

    @staticmethod
    def _input(form: ConsentForm, a: dict[str, str]) -> None:
        kind, name, value = a.get("type", "text"), a.get("name", ""), a.get("value", "")
        if kind == "hidden":
            form.hidden[name] = value
        elif kind == "checkbox" and name == "scope" and "checked" in a:
            form.scopes.append(value)
        elif name == "email":
            form.email = value


def consent_form(page: httpx.Response) -> ConsentForm:
    parser = _FormParser()
    parser.feed(page.text)
    assert parser.form is not None, f"no consent form at {page.url}: {page.text[:300]}"
    return parser.form


class Browser:
    def __init__(self, ca_file: Path) -> None:
        self.http = httpx.Client(verify=client_ssl_context(ca_file), timeout=60)
        self.visited: list[str] = []
        self.cookies_set: list[str] = []  # every Set-Cookie value seen, for the leak test

    def close(self) -> None:
        self.http.close()

    def open(self, url: str, *, stop_at: str | None = None) -> httpx.Response:
        """GET ``url`` and follow redirects; with ``stop_at``, hand back the redirect whose target
        starts with it, unfollowed (to replay or tamper with it)."""
        return self._follow(self.http.get(url), stop_at)

    def consent(
        self,
        page: httpx.Response,
        *,
        email: str | None = None,
        untick: tuple[str, ...] = (),
        action: str = "allow",
        stop_at: str | None = None,
    ) -> httpx.Response:
        """Fill in the provider's consent page and submit it."""
        form = consent_form(page)
        fields: dict[str, str | list[str]] = {**form.hidden, "email": email or form.email}
        fields["scope"] = [scope for scope in form.scopes if scope not in untick]
        fields["action"] = action
        posted = self.http.post(urljoin(str(page.url), form.action), data=fields)
        return self._follow(posted, stop_at)

    def _follow(self, response: httpx.Response, stop_at: str | None) -> httpx.Response:
        for _ in range(MAX_REDIRECTS):
            self.visited.append(str(response.url))
            self.cookies_set += [
                cookie.split(";", 1)[0].partition("=")[2]
                for cookie in response.headers.get_list("set-cookie")
            ]
            if not response.is_redirect:
                return response
            target = urljoin(str(response.url), response.headers["location"])
            if stop_at is not None and target.startswith(stop_at):
                return response
            response = self.http.get(target)
        raise AssertionError(f"more than {MAX_REDIRECTS} redirects: {self.visited}")

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def location(response: httpx.Response) -> str:
    return urljoin(str(response.url), response.headers["location"])


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def posted_message(page: httpx.Response) -> str:
    """The JSON the callback page posts to its opener (the page's data block)."""
    found = re.search(
        r'<script type="application/json" id="result">(.*?)</script>', page.text, re.S
    )
    assert found is not None, page.text[:500]
    return found.group(1)
