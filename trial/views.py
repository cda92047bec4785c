from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, render

from .models import ConsentVersion
from .selectors import active_protocol, current_consent_version, visit_definitions


def protocol_detail(request):
    protocol = active_protocol()
    if protocol is None:
        raise Http404("No protocol is loaded: run `manage.py load_protocol`.")
    return render(
        request,
        "trial/protocol_detail.html",
        {
            "protocol": protocol,
            "visits": visit_definitions(protocol=protocol),
            "consent_versions": protocol.consent_versions.all(),
            "current_consent": current_consent_version(protocol=protocol),
        },
    )


def consent_version_document(request, version_uuid):
    """The approved (blank) consent form: any logged-in study user may read it."""
    version = get_object_or_404(ConsentVersion, uuid=version_uuid)
    if not version.document:
        raise Http404("No approved document uploaded for this version.")
    return FileResponse(
        version.document.open("rb"), filename=version.document.name.rsplit("/", 1)[-1]
    )
