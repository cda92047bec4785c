from django import template

from core.roles import has_role
from exports.services import PDF_ROLES

register = template.Library()


@register.inclusion_tag("exports/_patient_pdf_buttons.html", takes_context=True)
def patient_pdf_buttons(context, patient, record):
    """PDF buttons of the patient page, built from the record the page already loaded
    (no query): the casebook, one visit, one entered form."""
    user = context["request"].user
    visits = [row.visit for row in record.rows if row.visit is not None]
    forms = [
        (row.visit, cell)
        for row in record.rows
        if row.visit is not None
        for cell in row.cells
        if cell.record is not None
    ]
    return {
        "patient": patient,
        "visits": visits,
        "forms": forms,
        "can_request_pdf": has_role(user, *PDF_ROLES),
        "csrf_token": context.get("csrf_token"),
    }
