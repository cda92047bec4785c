"""CDISC ODM 1.3.2 export: the metadata (protocol, visits, every registered CRF with its items,
ranges and code lists) and the clinical data as a Transactional file replayed from the audit
trail, so the receiver sees how each value came to be (who, when, where, why).

Structure (STANDARDS.md §2.1; reference/odm-1.3.2-skeleton.xml):
* Study: GlobalVariables, BasicDefinitions (units), MetaDataVersion (Protocol, StudyEventDef
  per visit definition, FormDef + ItemGroupDef + ItemDefs per CRF, CodeLists).
* AdminData: every User that appears in an AuditRecord, every site as a Location.
* ClinicalData: per subject (key = study id), first the enrolment (SubjectData Insert), then one
  SubjectData per saved change, in order: form created (FormData Insert), values changed
  (ItemData Update/Insert/Remove with ReasonForChange), form voided (FormData Remove).

The file is written subject by subject (one batch of patients in memory at a time), so a
response can stream it."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.etree.ElementTree import Element, SubElement, tostring
from xml.sax.saxutils import quoteattr

from django.contrib.auth import get_user_model
from django.db.models import Q

from audit.models import AuditEntry
from audit.services import referenced_id
from core.identifiers import IDENTIFIER_HIDDEN, identifier_fields
from monitoring.models import Signature
from patients.models import Patient
from trial.models import Protocol, StudySite, VisitDefinition

from .metadata import CrfItem, CrfLayout, all_layouts, oid_part
from .selectors import PatientData, crf_content_types, patient_data_batches

ODM_NS = "http://www.cdisc.org/ns/odm/v1.3"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
SYSTEM_USER = "USR.SYSTEM"
# Entries of one save share the object, user, action and reason and are written together.
SAME_SAVE_SECONDS = 2


def utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- OIDs ------------------------------------------------------------------------------------


def study_oid(protocol: Protocol) -> str:
    return f"S.{oid_part(protocol.registry_id)}"


def mdv_oid(protocol: Protocol) -> str:
    return f"MDV.{oid_part(protocol.version)}"


def event_oid(visit_code: str) -> str:
    return f"SE.{oid_part(visit_code)}"


def form_oid(code: str) -> str:
    return f"F.{oid_part(code)}"


def group_oid(code: str) -> str:
    return f"IG.{oid_part(code)}"


def item_oid(code: str, name: str) -> str:
    return f"IT.{oid_part(code)}.{oid_part(name)}"


def codelist_oid(name: str) -> str:
    return f"CL.{oid_part(name)}"


def unit_oid(unit: str) -> str:
    return f"MU.{oid_part(unit)}"


def user_oid(user_id: int | None) -> str:
    return f"USR.{user_id}" if user_id else SYSTEM_USER


def location_oid(site_code: str) -> str:
    return f"LOC.{oid_part(site_code)}"


# ---- small element helpers -------------------------------------------------------------------


def _translated(parent: Element, tag: str, text: str) -> Element:
    element = SubElement(parent, tag)
    SubElement(element, "TranslatedText", {XML_LANG: "en"}).text = text
    return element


def _text(parent: Element, tag: str, text: str) -> Element:
    element = SubElement(parent, tag)
    element.text = text
    return element


def serialise(element: Element) -> str:
    return tostring(element, encoding="unicode") + "\n"


# ---- metadata --------------------------------------------------------------------------------

SCHEDULED_KINDS = (
    VisitDefinition.Kind.SCREENING,
    VisitDefinition.Kind.PROCEDURE,
    VisitDefinition.Kind.SCHEDULED,
)


def _repeating_forms(definitions: list[VisitDefinition]) -> set[str]:
    return {code for d in definitions for code, repeat in d.expected_forms if repeat > 1}


def _item_def(mdv: Element, layout: CrfLayout, item: CrfItem) -> None:
    attrs = {"OID": item_oid(layout.code, item.name), "Name": item.name}
    attrs["DataType"] = item.data_type
    if item.length and item.data_type in ("text", "float"):
        attrs["Length"] = str(item.length)
    if item.data_type == "float" and item.decimals is not None:
        attrs["SignificantDigits"] = str(item.decimals)
    element = SubElement(mdv, "ItemDef", attrs)
    _translated(element, "Question", item.label)
    if item.unit:
        SubElement(element, "MeasurementUnitRef", MeasurementUnitOID=unit_oid(item.unit))
    limits = item.limits
    if limits is not None:
        checks = [
            ("GE", "Hard", limits.hard_min, f"{item.label}: plausible {item.hard_range}"),
            ("LE", "Hard", limits.hard_max, f"{item.label}: plausible {item.hard_range}"),
            ("GE", "Soft", limits.soft_min, f"{item.label}: expected {item.soft_range}"),
            ("LE", "Soft", limits.soft_max, f"{item.label}: expected {item.soft_range}"),
        ]
        for comparator, soft_hard, value, message in checks:
            if value is None:
                continue
            check = SubElement(element, "RangeCheck", Comparator=comparator, SoftHard=soft_hard)
            _text(check, "CheckValue", str(value))
            _translated(check, "ErrorMessage", f"{message} {item.unit}".strip())
    if item.codelist:
        SubElement(element, "CodeListRef", CodeListOID=codelist_oid(item.codelist))
    if item.loinc:
        SubElement(element, "Alias", Context="LOINC", Name=item.loinc)


def study_element(
    *, protocol: Protocol, definitions: list[VisitDefinition], layouts: list[CrfLayout]
) -> Element:
    study = Element("Study", OID=study_oid(protocol))
    globals_ = SubElement(study, "GlobalVariables")
    _text(globals_, "StudyName", protocol.short_name)
    _text(globals_, "StudyDescription", protocol.title)
    _text(globals_, "ProtocolName", f"{protocol.registry_id} v{protocol.version}")
    basic = SubElement(study, "BasicDefinitions")
    for unit in sorted({i.unit for layout in layouts for i in layout.items if i.unit}):
        mu = SubElement(basic, "MeasurementUnit", OID=unit_oid(unit), Name=unit)
        _translated(mu, "Symbol", unit)
    mdv = SubElement(
        study,
        "MetaDataVersion",
        OID=mdv_oid(protocol),
        Name=f"{protocol.short_name} protocol v{protocol.version} CRFs",
    )
    registered = {layout.code for layout in layouts}
    repeating = _repeating_forms(definitions)
    protocol_el = SubElement(mdv, "Protocol")
    for d in definitions:
        SubElement(
            protocol_el,
            "StudyEventRef",
            StudyEventOID=event_oid(d.code),
            OrderNumber=str(d.order),
            Mandatory="Yes" if d.kind in SCHEDULED_KINDS else "No",
        )
    for d in definitions:
        event = SubElement(
            mdv,
            "StudyEventDef",
            OID=event_oid(d.code),
            Name=f"{d.code} {d.name}",
            Repeating="Yes" if d.kind == VisitDefinition.Kind.UNSCHEDULED else "No",
            Type="Scheduled" if d.kind in SCHEDULED_KINDS else "Unscheduled",
        )
        order = 0
        for code, _repeat in d.expected_forms:
            if code in registered:
                order += 1
                SubElement(
                    event,
                    "FormRef",
                    FormOID=form_oid(code),
                    OrderNumber=str(order),
                    Mandatory="Yes",
                )
    for layout in layouts:
        form = SubElement(
            mdv,
            "FormDef",
            OID=form_oid(layout.code),
            Name=layout.title,
            Repeating="Yes" if layout.code in repeating else "No",
        )
        SubElement(form, "ItemGroupRef", ItemGroupOID=group_oid(layout.code), Mandatory="Yes")
    for layout in layouts:
        group = SubElement(
            mdv, "ItemGroupDef", OID=group_oid(layout.code), Name=layout.title, Repeating="No"
        )
        for order, item in enumerate(layout.items, start=1):
            SubElement(
                group,
                "ItemRef",
                ItemOID=item_oid(layout.code, item.name),
                OrderNumber=str(order),
                Mandatory="Yes" if item.required else "No",
            )
    for layout in layouts:
        for item in layout.items:
            _item_def(mdv, layout, item)
    written = set()
    for layout in layouts:
        for item in layout.items:
            if not item.codelist or item.codelist in written:
                continue
            written.add(item.codelist)
            codelist = SubElement(
                mdv,
                "CodeList",
                OID=codelist_oid(item.codelist),
                Name=item.codelist,
                DataType="integer" if item.data_type == "integer" else "text",
            )
            for code, label in item.choices:
                entry = SubElement(codelist, "CodeListItem", CodedValue=code)
                _translated(entry, "Decode", label)
    return study


def admin_element(*, protocol: Protocol, users, sites) -> Element:
    admin = Element("AdminData", StudyOID=study_oid(protocol))
    system = SubElement(admin, "User", OID=SYSTEM_USER)
    _text(system, "LoginName", "system")
    _text(system, "FullName", "System (no user recorded)")
    for user in users:
        element = SubElement(admin, "User", OID=user_oid(user.pk))
        _text(element, "LoginName", user.get_username())
        _text(element, "FullName", user.get_full_name() or user.get_username())
    for site in sites:
        location = SubElement(
            admin, "Location", OID=location_oid(site.code), Name=site.name, LocationType="Site"
        )
        SubElement(
            location,
            "MetaDataVersionRef",
            StudyOID=study_oid(protocol),
            MetaDataVersionOID=mdv_oid(protocol),
            EffectiveDate=protocol.created_at.date().isoformat(),
        )
    for code, meaning in Signature.Meaning.choices:
        definition = SubElement(
            admin, "SignatureDef", OID=signature_def_oid(code), Methodology="Electronic"
        )
        _text(definition, "Meaning", str(meaning))
        _text(definition, "LegalReason", LEGAL_REASON)
    return admin


LEGAL_REASON = (
    "This electronic signature is the legally binding equivalent of my handwritten signature "
    "(21 CFR 11.100(c))."
)


def signature_def_oid(meaning_code: str) -> str:
    return f"SD.{oid_part(meaning_code)}"


def signature_elements(data: PatientData, ctx: "SubjectContext") -> Iterator[Element]:
    """Each investigator signature not voided by an unlock: on the visit (StudyEventData) or
    on the whole subject (casebook). No TransactionType: signatures add no data."""
    site_code = data.patient.site.code
    visits = {v.pk: v for v in data.visits}
    for line in data.signatures:
        subject = Element("SubjectData", SubjectKey=data.patient.study_id)
        parent = subject
        if line.visit_id is not None and line.visit_id in visits:
            visit = visits[line.visit_id]
            parent = SubElement(
                subject, "StudyEventData", StudyEventOID=event_oid(visit.definition.code)
            )
            if visit.definition.kind == VisitDefinition.Kind.UNSCHEDULED:
                parent.set("StudyEventRepeatKey", str(visit.sequence))
        signature = SubElement(parent, "Signature", ID=f"SIG.{line.signature_id}")
        signer = line.signer_id if line.signer_id in ctx.known_users else None
        SubElement(signature, "UserRef", UserOID=user_oid(signer))
        SubElement(signature, "LocationRef", LocationOID=location_oid(site_code))
        SubElement(signature, "SignatureRef", SignatureOID=signature_def_oid(line.meaning_code))
        _text(signature, "DateTimeStamp", utc(line.signed_at))
        yield subject


# ---- clinical data ---------------------------------------------------------------------------


@dataclass
class SubjectContext:
    """What writing one subject's transactions needs besides the subject's own data."""

    layouts: dict[str, CrfLayout]
    model_codes: dict[int, str]  # ContentType id -> form code
    repeating_forms: set[str]
    known_users: set[int]


def _audit_record(
    parent: Element, *, user_id, site_code: str, at: datetime, reason: str = "", source: str = ""
) -> None:
    record = SubElement(parent, "AuditRecord")
    SubElement(record, "UserRef", UserOID=user_oid(user_id))
    SubElement(record, "LocationRef", LocationOID=location_oid(site_code))
    _text(record, "DateTimeStamp", utc(at))
    if reason:
        _text(record, "ReasonForChange", reason)
    if source:
        _text(record, "SourceID", source)


def _origin(entry: AuditEntry) -> str:
    """Where the change came from (the audit row's address, or its job or command)."""
    where = entry.ip_address or entry.channel
    return f" from {where}" if where else ""


def _subject(data: PatientData, transaction_type: str) -> Element:
    return Element(
        "SubjectData", SubjectKey=data.patient.study_id, TransactionType=transaction_type
    )


def _form_path(subject: Element, data: PatientData, ctx: SubjectContext, *, code, visit_id, seq):
    """StudyEventData / FormData / ItemGroupData under `subject` for one form slot."""
    visit = next(v for v in data.visits if v.pk == visit_id)
    event = SubElement(subject, "StudyEventData", StudyEventOID=event_oid(visit.definition.code))
    if visit.definition.kind == VisitDefinition.Kind.UNSCHEDULED:
        event.set("StudyEventRepeatKey", str(visit.sequence))
    form = SubElement(event, "FormData", FormOID=form_oid(code))
    if code in ctx.repeating_forms:
        form.set("FormRepeatKey", str(seq))
    return event, form


def _hide_value(item_data: Element) -> None:
    """An identifier's value the reader may not see (core.identifiers): the ItemData keeps its
    transaction and audit record, with no Value, and a comment saying why (after the
    AuditRecord, as the ODM schema orders them)."""
    note = SubElement(item_data, "Annotation", SeqNum="1")
    _text(note, "Comment", IDENTIFIER_HIDDEN).set("SponsorOrSite", "Site")


def _odm_value(item: CrfItem, text: str) -> str:
    """An audit-trail value (audit.services writes Python's text) as the exports write it."""
    if item.data_type == "boolean":
        return item.coded(text == "True")
    if item.data_type == "datetime":
        return item.coded(datetime.fromisoformat(text))
    return text


def _groups(entries: list[AuditEntry]) -> Iterator[list[AuditEntry]]:
    """Consecutive entries written by one save."""
    group: list[AuditEntry] = []
    for entry in entries:
        if group:
            head = group[0]
            same = (
                entry.content_type_id == head.content_type_id
                and entry.object_id == head.object_id
                and entry.action == head.action
                and entry.user_id == head.user_id
                and entry.reason == head.reason
                and (entry.timestamp - head.timestamp).total_seconds() <= SAME_SAVE_SECONDS
            )
            if not same:
                yield group
                group = []
        group.append(entry)
    if group:
        yield group


def _enrolment(data: PatientData, ctx: SubjectContext) -> Element:
    patient = data.patient
    subject = _subject(data, "Insert")
    user_id = patient.created_by_id if patient.created_by_id in ctx.known_users else None
    _audit_record(subject, user_id=user_id, site_code=patient.site.code, at=patient.created_at)
    SubElement(subject, "SiteRef", LocationOID=location_oid(patient.site.code))
    return subject


def _unaudited_record(data: PatientData, ctx: SubjectContext, code: str, record) -> Element:
    """A live form with no creation in the audit trail (loaded outside the app): its
    current values, as an Upsert by whoever last saved it."""
    subject = _subject(data, "Context")
    user_id = record.updated_by_id if record.updated_by_id in ctx.known_users else None
    _audit_record(
        subject,
        user_id=user_id,
        site_code=data.patient.site.code,
        at=record.updated_at,
        source="no audit trail for this form",
    )
    _event, form = _form_path(
        subject, data, ctx, code=code, visit_id=record.visit_id, seq=record.sequence
    )
    form.set("TransactionType", "Upsert")
    group = SubElement(form, "ItemGroupData", ItemGroupOID=group_oid(code))
    layout = ctx.layouts[code]
    hidden = frozenset() if data.identifiers_visible else identifier_fields(type(record))
    for item in layout.items:
        value = item.coded(getattr(record, item.name))
        if value != "" and item.name in hidden:
            _hide_value(SubElement(group, "ItemData", ItemOID=item_oid(code, item.name)))
        elif value != "":
            SubElement(group, "ItemData", ItemOID=item_oid(code, item.name), Value=value)
    return subject


def _change(
    data: PatientData, ctx: SubjectContext, entries: list[AuditEntry], slots
) -> Element | None:
    """One save of one form, from its audit rows. `slots` remembers each form's visit and
    number (voided forms are no longer in the data, their creation rows say where they were)."""
    head = entries[0]
    code = ctx.model_codes[head.content_type_id]
    layout = ctx.layouts[code]
    slot = slots.setdefault((code, head.object_id), {})
    for entry in entries:
        if entry.field_name in ("visit", "sequence") and entry.new_value:
            # A reference reads "BEN-001 SCR (#12)" in the trail; the slot needs the id.
            slot[entry.field_name] = referenced_id(entry.new_value)
    if "visit" not in slot or "sequence" not in slot:
        return None
    site_code = data.patient.site.code
    user_id = head.user_id if head.user_id in ctx.known_users else None
    source = f"audit entries {head.pk}-{entries[-1].pk}{_origin(head)}"
    items = {i.name: i for i in layout.items}
    changed = [e for e in entries if e.field_name in items]
    if head.action == AuditEntry.Action.UPDATE and not changed:
        return None
    subject = _subject(data, "Context")
    _audit_record(
        subject,
        user_id=user_id,
        site_code=site_code,
        at=head.timestamp,
        reason=head.reason,
        source=source,
    )
    event, form = _form_path(
        subject, data, ctx, code=code, visit_id=slot["visit"], seq=slot["sequence"]
    )
    if head.action == AuditEntry.Action.CREATE:
        event.set("TransactionType", "Upsert")
        form.set("TransactionType", "Insert")
        group = SubElement(form, "ItemGroupData", ItemGroupOID=group_oid(code))
        by_name = {e.field_name: e for e in changed}
        for item in layout.items:  # in the order of the CRF
            entry = by_name.get(item.name)
            if entry is not None and getattr(entry, "identifier_hidden", False):
                if entry.new_value != "":
                    _hide_value(SubElement(group, "ItemData", ItemOID=item_oid(code, item.name)))
            elif entry is not None and entry.new_value != "":
                SubElement(
                    group,
                    "ItemData",
                    ItemOID=item_oid(code, item.name),
                    Value=_odm_value(item, entry.new_value),
                )
    elif head.action == AuditEntry.Action.VOID:
        form.set("TransactionType", "Remove")
        _audit_record(
            form,
            user_id=user_id,
            site_code=site_code,
            at=head.timestamp,
            reason=head.reason,
            source=source,
        )
    else:
        group = SubElement(form, "ItemGroupData", ItemGroupOID=group_oid(code))
        for entry in changed:
            item = items[entry.field_name]
            hidden = getattr(entry, "identifier_hidden", False)  # exports.selectors hid it
            if entry.new_value == "":
                kind, value = "Remove", None
            else:
                kind = "Insert" if entry.old_value == "" else "Update"
                value = None if hidden else _odm_value(item, entry.new_value)
            data_el = SubElement(
                group,
                "ItemData",
                ItemOID=item_oid(code, item.name),
                TransactionType=kind,
            )
            if value is not None:
                data_el.set("Value", value)
            _audit_record(
                data_el,
                user_id=user_id,
                site_code=site_code,
                at=entry.timestamp,
                reason=entry.reason,
                source=f"audit entry {entry.pk}{_origin(entry)}",
            )
            if hidden and kind != "Remove":
                _hide_value(data_el)
    return subject


def subject_transactions(data: PatientData, ctx: SubjectContext) -> Iterator[Element]:
    """Enrolment, forms without an audit trail, then every audited save in order."""
    yield _enrolment(data, ctx)
    created = {
        (ctx.model_codes[e.content_type_id], e.object_id)
        for e in data.audit
        if e.action == AuditEntry.Action.CREATE
    }
    for code, records in data.records.items():
        for record in records:
            if (code, record.pk) not in created:
                yield _unaudited_record(data, ctx, code, record)
    slots: dict = {}
    for code, records in data.records.items():
        for record in records:
            slots[(code, record.pk)] = {"visit": record.visit_id, "sequence": record.sequence}
    for entries in _groups(data.audit):
        element = _change(data, ctx, entries, slots)
        if element is not None:
            yield element
    yield from signature_elements(data, ctx)


def _users(patients, sites):
    """Everyone an AuditRecord of this file can name: staff of the sites, whoever changed
    these patients' forms or enrolled them."""
    audit_users = AuditEntry.objects.filter(patient__in=patients).values("user_id")
    creators = patients.values("created_by_id")
    return (
        get_user_model()
        .objects.filter(
            Q(site_memberships__site__in=sites) | Q(pk__in=audit_users) | Q(pk__in=creators)
        )
        .distinct()
        .order_by("pk")
    )


def odm_chunks(*, user, protocol: Protocol, now: datetime) -> Iterator[str]:
    """The whole ODM file for the user's sites, as a sequence of text chunks."""
    patients = Patient.objects.for_user(user)
    sites = list(StudySite.objects.for_user(user).filter(protocol=protocol).order_by("code"))
    definitions = list(protocol.visits.order_by("order"))
    layouts = all_layouts()
    users = list(_users(patients, sites))
    ctx = SubjectContext(
        layouts={layout.code: layout for layout in layouts},
        model_codes=crf_content_types(),
        repeating_forms=_repeating_forms(definitions),
        known_users={u.pk for u in users},
    )
    attrs = {
        "xmlns": ODM_NS,
        "ODMVersion": "1.3.2",
        "FileType": "Transactional",
        "FileOID": f"F.{oid_part(protocol.registry_id)}.{now.astimezone(UTC):%Y%m%dT%H%M%SZ}",
        "CreationDateTime": utc(now),
        "AsOfDateTime": utc(now),
        "Description": f"Clinical data of sites {', '.join(s.code for s in sites)} "
        f"exported by {user.get_username()}",
        "Originator": "NOA-MSC EDC",
        "SourceSystem": "noa-edc",
    }
    yield '<?xml version="1.0" encoding="UTF-8"?>\n'
    yield "<ODM " + " ".join(f"{k}={quoteattr(v)}" for k, v in attrs.items()) + ">\n"
    yield serialise(study_element(protocol=protocol, definitions=definitions, layouts=layouts))
    yield serialise(admin_element(protocol=protocol, users=users, sites=sites))
    yield (
        f"<ClinicalData StudyOID={quoteattr(study_oid(protocol))} "
        f"MetaDataVersionOID={quoteattr(mdv_oid(protocol))}>\n"
    )
    for data in patient_data_batches(patients=patients, audit="all", viewer=user):
        for element in subject_transactions(data, ctx):
            yield serialise(element)
    yield "</ClinicalData>\n</ODM>\n"
