"""A questionnaire completed with the keyboard alone, on a phone, from a private link (issue 18).

A participant who cannot use a pointer (or uses a screen reader's browse keys) opens the MEQ30
link on a phone-sized viewport and answers with Tab, the arrow keys and Space only. At every step
the focused element must be visible: inside the viewport and not covered by the sticky Submit bar
or anything else (WCAG 2.4.7 and 2.4.11). A submit with questions left unanswered reloads the page
with focus on the error summary (WCAG 3.3.1); from there a link moves focus to the first
unanswered question, the participant answers the rest and submits.

The error state is photographed to ``docs/screenshots/form-error.png`` when ``ALLIANCE_SCREENSHOTS=1``
(otherwise to a temporary folder).

A second test checks the bar at 200% zoom (a 1280 × 900 screen seen as 640 × 450 CSS pixels): it is
then part of the page's end, not a sticky strip over a third of the screen (WCAG 1.4.10).
"""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.utils import timezone

from alliance.web.audit.log import AuditLog
from alliance.web.capture import models as m
from alliance.web.capture import recording

from .conftest import PHONE
from .test_browser import ROOT, browser_settings  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

ITEMS = 30
# Answer k of item n (0..5); any fixed pattern that uses every answer, including the first (Space).
ANSWER = {n: (n * 7) % 6 for n in range(1, ITEMS + 1)}
LEFT_FOR_LATER = range(21, ITEMS + 1)  # ten unanswered: too many to score the MEQ30 (6 may be missing)

# Where the focused element is, what is on top of its centre, and where the sticky bar is.
FOCUS_STATE = """() => {
  const el = document.activeElement;
  const r = el.getBoundingClientRect();
  const cx = r.left + r.width / 2, cy = r.top + r.height / 2;
  const top = document.elementFromPoint(cx, cy);
  const bar = document.querySelector('.form-actions');
  const barRect = bar ? bar.getBoundingClientRect() : null;
  const sticky = bar ? getComputedStyle(bar).position === 'sticky' : false;
  return {
    tag: el.tagName.toLowerCase(), name: el.getAttribute('name'), value: el.value,
    summary: el.hasAttribute('data-error-summary'), text: (el.innerText || '').slice(0, 80),
    top: r.top, bottom: r.bottom, left: r.left, right: r.right, width: r.width, height: r.height,
    viewport_height: window.innerHeight, viewport_width: window.innerWidth,
    on_top_is_focused: top !== null && (top === el || el.contains(top) || top.contains(el) && top.tagName === 'LABEL'),
    on_top: top ? top.outerHTML.slice(0, 120) : null,
    bar_top: barRect ? barRect.top : null, bar_sticky: sticky,
    outline: getComputedStyle(el).outlineStyle + ' ' + getComputedStyle(el).outlineWidth,
  };
}"""


@pytest.fixture
def meq30_link(web_study):
    log = AuditLog(actor="test:setup", study=web_study)
    participant = recording.enrol(web_study, participant_id="P300", arm=web_study.arms.get(code="immediate"),
                                  enrolled_on=timezone.localdate() - timedelta(days=21), log=log)
    token, _ = recording.create_private_link(participant, web_study.timepoints.get(code="session1"), "meq30",
                                             days=7, log=log)
    log.write()
    return participant, token


def assert_focus_visible(page, where: str) -> dict:
    state = page.evaluate(FOCUS_STATE)
    label = f"{where}: focus on <{state['tag']} name={state['name']!r}> {state['text']!r}"
    assert state["tag"] != "body", f"{where}: focus is lost (on the body)"
    assert state["width"] > 0 and state["height"] > 0, f"{label} has no box"
    assert 0 <= state["top"] and state["bottom"] <= state["viewport_height"], \
        f"{label} is outside the viewport (top {state['top']:.0f}, bottom {state['bottom']:.0f}, " \
        f"viewport {state['viewport_height']})"
    assert 0 <= state["left"] and state["right"] <= state["viewport_width"], f"{label} is cut off sideways"
    if state["bar_sticky"] and state["tag"] == "input":
        assert state["bottom"] <= state["bar_top"], \
            f"{label} is behind the sticky Submit bar (element bottom {state['bottom']:.0f} > bar top " \
            f"{state['bar_top']:.0f})"
    assert state["on_top_is_focused"], f"{label} is covered by {state['on_top']}"
    assert not state["outline"].startswith("none"), f"{label} shows no focus outline ({state['outline']})"
    return state


def tab_to(page, name: str, where: str, limit: int = 12) -> dict:
    """Press Tab until an answer of question ``name`` has focus, checking every stop on the way."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        state = assert_focus_visible(page, where)
        if state["name"] == name:
            return state
    raise AssertionError(f"{where}: {limit} presses of Tab did not reach question {name}")


def choose(page, number: int) -> None:
    """Select the answer with the keyboard: Space takes the first; the arrow keys move and select."""
    answer = ANSWER[number]
    if answer == 0:
        page.keyboard.press("Space")
    for _ in range(answer):
        page.keyboard.press("ArrowRight")
        assert_focus_visible(page, f"question {number}, moving to answer {answer}")
    state = page.evaluate(FOCUS_STATE)
    assert state["name"] == f"meq30_{number}" and state["value"] == str(answer), state


def test_a_participant_completes_the_meq30_with_the_keyboard_on_a_phone(meq30_link, browser_settings, new_page,  # noqa: F811
                                                                        tmp_path):
    participant, token = meq30_link
    phone = new_page(PHONE)
    phone.goto(f"/f/{token}/")
    assert phone.title().startswith("MEQ30")

    for number in range(1, LEFT_FOR_LATER.start):
        tab_to(phone, f"meq30_{number}", f"question {number}")
        choose(phone, number)
    phone.locator("#save-status").filter(has_text="saved").wait_for()

    # Tab on to Submit (past the unanswered questions) and press Enter.
    for _ in range(40):
        phone.keyboard.press("Tab")
        state = assert_focus_visible(phone, "on the way to Submit")
        if state["tag"] == "button" and state["text"].strip() == "Submit":
            break
    else:
        raise AssertionError("Tab never reached the Submit button")
    with phone.expect_navigation():
        phone.keyboard.press("Enter")

    # The page comes back with its problem: the title says so, focus is on the error summary.
    assert phone.title().startswith("Error: MEQ30"), phone.title()
    state = assert_focus_visible(phone, "after the failed submit")
    assert state["summary"], f"focus is on <{state['tag']}> {state['text']!r}, not on the error summary"
    summary = phone.locator("[data-error-summary]")
    assert "Too many items are unanswered" in summary.inner_text()
    assert summary.get_by_role("link").count() == len(LEFT_FOR_LATER)
    assert m.Administration.objects.get(participant=participant, instrument="meq30").status == "draft"
    target = ROOT / "docs" / "screenshots" if os.environ.get("ALLIANCE_SCREENSHOTS") == "1" else tmp_path
    phone.screenshot(path=str(target / "form-error.png"))
    assert (target / "form-error.png").stat().st_size > 5_000

    # The first link in the summary leads to the first unanswered question, focused.
    phone.keyboard.press("Tab")
    state = assert_focus_visible(phone, "the summary's first link")
    assert state["tag"] == "a" and f"Item {LEFT_FOR_LATER.start} is not answered" in state["text"], state
    phone.keyboard.press("Enter")
    state = assert_focus_visible(phone, f"question {LEFT_FOR_LATER.start} from the summary")
    assert state["name"] == f"meq30_{LEFT_FOR_LATER.start}", state
    choose(phone, LEFT_FOR_LATER.start)
    for number in LEFT_FOR_LATER[1:]:
        tab_to(phone, f"meq30_{number}", f"question {number}")
        choose(phone, number)
    phone.keyboard.press("Tab")
    state = assert_focus_visible(phone, "the Submit button")
    assert state["tag"] == "button" and state["text"].strip() == "Submit", state
    with phone.expect_navigation():
        phone.keyboard.press("Enter")

    assert "Thank you" in phone.locator("main").inner_text()
    administration = m.Administration.objects.get(participant=participant, instrument="meq30")
    assert administration.status == "submitted"
    assert administration.scores["total"] == pytest.approx(sum(ANSWER.values()) / ITEMS)


def test_the_submit_bar_does_not_cover_the_form_at_200_percent_zoom(meq30_link, browser_settings, new_page):  # noqa: F811
    _, token = meq30_link
    zoomed = new_page({"width": 640, "height": 450})
    zoomed.goto(f"/f/{token}/")
    bar = zoomed.locator(".form-actions")
    assert bar.evaluate("el => getComputedStyle(el).position") == "static"
    # Even when sticky (a taller screen), the bar takes a small part of it.
    phone = new_page(PHONE)
    phone.goto(f"/f/{token}/")
    height = phone.locator(".form-actions").evaluate("el => el.getBoundingClientRect().height")
    assert phone.locator(".form-actions").evaluate("el => getComputedStyle(el).position") == "sticky"
    assert height / PHONE["height"] < 0.15, f"the sticky bar takes {height / PHONE['height']:.0%} of a phone's height"
