"""Two users on one form (issue 10): a stale save never reverts what someone else changed
meanwhile, and never blames the user for it; the same field changed by both is refused with
who, when and what, keeping what the user typed; the same empty slot entered twice at once
ends in that message, never a 500 or a duplicate."""

import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEntry
from labs.models import HormoneProfile

from ..conftest import make_user
from ..factories import post_data, save_crf
from ..faults import at_once


def _url(patient, visit, code="hormones"):
    return reverse("patients:crf-edit", args=[patient.uuid, visit.uuid, code, 1])


def _loaded_version(response) -> str:
    """The hidden version the page was loaded at, as the browser would post it back."""
    html = response.content.decode()
    return re.search(r'name="loaded_version" value="(\d*)"', html).group(1)


def _client(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


@pytest.fixture
def second_andrologist(site):
    from core.roles import Role

    return make_user("dina", Role.ANDROLOGIST, site)


@pytest.fixture
def hormones(screening_visit, andrologist):
    return save_crf("hormones", screening_visit, andrologist)  # FSH 22.5, LH 9.8


def _open_both(consented_patient, screening_visit, alice, dina):
    url = _url(consented_patient, screening_visit)
    a, b = _client(alice), _client(dina)
    return url, (a, _loaded_version(a.get(url))), (b, _loaded_version(b.get(url)))


def test_a_stale_save_of_another_field_keeps_the_change_made_meanwhile(
    consented_patient, screening_visit, hormones, andrologist, second_andrologist
):
    url, (a, va), (b, vb) = _open_both(
        consented_patient, screening_visit, andrologist, second_andrologist
    )
    assert va == vb != ""
    a.post(
        url,
        post_data("hormones", fsh="12.0", reason_for_change="Lab re-issued FSH", loaded_version=va),
    )
    # Dina's page still shows FSH 22.5; she changes LH only.
    response = b.post(
        url,
        post_data("hormones", lh="7.5", reason_for_change="Typo in LH", loaded_version=vb),
        follow=True,
    )
    assert response.redirect_chain, response.content.decode()[:2000]
    hormones.refresh_from_db()
    assert (hormones.fsh, hormones.lh) == (Decimal("12.0"), Decimal("7.5"))
    # The trail blames each user for their own change only.
    changes = AuditEntry.objects.filter(
        object_id=hormones.pk, action="update", form_code="hormones"
    )
    assert sorted(changes.values_list("user_name", "field_name")) == [
        ("alice", "fsh"),
        ("dina", "lh"),
    ]
    # And Dina is told what she kept.
    assert "Kept while you were editing: FSH" in response.content.decode()
    assert "by alice" in response.content.decode()


def test_the_same_field_changed_by_both_is_refused_with_who_when_what_and_keeps_the_typing(
    consented_patient, screening_visit, hormones, andrologist, second_andrologist
):
    url, (a, va), (b, vb) = _open_both(
        consented_patient, screening_visit, andrologist, second_andrologist
    )
    a.post(
        url,
        post_data("hormones", fsh="12.0", reason_for_change="Lab re-issued FSH", loaded_version=va),
    )
    response = b.post(
        url,
        post_data(
            "hormones", fsh="31.0", lh="7.5", reason_for_change="Second opinion", loaded_version=vb
        ),
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Someone saved this form while you were editing it" in html
    assert "FSH (IU/L) was changed to 12 by alice" in html
    assert "Changed meanwhile by alice" in html  # on the field itself
    # What Dina typed is still in the form, and nothing of hers was saved.
    assert 'value="31.0"' in html and 'value="7.5"' in html
    hormones.refresh_from_db()
    assert (hormones.fsh, hormones.lh) == (Decimal("12.00"), Decimal("9.80"))
    # The page now carries the current version: saving again is a deliberate "mine wins".
    again = _loaded_version(response)
    assert int(again) > int(vb)
    b.post(
        url,
        post_data(
            "hormones",
            fsh="31.0",
            lh="7.5",
            reason_for_change="Second opinion",
            loaded_version=again,
        ),
    )
    hormones.refresh_from_db()
    assert (hormones.fsh, hormones.lh) == (Decimal("31.0"), Decimal("7.5"))


def test_a_save_from_the_current_version_is_not_a_conflict(
    client, consented_patient, screening_visit, hormones, andrologist
):
    client.force_login(andrologist)
    url = _url(consented_patient, screening_visit)
    for fsh in ("12.0", "13.0"):
        version = _loaded_version(client.get(url))
        response = client.post(
            url,
            post_data("hormones", fsh=fsh, reason_for_change="Corrected", loaded_version=version),
        )
        assert response.status_code == 302
    hormones.refresh_from_db()
    assert hormones.fsh == Decimal("13.0")


def test_an_empty_slot_entered_meanwhile_shows_theirs_and_keeps_mine(
    consented_patient, screening_visit, andrologist, second_andrologist
):
    url = _url(consented_patient, screening_visit)
    a, b = _client(andrologist), _client(second_andrologist)
    va, vb = _loaded_version(a.get(url)), _loaded_version(b.get(url))
    assert va == vb == "0"
    assert a.post(url, post_data("hormones", loaded_version=va)).status_code == 302
    response = b.post(url, post_data("hormones", fsh="40.0", loaded_version=vb))
    assert response.status_code == 200
    html = response.content.decode()
    assert "alice entered this form" in html and 'value="40.0"' in html
    # Now a correction of Alice's record: it needs a reason, and then Dina's value wins.
    assert 'name="reason_for_change"' in html
    assert HormoneProfile.objects.filter(visit=screening_visit).count() == 1
    b.post(
        url,
        post_data(
            "hormones",
            fsh="40.0",
            reason_for_change="Both of us entered it; mine is from the source",
            loaded_version=_loaded_version(response),
        ),
    )
    assert HormoneProfile.objects.get(visit=screening_visit).fsh == Decimal("40.0")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_users_entering_one_empty_slot_at_once_get_one_record_and_a_message(
    consented_patient, screening_visit, andrologist, second_andrologist
):
    url = _url(consented_patient, screening_visit)
    clients = [_client(andrologist), _client(second_andrologist)]
    responses = at_once(
        *(
            lambda c=c, i=i: c.post(
                url, post_data("hormones", fsh=f"{20 + i}.0", loaded_version="0")
            )
            for i, c in enumerate(clients)
        )
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 302]
    refused = next(r for r in responses if r.status_code == 200).content.decode()
    assert "entered this form" in refused and "while you were typing" in refused
    assert HormoneProfile.objects.filter(visit=screening_visit, voided_at__isnull=True).count() == 1


# ---- the logs and the identity follow the same rule ------------------------------------------


@pytest.mark.parametrize("log", ["ae", "cm"])
def test_a_stale_log_entry_save_keeps_the_other_change_and_refuses_the_same_field(
    log, consented_patient, andrologist, second_andrologist
):
    from django.utils import timezone

    from followup import services as followup
    from followup.models import AdverseEvent, ConcomitantMedication

    from ..followup.factories import ae_values, as_post, cm_values

    today = timezone.localdate()
    if log == "ae":
        values = ae_values(onset=today)
        entry = followup.adverse_event_create(
            patient=consented_patient, data=values, user=andrologist
        )
        mine, theirs, model = {"location": "right testis"}, {"ctcae_grade": "2"}, AdverseEvent
    else:
        values = cm_values(start=today)
        entry = followup.log_entry_create(
            followup.MEDICATIONS, patient=consented_patient, data=values, user=andrologist
        )
        mine, theirs = {"indication": "Hypogonadism"}, {"medication": "Clomifene"}
        model = ConcomitantMedication
    url = reverse(f"followup:{log}-edit", args=[consented_patient.uuid, entry.uuid])
    a, b = _client(andrologist), _client(second_andrologist)
    va, vb = _loaded_version(a.get(url)), _loaded_version(b.get(url))
    posted = as_post(values)
    assert (
        a.post(
            url, {**posted, **theirs, "reason_for_change": "Reassessed", "loaded_version": va}
        ).status_code
        == 302
    )
    # Dina, from the stale page, changes another field: Alice's change stays.
    response = b.post(
        url, {**posted, **mine, "reason_for_change": "Clarified", "loaded_version": vb}
    )
    assert response.status_code == 302
    entry = model.objects.get(pk=entry.pk)
    (mine_field, mine_value), (their_field, their_value) = *mine.items(), *theirs.items()
    assert str(getattr(entry, mine_field)) == mine_value
    assert str(getattr(entry, their_field)) == their_value
    # Again from a stale page, on Alice's field: refused, nothing saved, typing kept.
    response = b.post(
        url,
        {
            **posted,
            their_field: "3" if log == "ae" else "Letrozole",
            "reason_for_change": "Mine",
            "loaded_version": vb,
        },
    )
    assert response.status_code == 200
    assert "Someone saved this form while you were editing it" in response.content.decode()
    assert str(getattr(model.objects.get(pk=entry.pk), their_field)) == their_value


def test_a_stale_identity_save_keeps_the_phone_changed_meanwhile(
    consented_patient, andrologist, second_andrologist
):
    url = reverse("patients:identity-edit", args=[consented_patient.uuid])
    a, b = _client(andrologist), _client(second_andrologist)
    va, vb = _loaded_version(a.get(url)), _loaded_version(b.get(url))
    base = {"full_name": "Ahmed Secretname", "phone": "+20 111", "national_id": "29001011234567"}
    a.post(
        url, {**base, "phone": "+20 222", "reason_for_change": "New number", "loaded_version": va}
    )
    response = b.post(
        url,
        {**base, "address": "Cairo", "reason_for_change": "Address given", "loaded_version": vb},
    )
    assert response.status_code == 302
    identity = consented_patient.identity
    identity.refresh_from_db()
    assert (identity.phone, identity.address) == ("+20 222", "Cairo")


# ---- state changes: a query closed twice, a consent withdrawn twice ------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_monitors_closing_one_query_at_once_close_it_once(
    consented_patient, screening_visit, andrologist, monitor, site
):
    from core.roles import Role
    from monitoring.models import DataQuery, QueryMessage
    from monitoring.services import query_open

    exam = save_crf("examination", screening_visit, andrologist)
    query = query_open(record=exam, field_name="weight_kg", question="Check", user=monitor)
    other = make_user("mo", Role.MONITOR, site)
    url = reverse("monitoring:query-detail", args=[query.uuid])
    clients = [_client(monitor), _client(other)]
    responses = at_once(
        *(
            lambda c=c, i=i: c.post(url, {"action": "close", "text": f"ok {i}"})
            for i, c in enumerate(clients)
        )
    )
    assert all(r.status_code in (200, 302) for r in responses)
    assert DataQuery.objects.get().status == DataQuery.Status.CLOSED
    assert QueryMessage.objects.filter(kind=QueryMessage.Kind.CLOSE).count() == 1


def test_a_stale_page_cannot_close_a_query_closed_meanwhile(
    consented_patient, screening_visit, andrologist, monitor
):
    from monitoring.models import DataQuery
    from monitoring.services import query_close, query_open

    exam = save_crf("examination", screening_visit, andrologist)
    query = query_open(record=exam, field_name="weight_kg", question="Check", user=monitor)
    stale = DataQuery.objects.get(pk=query.pk)  # what the second page loaded
    query_close(query=query, text="Fine", user=monitor)
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="already closed"):
        query_close(query=stale, text="Fine too", user=monitor)
