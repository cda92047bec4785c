"""All datasets in one ZIP with a manifest the receiver can reconcile (P11-22): each file's
rows, bytes and SHA-256 match what is inside, and the files are the single downloads."""

import csv
import hashlib
import io
import zipfile

from django.urls import reverse

from core import crf
from core.roles import Role
from patients.models import Patient

from ..conftest import make_user


def _bundle(client) -> zipfile.ZipFile:
    response = client.get(reverse("exports:bundle-zip"))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="NCT02025270_datasets_')
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_the_manifest_gives_the_rows_size_and_hash_of_every_file(client, coordinator, full_patient):
    client.force_login(coordinator)
    archive = _bundle(client)
    manifest = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
    names = [line["file"] for line in manifest]
    assert names[:4] == [
        "analysis.csv",
        "adverse_events.csv",
        "concomitant_medications.csv",
        "data_dictionary.csv",
    ]
    assert {f"forms/{d.code}.csv" for d in crf.all_definitions()} <= set(names)
    assert names[-1] == "odm.xml"
    assert set(archive.namelist()) == {*names, "manifest.csv", "README.txt"}
    for line in manifest:
        content = archive.read(line["file"])
        assert int(line["bytes"]) == len(content), line["file"]
        assert line["sha256"] == hashlib.sha256(content).hexdigest(), line["file"]
        if line["file"].endswith(".csv"):
            rows = list(csv.reader(io.StringIO(content.decode())))
            assert int(line["rows"]) == len(rows) - 1, line["file"]
        else:
            assert line["rows"] == ""
    by_name = {line["file"]: line for line in manifest}
    assert by_name["analysis.csv"]["rows"] == "1"  # one patient
    assert int(by_name["forms/semen_analysis.csv"]["rows"]) == 4  # 3 at screening + M4
    assert by_name["concomitant_medications.csv"]["rows"] == "0"
    readme = archive.read("README.txt").decode()
    assert "Generated" in readme and "by carol" in readme and "Sites covered: BEN" in readme


def test_the_files_are_the_single_downloads_and_hold_no_identifiers(
    client, coordinator, full_patient
):
    client.force_login(coordinator)
    archive = _bundle(client)
    single = client.get(reverse("exports:form-csv", args=["hormones"]))
    assert archive.read("forms/hormones.csv") == b"".join(single.streaming_content)
    identity = Patient.objects.get().identity
    for name in archive.namelist():
        text = archive.read(name).decode()
        assert identity.full_name not in text and identity.phone not in text, name
    assert "BEN-001" in archive.read("analysis.csv").decode()


def test_a_coordinator_of_another_site_gets_only_that_sites_patients(
    client, other_site, other_patient, full_patient
):
    client.force_login(make_user("olga", Role.COORDINATOR, other_site))
    archive = _bundle(client)
    analysis = archive.read("analysis.csv").decode()
    assert other_patient.study_id in analysis and "BEN-001" not in analysis
    assert "BEN-001" not in archive.read("odm.xml").decode()
    assert "Sites covered: AND" in archive.read("README.txt").decode()


def test_an_andrologist_may_not_download_the_datasets(client, andrologist):
    client.force_login(andrologist)
    assert client.get(reverse("exports:bundle-zip")).status_code == 403


def test_the_medication_log_is_in_the_bundle_and_counted(
    client, coordinator, andrologist, full_patient
):
    from followup.services import concomitant_medication_create

    from ..factories import today_minus
    from ..followup.factories import cm_values

    for name in ("Clomiphene citrate", "Letrozole"):
        hormone_class = "SERM" if name.startswith("Clomiphene") else "AROMATASE_INHIBITOR"
        concomitant_medication_create(
            patient=full_patient,
            data=cm_values(start=today_minus(5), medication=name, hormone_class=hormone_class),
            user=andrologist,
        )
    client.force_login(coordinator)
    archive = _bundle(client)
    manifest = {
        line["file"]: line
        for line in csv.DictReader(io.StringIO(archive.read("manifest.csv").decode()))
    }
    assert manifest["concomitant_medications.csv"]["rows"] == "2"
    content = archive.read("concomitant_medications.csv")
    assert manifest["concomitant_medications.csv"]["sha256"] == hashlib.sha256(content).hexdigest()
    single = client.get(reverse("exports:concomitant-medications-csv"))
    assert content == b"".join(single.streaming_content)
    assert "Letrozole" in content.decode()
