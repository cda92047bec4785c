"""The results report as a PDF job: the results page's button asks for it (readers of the
results only), the worker builds it with reports.exports.results_pdf, the job page offers it
under the name the synchronous download had; one site and the whole study are two targets."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import resolve, reverse
from django.utils import timezone

from core.roles import Role
from exports import services
from exports.models import PdfJob

from ..exports.conftest import (
    ask_again_form,
    eager_celery,  # noqa: F401 - tasks in-process
)
from .test_results_page import (  # noqa: F401 - the fixtures of the results tables
    other_site_responder,
    pdf_text,
    study,
)


def ask(client, **data):
    """Press the results page's PDF button (with the page's site filter, if any)."""
    return client.post(reverse("exports:results-pdf"), data)


def job_of(response) -> PdfJob:
    assert resolve(response.url).url_name == "job-detail"
    return PdfJob.objects.get(uuid=resolve(response.url).kwargs["job_uuid"])


def built(client, **data) -> tuple[PdfJob, bytes, str]:
    """Ask for the report, build it as the worker does, download it: (job, PDF, header)."""
    job = job_of(ask(client, **data))
    assert services.pdf_job_build(job_id=job.pk) == services.BuildOutcome.BUILT
    download = client.get(reverse("exports:job-download", args=[job.uuid]))
    assert download["Content-Type"] == "application/pdf"
    return job, b"".join(download.streaming_content), download["Content-Disposition"]


def test_the_pdf_button_queues_a_job_the_worker_builds_with_the_tables_and_charts(
    client,
    monitor,
    study,  # noqa: F811
    tmp_path,
    eager_celery,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    client.force_login(monitor)
    html = client.get(reverse("reports:results"), {"site": "BEN"}).content.decode()
    assert f'action="{reverse("exports:results-pdf")}"' in html
    assert '<input type="hidden" name="site" value="BEN">' in html
    with django_capture_on_commit_callbacks(execute=True):  # the task runs, as a worker would
        response = ask(client, site="BEN")
    job = job_of(response)
    assert (job.kind, job.site.code, job.status) == ("results", "BEN", "done")
    page = client.get(response.url).content.decode()
    assert "Results report · site BEN" in " ".join(page.split()) and "Ready" in page
    assert f'href="{reverse("reports:results")}?site=BEN"' in page  # back to the same results
    download = client.get(reverse("exports:job-download", args=[job.uuid]))
    today = timezone.localdate()
    assert download["Content-Disposition"] == (
        f'attachment; filename="noa-msc-results-BEN-{today:%Y-%m-%d}.pdf"'
    )
    content = pdf_text(b"".join(download.streaming_content), tmp_path)
    assert "2/4 = 50.0%" in content
    assert "not yet evaluable: 1" in content
    assert "Fisher's exact" in content
    assert "Time to first sperm" in content
    assert "Which test, when" in content


def test_the_whole_study_report_covers_all_the_users_sites(
    client,
    monitor,
    study,  # noqa: F811
    other_site_responder,  # noqa: F811
    tmp_path,
):
    client.force_login(monitor)
    job, content, disposition = built(client)
    assert job.site is None
    assert "noa-msc-results-all-sites-" in disposition
    assert "3/5 = 60.0%" in pdf_text(content, tmp_path)


def test_one_site_and_the_whole_study_are_two_targets_and_a_second_click_one_job(client, monitor):
    client.force_login(monitor)
    whole = job_of(ask(client))
    ben = job_of(ask(client, site="BEN"))
    again = client.post(reverse("exports:results-pdf"), {"site": "BEN"}, follow=True)
    assert whole != ben and whole.target_key != ben.target_key
    assert again.redirect_chain[-1][0] == reverse("exports:job-detail", args=[ben.uuid])
    assert "already asked for" in again.content.decode()
    assert PdfJob.objects.count() == 2


@pytest.mark.parametrize("role", ["andrologist", "monitor", "admin_user"])
def test_andrologists_monitors_and_admins_may_ask_for_it(client, request, role):
    client.force_login(request.getfixturevalue(role))
    assert job_of(ask(client)).kind == "results"


# Through the CRF PDFs' view: a coordinator may ask for CRF PDFs, but not for this kind.
@pytest.mark.parametrize(("role", "via_crf_pdfs"), [("coordinator", 404), ("lab_technician", 403)])
def test_coordinators_and_lab_technicians_may_not(client, request, role, via_crf_pdfs):
    user = request.getfixturevalue(role)
    client.force_login(user)
    assert ask(client).status_code == 403
    response = client.post(reverse("exports:pdf-request"), {"kind": "results"})
    assert response.status_code == via_crf_pdfs
    with pytest.raises(PermissionDenied):
        services.pdf_job_request(user=user, kind=PdfJob.Kind.RESULTS)
    assert not PdfJob.objects.exists()


def test_it_is_asked_for_with_a_post_only(client, monitor):
    client.force_login(monitor)
    assert client.get(reverse("exports:results-pdf")).status_code == 405
    assert not PdfJob.objects.exists()


def test_another_sites_code_is_not_found(client, andrologist, other_site):
    client.force_login(andrologist)
    assert ask(client, site="AND").status_code == 404
    assert not PdfJob.objects.exists()


def test_a_report_of_a_site_the_user_left_fails_with_the_reason(client, monitor, other_site):
    client.force_login(monitor)
    job = job_of(ask(client, site="AND"))
    monitor.site_memberships.filter(site=other_site).delete()
    assert services.pdf_job_build(job_id=job.pk) == services.BuildOutcome.FAILED
    job.refresh_from_db()
    assert (job.error, job.file.name) == ("Site AND is no longer one of yours.", "")


def test_a_user_who_no_longer_reads_the_results_gets_no_report(client, andrologist, site):
    from django.contrib.auth.models import Group

    client.force_login(andrologist)
    job = job_of(ask(client))
    andrologist.groups.set([Group.objects.get_or_create(name=Role.COORDINATOR)[0]])
    assert services.pdf_job_build(job_id=job.pk) == services.BuildOutcome.FAILED
    job.refresh_from_db()
    assert job.error == "Your role no longer allows you to see the results."
    # Still a PDF user (coordinator), but this job is not theirs to see any more.
    assert client.get(reverse("exports:job-detail", args=[job.uuid])).status_code == 404
    assert reverse("exports:job-detail", args=[job.uuid]) not in (
        client.get(reverse("exports:study")).content.decode()
    )


def test_an_expired_report_is_asked_for_again_from_its_page(
    client,
    settings,
    monitor,
    study,  # noqa: F811
):
    client.force_login(monitor)
    first, _, _ = built(client, site="BEN")
    services.pdf_jobs_expire(
        now=timezone.now() + timedelta(days=settings.PDF_JOB_RETENTION_DAYS + 1)
    )
    page = client.get(reverse("exports:job-detail", args=[first.uuid])).content.decode()
    assert "This file expired after" in page
    action, fields = ask_again_form(page)
    assert action == reverse("exports:results-pdf")
    assert fields["site"] == "BEN"
    second = job_of(client.post(action, fields))
    assert second != first and second.target_key == first.target_key
    assert services.pdf_job_build(job_id=second.pk) == services.BuildOutcome.BUILT
