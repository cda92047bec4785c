"""One description of each CRF, read from the registry: the same sections, labels and codes
for the web form, the PDFs and every export."""

from datetime import date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

from core import crf
from exports.metadata import CrfItem, crf_layout
from exports.odm import _odm_value


def _item(data_type, **extra) -> CrfItem:
    values = dict(
        form_code="x",
        name="v",
        label="V",
        data_type=data_type,
        length=None,
        decimals=None,
        unit="",
        choices=(),
        codelist="",
        limits=None,
        required=False,
        stored=True,
    )
    values.update(extra)
    return CrfItem(**values)


def test_each_layout_is_the_web_forms_sections_with_its_labels(protocol):
    for definition in crf.all_definitions():
        layout = crf_layout(definition.code)
        form = definition.form_class()
        assert [s.title for s in layout.sections] == [t for t, _ in definition.form_class.sections]
        for section, (_title, names) in zip(
            layout.sections, definition.form_class.sections, strict=True
        ):
            assert [i.name for i in section.items] == [n for n in names if n in form.fields]
            for item in section.items:
                assert item.label == form.fields[item.name].label


def test_an_input_the_form_converts_is_described_but_not_exported():
    layout = crf_layout("hormones")
    unit = layout.item("testosterone_unit")
    assert unit.stored is False and unit.choices == (("ng/mL", "ng/mL"), ("nmol/L", "nmol/L"))
    assert "testosterone_unit" not in [i.name for i in layout.items]
    assert layout.item("testosterone").unit == "ng/mL"


def test_shared_code_lists_keep_one_name(protocol):
    history = crf_layout("medical_history")
    assert history.item("diabetes").codelist == "NY"
    assert history.item("cryptorchidism_side").codelist == "Laterality"
    assert history.item("smoking").codelist == "MedicalHistory.Smoking"
    assert crf_layout("eligibility").item("incl05").codelist == "NY"


def test_values_are_written_the_same_way_in_the_csv_and_the_odm():
    cairo = datetime(2026, 5, 10, 11, 30, tzinfo=ZoneInfo("Africa/Cairo"))
    moment = _item("datetime")
    assert moment.coded(cairo) == "2026-05-10T08:30:00Z"
    assert _odm_value(moment, cairo.isoformat()) == "2026-05-10T08:30:00Z"
    assert moment.display(cairo) == "10 May 2026 08:30 UTC"
    flag = _item("boolean")
    assert (flag.coded(True), _odm_value(flag, "True"), flag.display(False)) == (
        "true",
        "true",
        "No",
    )
    assert _item("time").coded(time(9, 5)) == "09:05:00"
    assert _item("date").coded(date(2026, 5, 1)) == "2026-05-01"
    assert _item("date").display(date(2026, 5, 1)) == "01 May 2026"
    assert _item("float").coded(Decimal("22.50")) == "22.50"
    coded = _item("text", choices=(("Y", "Yes"), ("N", "No")))
    assert (coded.coded("Y"), coded.decode("Y"), coded.display("N")) == ("Y", "Yes", "No")
    assert coded.display_text("") == "(empty)" and coded.display_text("Y") == "Yes [Y]"
    assert _item("integer").coded(None) == "" and _item("text").display("") == ""
