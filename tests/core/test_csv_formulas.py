"""CSV formula injection (issue 11, finding 5): every CSV the app writes goes through
`core.csv`, which prefixes `'` to a cell a spreadsheet would run as a formula; numbers stay
numbers; the ODM export keeps the raw value."""

import csv
import io
import re
import zipfile
from datetime import timedelta
from decimal import Decimal
from xml.etree import ElementTree

import pytest
from django.urls import reverse
from django.utils import timezone

from core import crf
from core.csv import csv_lines, safe_cell
from followup.services import adverse_event_create, concomitant_medication_create
from labs.models import MscPreparation
from patients import services
from trial.selectors import current_consent_version

from ..audit.factories import audit_row
from ..conftest import enrol
from ..exports.conftest import full_patient  # noqa: F401 (a fixture)
from ..factories import today_minus
from ..followup.factories import ae_values, cm_values

REASON = '=HYPERLINK("http://x","y")'
LOT = "-LOT7+1"
AE_TERM = "+cmd|' /C calc'!A0"
MEDICATION = "@SUM(A1)"
WITNESS = "\t-Witness"
USER_NAME = "=1+2"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


# ---- the rule ---------------------------------------------------------------------------------


@pytest.mark.parametrize("first", FORMULA_START)
def test_each_formula_character_gets_a_leading_quote(first):
    assert safe_cell(f"{first}cmd") == f"'{first}cmd"


@pytest.mark.parametrize(
    "value",
    [-3, -3.5, Decimal("-0.10"), "-3.5", "+2", "-1e-05", "-12.50", 0, True, "", None],
)
def test_numbers_empty_and_none_are_left_as_they_are(value):
    assert safe_cell(value) == value


@pytest.mark.parametrize("value", ["-3.5 ", "-3-2", "-inf", "+", "-", "=1", "@1", "-1,5"])
def test_text_that_only_looks_like_a_number_is_neutralised(value):
    assert safe_cell(value) == "'" + value


def test_ordinary_text_and_inner_formula_characters_are_untouched():
    assert safe_cell("Scrotal pain") == "Scrotal pain"
    assert safe_cell("a=b+c") == "a=b+c"
    assert safe_cell("'=already") == "'=already"


def test_the_writer_writes_numbers_as_numbers_and_none_as_empty():
    line = "".join(csv_lines([[-3, Decimal("-1.5"), "-2", None, "=x", "\rx"]]))
    assert next(csv.reader(io.StringIO(line))) == ["-3", "-1.5", "-2", "", "'=x", "'\rx"]


# ---- every CSV the app produces ---------------------------------------------------------------


def _cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def _unsafe(text: str) -> list[str]:
    return [c for c in _cells(text) if c.startswith(FORMULA_START) and not NUMBER.fullmatch(c)]


@pytest.fixture
def formula_data(full_patient, andrologist, site, admin_user):  # noqa: F811
    """Formula-looking text in every kind of data a CSV shows."""
    msc = MscPreparation.objects.get(visit__patient=full_patient)
    msc.ficoll_lot = LOT
    services.crf_save(record=msc, user=andrologist, reason=REASON)
    adverse_event_create(
        patient=full_patient, data=ae_values(onset=today_minus(3), term=AE_TERM), user=andrologist
    )
    concomitant_medication_create(
        patient=full_patient,
        data=cm_values(start=today_minus(3), medication=MEDICATION, indication="-x"),
        user=andrologist,
    )
    second = enrol(site, andrologist, name="Other Patient", days_ago=10)
    services.consent_record(
        patient=second,
        user=andrologist,
        obtained_by=andrologist,
        consent_version=current_consent_version(protocol=site.protocol),
        signed_at=timezone.now() - timedelta(days=10),
        witness_name=WITNESS,
    )
    andrologist.first_name = USER_NAME
    andrologist.save()
    # At night last week, so the out-of-hours section shows it; and one from the database.
    night = timezone.localtime().replace(hour=23, minute=30) - timedelta(days=7)
    audit_row(
        at=night,
        user=andrologist,
        patient=full_patient,
        reason=REASON,
        old_value="-a",
        new_value="-3.5",
    )
    audit_row(at=night, user=None, record=site, user_name="database:edc", new_value="@b")
    return full_patient


def _csv_endpoints():
    urls = [reverse("exports:form-csv", args=[d.code]) for d in crf.all_definitions()]
    urls += [
        reverse(name)
        for name in (
            "exports:analysis-csv",
            "exports:adverse-events-csv",
            "exports:concomitant-medications-csv",
            "exports:dictionary-csv",
            "reports:results-csv",
        )
    ]
    urls += [reverse("audit:trail") + "?format=csv"]
    urls += [
        reverse("monitoring:audit-review") + f"?format=csv&section={section}"
        for section in ("per-user", "after-signature", "out-of-hours", "late")
    ]
    urls += [reverse("monitoring:audit-review") + "?format=csv&section=outside-application"]
    urls += [reverse("monitoring:consent-audit") + "?format=csv"]
    urls += [reverse("monitoring:user-access") + f"?format={f}" for f in ("csv", "history-csv")]
    return urls


def _body(response) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


def test_no_cell_of_any_csv_starts_a_formula_and_the_odm_keeps_the_raw_value(
    client, admin_user, formula_data
):
    client.force_login(admin_user)
    texts = {}
    for url in _csv_endpoints():
        response = client.get(url)
        assert response.status_code == 200, url
        assert response["Content-Type"].startswith("text/csv"), url
        texts[url] = _body(response).decode()
    bundle = zipfile.ZipFile(io.BytesIO(_body(client.get(reverse("exports:bundle-zip")))))
    for name in bundle.namelist():
        if name.endswith(".csv"):
            texts[f"bundle:{name}"] = bundle.read(name).decode()

    assert {url: _unsafe(text) for url, text in texts.items() if _unsafe(text)} == {}
    cells = {c for text in texts.values() for c in _cells(text)}
    # The values are there, as text a spreadsheet shows rather than runs.
    for value in (REASON, LOT, AE_TERM, MEDICATION, WITNESS, "-a", "@b"):
        assert "'" + value in cells, value
    assert any(c.startswith(f"'{USER_NAME}") for c in cells)
    # A negative number is data and stays as it is (the statistician's columns).
    assert "-3.5" in cells and "'-3.5" not in cells

    odm = _body(client.get(reverse("exports:odm-xml"))).decode()
    values = {e.text for e in ElementTree.fromstring(odm).iter() if e.text} | {
        v for e in ElementTree.fromstring(odm).iter() for v in e.attrib.values()
    }
    assert REASON in values and LOT in values
    assert "'" + REASON not in values and "'" + LOT not in values
