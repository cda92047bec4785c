import json

import pytest
from django.core.exceptions import ValidationError

from trial import protocol_file
from trial.models import VisitDefinition
from trial.services import protocol_load

EXPECTED = {
    # code: (kind, anchor, target day, before, after)
    "SCR": ("screening", "consent", 0, 0, 90),
    "D0": ("procedure", "procedure", 0, 0, 0),
    "M4": ("scheduled", "procedure", 120, 14, 14),
    "M6": ("scheduled", "procedure", 180, 14, 14),
    "M8": ("scheduled", "procedure", 240, 14, 14),
    "M10": ("scheduled", "procedure", 300, 14, 14),
    "M12": ("scheduled", "procedure", 360, 14, 14),
    "UNS": ("unscheduled", "none", None, 0, 0),
    "EOS": ("end", "none", None, 0, 0),
}


def test_the_protocol_loads_with_its_nine_visits_and_windows(protocol):
    visits = list(protocol.visits.order_by("order"))
    assert [v.code for v in visits] == list(EXPECTED)
    for v in visits:
        assert (v.kind, v.anchor, v.target_day, v.window_before, v.window_after) == EXPECTED[v.code]
    assert protocol.registry_id == "NCT02025270"
    assert sorted(protocol.sites.values_list("code", flat=True)) == ["AND", "BEN"]
    scr = protocol.visits.get(code="SCR")
    assert ("semen_analysis", 3) in scr.expected_forms


def test_loading_twice_changes_nothing(protocol, settings):
    again = protocol_load(path=settings.PROTOCOL_FILE)
    assert again.pk == protocol.pk
    assert VisitDefinition.objects.count() == 9


def test_another_protocol_of_the_same_shape_loads_from_its_own_file(db, tmp_path, settings):
    data = protocol_file.read(settings.PROTOCOL_FILE)
    data.update(registry_id="NCT99999999", short_name="OTHER")
    data["sites"] = [{"code": "XYZ", "name": "Another clinic"}]
    # A 3-monthly schedule instead of 2-monthly: configuration, not code.
    data["visits"] = [v for v in data["visits"] if v["code"] in ("SCR", "D0", "UNS", "EOS")] + [
        {
            "code": "M3",
            "name": "Month 3",
            "kind": "scheduled",
            "anchor": "procedure",
            "target_day": 90,
            "window_before": 7,
            "window_after": 7,
            "forms": [{"code": "semen_analysis"}],
        },
    ]
    path = tmp_path / "other.json"
    path.write_text(json.dumps(data))
    other = protocol_load(path=path)
    assert other.visits.get(code="M3").window_before == 7
    assert other.sites.get().code == "XYZ"


def test_a_broken_protocol_file_is_refused_with_its_reasons(db, tmp_path, settings):
    data = protocol_file.read(settings.PROTOCOL_FILE)
    data["visits"].append(dict(data["visits"][0]))  # duplicate SCR
    data["visits"].append({"code": "MX", "name": "?", "kind": "scheduled", "anchor": "moon"})
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValidationError) as exc:
        protocol_load(path=path)
    text = " ".join(exc.value.messages)
    assert "not unique" in text and "unknown anchor" in text and "needs a target_day" in text


def test_the_system_check_reports_an_unreadable_protocol_file(settings, tmp_path):
    from trial.checks import protocol_file_is_valid

    settings.PROTOCOL_FILE = tmp_path / "missing.json"
    errors = protocol_file_is_valid(None)
    assert [e.id for e in errors] == ["trial.E001"]
