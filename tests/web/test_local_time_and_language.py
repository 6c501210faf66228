"""The site's time zone and languages: settings, times shown in the zone, translations, wording files.

Pacific/Auckland is used because its date differs from UTC for half of every day: 2023-05-01
12:30 UTC is 2023-05-02 00:30 in New Zealand (NZST, UTC+12, in May). The catalogue of the
translation test is written at test time (:func:`write_mo`), so no ``msgfmt`` is needed.
"""

from __future__ import annotations

import datetime as dt
import struct
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.urls import reverse
from django.utils import timezone, translation

from alliance.web.audit.models import AuditEvent
from alliance.web.capture import recording
from alliance.web.capture.instrument_forms import form_instrument, wording_file
from alliance.web.config import build_settings

from .test_audit_page import PAGE, read_csv, site_change
from .webapp import STUDY, client_for

AUCKLAND = "Pacific/Auckland"
# 12:30 UTC on 1 May 2023 is 00:30 on 2 May in Auckland (NZST, UTC+12).
EVENT_AT = dt.datetime(2023, 5, 1, 12, 30, tzinfo=dt.UTC)


def write_mo(path: Path, messages: dict[str, str]) -> Path:
    """A GNU gettext catalogue (``.mo``) holding ``messages`` (msgid → msgstr), UTF-8.

    The format (GNU gettext manual, "The Format of GNU MO Files"): a header of seven 32-bit
    little-endian words — magic ``0x950412de``, revision 0, the number of strings N, the offsets of
    the table of original strings and of the table of translations, and a hash table size of 0 —
    then the two tables of N (length, offset) pairs, originals sorted, then the NUL-terminated
    strings. The entry of the empty msgid is the header that names the charset.
    """
    entries = {"": "Content-Type: text/plain; charset=UTF-8\nPlural-Forms: nplurals=2; plural=(n != 1);\n",
               **messages}
    keys = sorted(entries)
    originals = [k.encode("utf-8") for k in keys]
    translations = [entries[k].encode("utf-8") for k in keys]
    n = len(keys)
    tables = 7 * 4
    strings = tables + 2 * n * 8
    table_originals, table_translations, data = [], [], b""
    for text in originals:
        table_originals.append((len(text), strings + len(data)))
        data += text + b"\0"
    for text in translations:
        table_translations.append((len(text), strings + len(data)))
        data += text + b"\0"
    header = struct.pack("<7I", 0x950412DE, 0, n, tables, tables + n * 8, 0, strings + len(data))
    body = b"".join(struct.pack("<2I", *pair) for pair in table_originals + table_translations)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + body + data)
    return path


def environ(tmp_path, **more) -> dict[str, str]:
    return {"ALLIANCE_DATA_DIR": str(tmp_path), "ALLIANCE_SECRET_KEY": "x" * 50, **more}


# -- settings ----------------------------------------------------------------------------------------

def test_time_zone_and_languages_come_from_the_environment(tmp_path):
    settings = build_settings(environ(tmp_path, ALLIANCE_TIME_ZONE=AUCKLAND, ALLIANCE_LANGUAGES="de, en",
                                      ALLIANCE_LOCALE_DIR=str(tmp_path / "locale")))
    assert settings["TIME_ZONE"] == AUCKLAND and settings["USE_TZ"] is True
    assert settings["LANGUAGES"] == [("de", "German"), ("en", "English")] and settings["LANGUAGE_CODE"] == "de"
    assert settings["LOCALE_PATHS"][0] == tmp_path / "locale"
    middleware = settings["MIDDLEWARE"]
    locale = middleware.index("django.middleware.locale.LocaleMiddleware")
    assert middleware.index("django.contrib.sessions.middleware.SessionMiddleware") < locale < \
        middleware.index("django.middleware.common.CommonMiddleware")
    defaults = build_settings(environ(tmp_path))
    assert defaults["TIME_ZONE"] == "UTC" and defaults["LANGUAGES"] == [("en", "English")]
    assert defaults["LANGUAGE_CODE"] == "en" and len(defaults["LOCALE_PATHS"]) == 1


@pytest.mark.parametrize("name", ["Europe/Berln", "UTC+2", "../etc/passwd", "CEST "])
def test_a_wrong_time_zone_is_a_startup_error_naming_the_variable(tmp_path, name):
    with pytest.raises(ImproperlyConfigured, match="ALLIANCE_TIME_ZONE must be an IANA time zone name") as error:
        build_settings(environ(tmp_path, ALLIANCE_TIME_ZONE=name))
    assert repr(name.strip()) in str(error.value) and "Europe/Berlin" in str(error.value)


def test_a_language_django_does_not_know_is_a_startup_error(tmp_path):
    with pytest.raises(ImproperlyConfigured, match=r"ALLIANCE_LANGUAGES has 'xx', which Django does not know"):
        build_settings(environ(tmp_path, ALLIANCE_LANGUAGES="en,xx"))


# -- times shown in the site's zone, stored in UTC --------------------------------------------------

def test_the_audit_page_shows_local_time_and_the_database_holds_utc(client, accounts, web_study, settings):
    settings.TIME_ZONE = AUCKLAND
    event = site_change(web_study, "Wellington", at=EVENT_AT)
    body = client_for(client, accounts, "admin").get(PAGE, {"participant": "P004", "action": "change"}).content.decode()
    assert '<time datetime="2023-05-02T00:30:00+12:00">2023-05-02 00:30:00</time>' in body
    assert f"When ({AUCKLAND})" in body and f"Times in {AUCKLAND}" in body
    with connection.cursor() as cursor:  # SQLite stores the text Django wrote: UTC
        cursor.execute(f"SELECT at FROM {AuditEvent._meta.db_table} WHERE id = %s", [event.pk])
        stored = cursor.fetchone()[0]
    assert str(stored).startswith("2023-05-01 12:30:00")


def test_the_audit_csv_has_utc_and_local_time(client, accounts, web_study, settings):
    settings.TIME_ZONE = AUCKLAND
    event = site_change(web_study, "Wellington", at=EVENT_AT)
    rows = read_csv(client_for(client, accounts, "admin").post(PAGE, {"participant": "P004", "action": "change"}))
    row = next(r for r in rows if r["event_id"] == str(event.pk))
    assert row["at"] == "2023-05-01T12:30:00.000000Z" and row["at_local"] == "2023-05-02T00:30:00+12:00"


def test_the_audit_filters_are_days_of_the_sites_zone(client, accounts, web_study, settings):
    settings.TIME_ZONE = AUCKLAND
    event = site_change(web_study, "Wellington", at=EVENT_AT)
    client_for(client, accounts, "admin")
    on = client.get(PAGE, {"participant": "P004", "since": "2023-05-02", "until": "2023-05-02"})
    before = client.get(PAGE, {"participant": "P004", "since": "2023-05-01", "until": "2023-05-01"})
    assert f'id="event-{event.pk}"' in on.content.decode()
    assert f'id="event-{event.pk}"' not in before.content.decode()
    assert f"{AUCKLAND}, inclusive." in on.content.decode()


def test_the_dashboard_shows_the_analysis_time_in_the_sites_zone(client, accounts, web_study, settings, tmp_path):
    from alliance.web.monitor.models import AnalysisRun

    settings.TIME_ZONE = AUCKLAND
    settings.DATA_DIR = tmp_path
    AnalysisRun.objects.create(study=web_study, status=AnalysisRun.Status.DONE, output_dir=str(tmp_path),
                               n_participants=6, seconds=1.0, finished_at=EVENT_AT)
    body = client_for(client, accounts, "admin").get(reverse("monitor:study", kwargs={"study": STUDY})).content.decode()
    assert f"Latest analysis: 2023-05-02 00:30 {AUCKLAND}, 6 participants" in body


def test_today_is_the_sites_day(settings):
    settings.TIME_ZONE = AUCKLAND
    with timezone.override(AUCKLAND):
        assert timezone.localtime(EVENT_AT).date() == dt.date(2023, 5, 2)


# -- translations ----------------------------------------------------------------------------------

@pytest.fixture
def german(settings, tmp_path):
    """The site offers English and German; a German catalogue in a site locale folder."""
    write_mo(tmp_path / "locale" / "de" / "LC_MESSAGES" / "django.mo",
             {"Log in": "Anmelden", "Studies": "Studien", "Times in %(zone)s": "Zeiten in %(zone)s"})
    settings.LANGUAGES = [("en", "English"), ("de", "German")]
    settings.LOCALE_PATHS = [tmp_path / "locale", *settings.LOCALE_PATHS]
    yield tmp_path
    translation.activate(settings.LANGUAGE_CODE)


def test_a_language_with_a_catalogue_is_translated(client, db, german):
    page = client.get(reverse("accounts:login"), HTTP_ACCEPT_LANGUAGE="de")
    body = page.content.decode()
    assert page.status_code == 200 and '<html lang="de">' in body
    assert "<h1>Anmelden</h1>" in body and "Zeiten in UTC" in body
    # A text without a translation stays English; another language gets English.
    assert "Participants do not need an account" in body
    english = client.get(reverse("accounts:login"), HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "<h1>Log in</h1>" in english and '<html lang="en">' in english


def test_the_language_switcher_is_shown_only_with_more_than_one_language(client, db, german, settings):
    body = client.get(reverse("accounts:login")).content.decode()
    assert f'action="{reverse("set_language")}"' in body and '<option value="de" lang="de"' in body
    settings.LANGUAGES = [("en", "English")]
    assert 'name="language"' not in client.get(reverse("accounts:login")).content.decode()


def test_the_switcher_sets_the_language_of_later_pages(client, db, german):
    response = client.post(reverse("set_language"), {"language": "de", "next": reverse("accounts:login")})
    assert response.status_code == 302 and response["Location"] == reverse("accounts:login")
    assert "<h1>Anmelden</h1>" in client.get(reverse("accounts:login")).content.decode()


# -- wording files per language --------------------------------------------------------------------

@pytest.fixture
def wording(settings, tmp_path):
    """A site's wording folder: a German file and a file for every language, for the WAI-SR."""
    folder = tmp_path / "wording"
    (folder / "de").mkdir(parents=True)
    (folder / "de" / "wai_sr.yaml").write_text('wai_sr_1: "Deutscher Wortlaut eins"\n', encoding="utf-8")
    (folder / "wai_sr.yaml").write_text('wai_sr_1: "Site wording one"\n', encoding="utf-8")
    settings.WORDING_DIR = folder
    return folder


def test_wording_files_are_chosen_by_language_then_the_base_file_then_the_bank(wording, settings):
    first = lambda instrument: instrument.items[0].text  # noqa: E731
    assert first(form_instrument("wai_sr", "de")) == "Deutscher Wortlaut eins"
    assert first(form_instrument("wai_sr", "de-at")) == "Deutscher Wortlaut eins"  # the main language's folder
    assert first(form_instrument("wai_sr", "fr")) == "Site wording one"
    with translation.override("de"):  # the active language when none is given, as views call it
        assert first(form_instrument("wai_sr")) == "Deutscher Wortlaut eins"
    with translation.override("en"):
        assert first(form_instrument("wai_sr")) == "Site wording one"
    (wording / "wai_sr.yaml").unlink()
    from alliance import instruments as bank

    assert form_instrument("wai_sr", "fr").items[0].text == bank.get("wai_sr").items[0].text
    assert wording_file("wai_sr", "../..") is None  # only a language code names a folder


def test_the_private_form_shows_the_german_wording_when_the_browser_asks_for_it(client, web_study, wording, german):
    from alliance.web.audit.log import AuditLog
    from alliance.web.capture import models as m

    log = AuditLog(actor="test:setup", study=web_study)
    recording.enrol(web_study, participant_id="P100", arm=web_study.arms.get(code="immediate"),
                    enrolled_on=timezone.localdate(), log=log)
    participant = m.Participant.objects.get(study=web_study, participant_id="P100")
    token, _ = recording.create_private_link(participant, web_study.timepoints.get(code="prep"), "wai_sr",
                                             days=7, log=log)
    log.write()
    url = reverse("capture:private_form", kwargs={"token": token})
    assert "Deutscher Wortlaut eins" in client.get(url, HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Site wording one" in client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
