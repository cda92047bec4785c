"""Before a first electronic signature the signer accepts, once, that it is the legally binding
equivalent of a handwritten one (21 CFR 11.10(j), 11.100; STANDARDS P11-10). Kept on record,
append-only, audited."""

from datetime import UTC

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError
from django.urls import reverse

from audit.models import AuditEntry
from monitoring.models import Signature, SignatureAgreement

from ..factories import complete_screening

SIGN = {"username": "alice", "password": "correct-horse-battery", "meaning": "approval"}


@pytest.fixture
def sign_url(consented_patient, screening_visit, andrologist):
    complete_screening(screening_visit, andrologist)
    return reverse("monitoring:sign-visit", args=[consented_patient.uuid, screening_visit.uuid])


def test_a_first_signature_without_the_agreement_is_refused_and_records_nothing(
    client, andrologist, sign_url
):
    client.force_login(andrologist)
    page = client.get(sign_url).content.decode()
    assert 'name="agree"' in page and "legally binding equivalent" in page
    response = client.post(sign_url, SIGN)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Before your first electronic signature, accept the statement above." in html
    assert 'value="alice"' in html  # what was typed is kept
    assert not Signature.objects.exists() and not SignatureAgreement.objects.exists()


def test_the_agreement_is_recorded_once_with_the_first_signature(
    client, andrologist, sign_url, consented_patient
):
    client.force_login(andrologist)
    response = client.post(sign_url, {**SIGN, "agree": "on"}, follow=True)
    assert "Visit SCR signed" in response.content.decode()
    agreement = SignatureAgreement.objects.get(user=andrologist)
    assert agreement.statement == SignatureAgreement.STATEMENT
    assert AuditEntry.objects.filter(
        content_type__model="signatureagreement", object_id=agreement.pk, user=andrologist
    ).exists()
    # The next signature does not ask again.
    casebook = reverse("monitoring:sign-casebook", args=[consented_patient.uuid])
    assert 'name="agree"' not in client.get(casebook).content.decode()
    client.post(casebook, SIGN)
    assert Signature.objects.count() == 2 and SignatureAgreement.objects.count() == 1


def test_a_refused_signature_does_not_record_the_agreement(
    client, andrologist, monitor, sign_url, consented_patient, screening_visit
):
    from monitoring.services import query_open
    from patients.models import Examination

    query_open(
        record=Examination.objects.get(visit=screening_visit),
        field_name="weight_kg",
        question="Confirm?",
        user=monitor,
    )
    client.force_login(andrologist)
    html = client.post(sign_url, {**SIGN, "agree": "on"}).content.decode()
    assert "still open" in html
    assert not SignatureAgreement.objects.exists()


def test_an_agreement_cannot_be_changed_or_deleted(andrologist):
    agreement = SignatureAgreement.objects.create(user=andrologist, statement="x")
    with pytest.raises(PermissionError):
        agreement.save()
    with pytest.raises(PermissionError):
        agreement.delete()


@pytest.mark.postgres
def test_the_database_refuses_to_rewrite_an_agreement(andrologist):
    SignatureAgreement.objects.create(user=andrologist, statement=SignatureAgreement.STATEMENT)
    for sql in (
        "UPDATE monitoring_signatureagreement SET statement = 'forged'",
        "DELETE FROM monitoring_signatureagreement",
    ):
        with (
            pytest.raises(DatabaseError),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql)
    assert SignatureAgreement.objects.get().statement == SignatureAgreement.STATEMENT


def test_the_user_access_page_shows_who_gave_the_agreement_and_when(
    client, admin_user, andrologist, coordinator
):
    agreement = SignatureAgreement.objects.create(
        user=andrologist, statement=SignatureAgreement.STATEMENT
    )
    client.force_login(admin_user)
    html = client.get(reverse("monitoring:user-access")).content.decode()
    cells = html.split('data-testid="agreement">')[1:]
    shown = {cell.split("<")[0] for cell in cells}
    at = agreement.agreed_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    assert at in shown and "not given" in shown  # alice gave it; carol never signed
