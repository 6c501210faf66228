"""Every user-visible text of the converted templates is inside a translate tag (Django i18n).

:func:`untranslated` takes a template's source, removes what is not text a person reads — comments,
``{{ variables }}``, ``{% tags %}`` (a ``{% translate "…" %}`` tag goes with them), whole
``{% blocktranslate %}…{% endblocktranslate %}`` blocks, the ``{% block body_class %}`` block (CSS
class names that ``base.html`` puts in ``<body class="…">``), HTML tags and entities — and returns
the words that remain, and those in the attributes a person sees or hears (``aria-label``,
``title``, ``placeholder``, ``alt``). Words of :data:`ALLOWED` may stay; any other is text a
translator would never see. A template converted to i18n is added to :data:`CONVERTED`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "src" / "alliance" / "web"

CONVERTED = [
    "templates/base.html",
    "templates/403.html",
    "templates/403_csrf.html",
    "templates/404.html",
    "templates/500.html",
    "templates/_field.html",
    "templates/_form_errors.html",
    "accounts/templates/accounts/login.html",
    "accounts/templates/accounts/members.html",
    "accounts/templates/accounts/set_password.html",
    "accounts/templates/accounts/two_factor.html",
    "accounts/templates/accounts/two_factor_verify.html",
    "accounts/templates/accounts/invitation_email.txt",
    "audit/templates/audit/audit_trail.html",
    "monitor/templates/monitor/_alert.html",
    "monitor/templates/monitor/_nav.html",
    "monitor/templates/monitor/alert_list.html",
    "monitor/templates/monitor/participant_dashboard.html",
    "monitor/templates/monitor/study_dashboard.html",
    "capture/templates/capture/study_list.html",
    "capture/templates/capture/study_create.html",
    "capture/templates/capture/study_detail.html",
    "capture/templates/capture/study_import.html",
    "capture/templates/capture/participant_form.html",
    "capture/templates/capture/dosing_form.html",
    "capture/templates/capture/exports.html",
    "capture/templates/capture/form_page.html",
    "capture/templates/capture/participant_detail.html",
    "capture/templates/capture/link_form.html",
    "capture/templates/capture/form_submitted.html",
    "capture/templates/capture/_autosave_status.html",
    "capture/templates/capture/_crumbs.html",
    "capture/templates/capture/visit.html",
    "capture/templates/capture/opt_out.html",
    "capture/templates/capture/links.html",
    "capture/templates/capture/link_created.html",
    "capture/templates/capture/link_closed.html",
    "capture/templates/capture/form_thanks.html",
    "capture/templates/capture/visit_email.txt",
]

# Words that stay as they are in every language, each with the reason.
ALLOWED = {
    "alliance": "the product's name (the brand in the header, the page title's suffix)",
}

_COMMENTS = re.compile(r"{%\s*comment\s*%}.*?{%\s*endcomment\s*%}|{#.*?#}", re.S)
# base.html: <body class="{% block body_class %}{% endblock %}">; what a page puts there is class names.
_CLASS_BLOCK = re.compile(r"{%\s*block\s+body_class\s*%}.*?{%\s*endblock\b[^%]*%}", re.S)
_BLOCKS = re.compile(r"{%\s*blocktranslate\b.*?%}.*?{%\s*endblocktranslate\s*%}", re.S)
_TEMPLATE = re.compile(r"{%.*?%}|{{.*?}}", re.S)
_ATTRIBUTES = re.compile(r"""\b(?:aria-label|title|placeholder|alt)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_RAW = re.compile(r"<(script|style)\b.*?</\1\s*>", re.S | re.I)
_TAGS = re.compile(r"<[^>]*>")
_ENTITIES = re.compile(r"&(?:[A-Za-z]+|#[0-9]+|#x[0-9A-Fa-f]+);")
_WORD = re.compile(r"[^\W\d_]+")


def untranslated(source: str) -> list[str]:
    """The words of a template's source a person would read that no translate tag holds.

    Parameters
    ----------
    source : str
        Django template source.

    Returns
    -------
    list of str
        In order of appearance, without the words of :data:`ALLOWED`.

    Examples
    --------
    >>> untranslated('<h1>{% translate "Log in" %}</h1><p title="Help">Hello {{ name }}</p>')
    ['Help', 'Hello']
    >>> untranslated('{% blocktranslate %}Hi {{ name }}{% endblocktranslate %} · alliance')
    []
    """
    text = _TEMPLATE.sub("", _BLOCKS.sub("", _CLASS_BLOCK.sub("", _COMMENTS.sub("", source))))
    words = [w for match in _ATTRIBUTES.finditer(text) for w in _WORD.findall(match.group(1) or match.group(2) or "")]
    text = _ENTITIES.sub(" ", _TAGS.sub(" ", _RAW.sub(" ", text)))
    words += _WORD.findall(text)
    return [w for w in words if w not in ALLOWED]


@pytest.mark.parametrize("template", CONVERTED)
def test_every_visible_text_is_marked_for_translation(template):
    source = (WEB / template).read_text(encoding="utf-8")
    if re.search(r"{%\s*(?:translate|blocktranslate)\b", source):
        assert re.search(r"{%\s*load\s[^%]*\bi18n\b", source), f"{template} does not load the i18n tags"
    assert untranslated(source) == [], f"{template} has text outside translate tags"


def test_the_lint_finds_text_outside_translate_tags():
    assert untranslated("<button>Save</button>") == ["Save"]
    assert untranslated('<nav aria-label="Site">') == ["Site"]
    assert untranslated('<nav aria-label="{% translate \'Site\' %}">') == []
    assert untranslated("{# a comment #}{% if x %}{{ x.label }}{% endif %} › — 12 %") == []
    assert untranslated("{% blocktranslate count n=n %}{{ n }} day{% plural %}{{ n }} days{% endblocktranslate %}") == []
    assert untranslated("<p>Nothing was {% translate 'stored' %}</p>") == ["Nothing", "was"]
    assert untranslated("{% block body_class %}{% if x %}participant{% endif %}{% endblock %}<p>Hi</p>") == ["Hi"]
    assert untranslated("{% block content %}Hi{% endblock %}") == ["Hi"]
