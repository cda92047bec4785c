"""The CDISC ODM 1.3.2 export: valid against the official XSD, and a faithful replay of the
audit trail (replaying its transactions gives the values in the database)."""

from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree

import odmlib
import pytest
import xmlschema
from django.urls import reverse
from odmlib.loader import ODMLoader
from odmlib.odm_loader import XMLODMLoader
from odmlib.oid_generator import create_oid_checker

from core import crf
from exports.metadata import crf_layout
from exports.odm import form_oid, item_oid
from labs.models import HormoneProfile
from trial.models import VisitDefinition

from ..factories import crf_values
from .conftest import void_record

ODM_XSD = Path(odmlib.__file__).parent / "schemas" / "odm" / "1.3.2" / "ODM1-3-2.xsd"
NS = {"odm": "http://www.cdisc.org/ns/odm/v1.3"}


@pytest.fixture(scope="module")
def odm_schema():
    return xmlschema.XMLSchema(str(ODM_XSD))


def _odm(client, user) -> bytes:
    client.force_login(user)
    response = client.get(reverse("exports:odm-xml"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/xml; charset=utf-8"
    return b"".join(response.streaming_content)


def _q(tag: str) -> str:
    return f"{{{NS['odm']}}}{tag}"


def _replay(root) -> dict:
    """Apply the ClinicalData transactions in order, as a receiving system would:
    {(subject, event, event repeat, form, form repeat): {item OID: value}}."""
    forms: dict = {}
    for subject in root.iterfind("odm:ClinicalData/odm:SubjectData", NS):
        for event in subject.iterfind("odm:StudyEventData", NS):
            for form in event.iterfind("odm:FormData", NS):
                key = (
                    subject.get("SubjectKey"),
                    event.get("StudyEventOID"),
                    event.get("StudyEventRepeatKey"),
                    form.get("FormOID"),
                    form.get("FormRepeatKey"),
                )
                if form.get("TransactionType") == "Remove":
                    forms.pop(key)
                    continue
                if form.get("TransactionType") in ("Insert", "Upsert"):
                    forms[key] = {}
                values = forms[key]
                for item in form.iterfind("odm:ItemGroupData/odm:ItemData", NS):
                    if item.get("TransactionType") == "Remove":
                        values.pop(item.get("ItemOID"))
                    else:
                        values[item.get("ItemOID")] = item.get("Value")
    return forms


def _database_forms() -> dict:
    forms = {}
    for definition in crf.all_definitions():
        layout = crf_layout(definition.code)
        repeating = any(
            repeat > 1
            for d in VisitDefinition.objects.all()
            for code, repeat in d.expected_forms
            if code == definition.code
        )
        for record in definition.model.objects.filter(voided_at__isnull=True).select_related(
            "visit__patient", "visit__definition"
        ):
            visit = record.visit
            key = (
                visit.patient.study_id,
                f"SE.{visit.definition.code}",
                str(visit.sequence) if visit.definition.kind == "unscheduled" else None,
                form_oid(definition.code),
                str(record.sequence) if repeating else None,
            )
            forms[key] = {
                item_oid(definition.code, i.name): i.coded(getattr(record, i.name))
                for i in layout.items
                if i.coded(getattr(record, i.name)) != ""
            }
    return forms


def _same_values(replayed: dict, database: dict) -> bool:
    """Equal as numbers where numbers ("24.1" == "24.10"), as text otherwise."""

    def norm(value):
        try:
            return Decimal(value)
        except ArithmeticError:
            return value

    return {k: {i: norm(v) for i, v in vs.items()} for k, vs in replayed.items()} == {
        k: {i: norm(v) for i, v in vs.items()} for k, vs in database.items()
    }


def test_T_EXP_01_the_odm_export_validates_against_the_official_odm_1_3_2_xsd(
    client, coordinator, full_patient, odm_schema
):
    content = _odm(client, coordinator)
    errors = list(odm_schema.iter_errors(content.decode()))
    assert errors == []
    root = ElementTree.fromstring(content)
    assert (root.get("ODMVersion"), root.get("FileType")) == ("1.3.2", "Transactional")
    # odmlib's own checks too: element order, unique OIDs, every Ref has its Def.
    loader = ODMLoader(XMLODMLoader(model_package="odm_1_3_2", ns_uri=NS["odm"]))
    loader.load_odm_string(content.decode())
    odm = loader.load_odm()
    assert odm.validate(collect_errors=True, oid_checker=create_oid_checker("odm_1_3_2")) == []


def test_replaying_the_odm_transactions_gives_the_values_in_the_database(
    client, coordinator, andrologist, full_patient
):
    voided = full_patient.visits.get(definition__code="M4").labs_hormoneprofile_set.get()
    void_record(voided, andrologist, "Entered at the wrong visit")
    replayed = _replay(ElementTree.fromstring(_odm(client, coordinator)))
    database = _database_forms()
    # 10 screening forms, 3 procedure-day forms, M4 follow-up visit and semen (M4 hormones
    # voided), end of study.
    assert len(database) == 16
    assert _same_values(replayed, database)


def test_a_correction_says_who_changed_what_where_when_and_why(
    client, coordinator, andrologist, full_patient
):
    root = ElementTree.fromstring(_odm(client, coordinator))
    update = next(
        i
        for i in root.iterfind(".//odm:ItemData[@TransactionType='Update']", NS)
        if i.get("ItemOID") == "IT.HORMONES.FSH"
    )
    assert update.get("Value") == "24.10"  # as stored (2 places), like every other value
    audit = update.find("odm:AuditRecord", NS)
    assert audit.find("odm:UserRef", NS).get("UserOID") == f"USR.{andrologist.pk}"
    assert audit.find("odm:LocationRef", NS).get("LocationOID") == "LOC.BEN"
    assert audit.find("odm:DateTimeStamp", NS).text.endswith("Z")
    assert audit.find("odm:ReasonForChange", NS).text == "Transcription error, lab report"
    user = root.find(f"odm:AdminData/odm:User[@OID='USR.{andrologist.pk}']", NS)
    assert user.find("odm:LoginName", NS).text == "alice"
    location = root.find("odm:AdminData/odm:Location[@OID='LOC.BEN']", NS)
    assert location.get("Name") == "University urology department"
    first = root.find("odm:ClinicalData/odm:SubjectData", NS)
    assert (first.get("SubjectKey"), first.get("TransactionType")) == ("BEN-001", "Insert")
    assert first.find("odm:SiteRef", NS).get("LocationOID") == "LOC.BEN"


def test_a_voided_form_is_removed_with_its_reason(client, coordinator, andrologist, full_patient):
    voided = full_patient.visits.get(definition__code="M4").labs_hormoneprofile_set.get()
    void_record(voided, andrologist, "Entered at the wrong visit")
    root = ElementTree.fromstring(_odm(client, coordinator))
    removed = root.find(".//odm:FormData[@TransactionType='Remove']", NS)
    assert removed.get("FormOID") == "F.HORMONES"
    assert removed.find("odm:AuditRecord/odm:ReasonForChange", NS).text == (
        "Entered at the wrong visit"
    )


def test_a_form_loaded_without_an_audit_trail_is_still_exported(
    client, coordinator, andrologist, consented_patient, odm_schema
):
    visit = consented_patient.visits.get(definition__code="SCR")
    HormoneProfile.objects.create(visit=visit, **crf_values("hormones"), updated_by=andrologist)
    content = _odm(client, coordinator)
    assert list(odm_schema.iter_errors(content.decode())) == []
    root = ElementTree.fromstring(content)
    upsert = root.find(".//odm:FormData[@TransactionType='Upsert']", NS)
    assert upsert.get("FormOID") == "F.HORMONES"
    assert _same_values(_replay(root), _database_forms())


def test_the_metadata_describes_visits_forms_items_ranges_code_lists_and_loinc(
    client, monitor, full_patient
):
    root = ElementTree.fromstring(_odm(client, monitor))
    mdv = root.find("odm:Study/odm:MetaDataVersion", NS)
    assert root.find("odm:Study/odm:GlobalVariables/odm:StudyName", NS).text == "NOA-MSC"
    events = [e.get("OID") for e in mdv.iterfind("odm:StudyEventDef", NS)]
    assert events[:3] == ["SE.SCR", "SE.D0", "SE.M4"] and "SE.UNS" in events
    assert mdv.find("odm:StudyEventDef[@OID='SE.UNS']", NS).get("Repeating") == "Yes"
    semen = mdv.find("odm:FormDef[@OID='F.SEMEN_ANALYSIS']", NS)
    assert semen.get("Repeating") == "Yes"  # 3 at screening
    forms = {f.get("OID") for f in mdv.iterfind("odm:FormDef", NS)}
    assert forms == {form_oid(d.code) for d in crf.all_definitions()}
    fsh = mdv.find("odm:ItemDef[@OID='IT.HORMONES.FSH']", NS)
    assert (fsh.get("DataType"), fsh.get("Length"), fsh.get("SignificantDigits")) == (
        "float",
        "5",
        "2",
    )
    assert fsh.find("odm:MeasurementUnitRef", NS).get("MeasurementUnitOID") == "MU.IU_L"
    assert fsh.find("odm:Alias[@Context='LOINC']", NS).get("Name") == "15067-2"
    checks = [
        (c.get("Comparator"), c.get("SoftHard"), c.find("odm:CheckValue", NS).text)
        for c in mdv.find("odm:ItemDef[@OID='IT.SEMEN_ANALYSIS.ABSTINENCE_DAYS']", NS).iterfind(
            "odm:RangeCheck", NS
        )
    ]
    assert checks == [
        ("GE", "Hard", "0"),
        ("LE", "Hard", "30"),
        ("GE", "Soft", "2"),
        ("LE", "Soft", "7"),
    ]
    ny = mdv.find("odm:CodeList[@OID='CL.NY']", NS)
    assert [
        (i.get("CodedValue"), i.find("odm:Decode/odm:TranslatedText", NS).text) for i in ny
    ] == [
        ("Y", "Yes"),
        ("N", "No"),
    ]
    # Eligibility: the protocol's criteria, in its words; the slots it does not use are absent.
    eligibility = mdv.find("odm:ItemDef[@OID='IT.ELIGIBILITY.INCL01']", NS)
    assert eligibility.find("odm:CodeListRef", NS).get("CodeListOID") == "CL.NY"
    assert "Primary infertility" in ElementTree.tostring(eligibility, encoding="unicode")
    assert mdv.find("odm:ItemDef[@OID='IT.ELIGIBILITY.EXCL04']", NS) is not None
    assert mdv.find("odm:ItemDef[@OID='IT.ELIGIBILITY.EXCL05']", NS) is None


def test_the_odm_export_holds_no_identifier_and_only_the_users_sites(
    client, coordinator, full_patient, other_patient
):
    content = _odm(client, coordinator).decode()
    identity = full_patient.identity
    for secret in (identity.full_name, identity.phone, identity.national_id, "Other Sitename"):
        assert secret not in content
    assert full_patient.date_of_birth.isoformat() not in content
    assert 'SubjectKey="BEN-001"' in content and 'SubjectKey="AND-001"' not in content


def test_signatures_are_in_the_odm_file_and_it_still_validates(
    client, coordinator, andrologist, full_patient, odm_schema, rf
):
    """21 CFR 11 / ODM Archival: each signature with its user, place, meaning and time."""
    from monitoring.models import Signature
    from monitoring.services import signature_sign

    request = rf.post("/")
    request.user = andrologist
    scr = full_patient.visits.get(definition__code="SCR")
    for visit in (scr, None):
        signature_sign(
            request=request,
            patient=full_patient,
            visit=visit,
            username="alice",
            password="correct-horse-battery",
            meaning=Signature.Meaning.INVESTIGATOR_APPROVAL,
            user=andrologist,
            agree=True,
        )
    content = _odm(client, coordinator)
    assert list(odm_schema.iter_errors(content.decode())) == []
    root = ElementTree.fromstring(content)
    definitions = root.findall(".//odm:AdminData/odm:SignatureDef", NS)
    assert [d.get("OID") for d in definitions] == ["SD.APPROVAL"]
    signatures = root.findall(".//odm:Signature", NS)
    assert len(signatures) == 2
    on_visit = root.find(".//odm:StudyEventData[@StudyEventOID='SE.SCR']/odm:Signature", NS)
    assert on_visit is not None
    assert on_visit.find("odm:SignatureRef", NS).get("SignatureOID") == "SD.APPROVAL"
    assert on_visit.find("odm:UserRef", NS).get("UserOID") == f"USR.{andrologist.pk}"
    loader = ODMLoader(XMLODMLoader(model_package="odm_1_3_2", ns_uri=NS["odm"]))
    loader.load_odm_string(content.decode())
    odm = loader.load_odm()
    assert odm.validate(collect_errors=True, oid_checker=create_oid_checker("odm_1_3_2")) == []
