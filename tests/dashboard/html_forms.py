"""Submit a page's form as a browser would: every field's current value, nothing typed."""

from html.parser import HTMLParser


class _FormFields(HTMLParser):
    def __init__(self, form_id: str):
        super().__init__()
        self.form_id = form_id
        self.inside = False
        self.in_template = 0
        self.fields: list[tuple[str, str]] = []
        self._select: str | None = None
        self._select_value: str | None = None
        self._first_option: str | None = None
        self._textarea: str | None = None
        self._text = ""
        self._option: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("id") == self.form_id:
            self.inside = True
        if not self.inside:
            return
        if tag == "template":
            self.in_template += 1
        if self.in_template or "disabled" in a:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.fields.append((name, a.get("value", "on")))
            elif kind not in ("submit", "button", "file"):
                self.fields.append((name, a.get("value") or ""))
        elif tag == "select" and name:
            self._select, self._select_value, self._first_option = name, None, None
        elif tag == "option" and self._select is not None:
            value = a.get("value", "")
            if self._first_option is None:
                self._first_option = value
            if "selected" in a:
                self._select_value = value
        elif tag == "textarea" and name:
            self._textarea, self._text = name, ""

    def handle_endtag(self, tag):
        if not self.inside:
            return
        if tag == "template":
            self.in_template -= 1
        elif tag == "form":
            self.inside = False
        elif tag == "select" and self._select is not None and not self.in_template:
            value = self._select_value if self._select_value is not None else self._first_option
            self.fields.append((self._select, value or ""))
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self.fields.append((self._textarea, self._text.removeprefix("\n")))
            self._textarea = None

    def handle_data(self, data):
        if self._textarea is not None:
            self._text += data


def form_fields(html: str, form_id: str) -> dict[str, list[str]]:
    """The fields the form ``form_id`` would post, as ``{name: [values…]}`` (for Django's test client)."""
    parser = _FormFields(form_id)
    parser.feed(html)
    posted: dict[str, list[str]] = {}
    for name, value in parser.fields:
        posted.setdefault(name, []).append(value)
    return posted
