"""Reading the dashboard's HTML as a browser would: the sign-in form, next-page links, rows.

Just enough of HTML for the benchmark to sign in (with whatever hidden fields, e.g. a CSRF
token, the form carries) and to walk the pages; stdlib only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

ROW = re.compile(r'data-testid="(?:task|run|event)-row"')


@dataclass
class Form:
    """A form's action, method and the fields it would send as it stands."""

    action: str = ""
    method: str = "get"
    fields: dict[str, str] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.next_links: list[str] = []
        self._form: Form | None = None
        self._link: str | None = None
        self._link_text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._form = Form(a.get("action", ""), (a.get("method") or "get").lower())
            self.forms.append(self._form)
        elif tag in ("input", "button") and self._form is not None and a.get("name"):
            self._form.names.append(a["name"])
            if tag == "input" and a.get("type", "text") not in ("submit", "checkbox", "radio"):
                self._form.fields[a["name"]] = a.get("value", "")
        elif tag == "a" and a.get("href"):
            if "next" in a.get("rel", "").split() or a.get("data-testid") == "next-page":
                self.next_links.append(a["href"])
            else:
                self._link, self._link_text = a["href"], ""

    def handle_data(self, data: str) -> None:
        if self._link is not None:
            self._link_text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "a" and self._link is not None:
            if re.match(r"\s*(next|older)\b", self._link_text, re.IGNORECASE):
                self.next_links.append(self._link)
            self._link = None


def _parse(html: str) -> _Forms:
    parser = _Forms()
    parser.feed(html)
    parser.close()
    return parser


def form_with(html: str, field_name: str) -> Form | None:
    """The first form that has a field called ``field_name``."""
    return next((f for f in _parse(html).forms if field_name in f.names), None)


def next_page(html: str) -> str | None:
    """The link to the next page of a list (``rel="next"``, or a link reading Next/Older)."""
    links = _parse(html).next_links
    return links[0] if links else None


def count_rows(html: str) -> int:
    """How many task, run or event rows the page lists."""
    return len(ROW.findall(html))
