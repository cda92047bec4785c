"""A NUL character in the address (its path or its query string) is refused with 400.

No field of the app accepts one (Django's form fields refuse it with a message), but list
filters and export buttons read the query string without a form, and PostgreSQL cannot take
a NUL in a query parameter: it was a server error (found by tests/security/test_fuzz_forms.py).
POST bodies are left to the forms (reading them here would also parse an upload before the
consent view sets its size limit)."""

from django.http import HttpResponseBadRequest

MESSAGE = (
    "Bad request: the address contains a NUL character, which nothing in this application "
    "accepts. Go back and try again."
)


def has_nul(request) -> bool:
    if "\x00" in request.path:
        return True
    return any(
        "\x00" in key or any("\x00" in value for value in values)
        for key, values in request.GET.lists()
    )


class RefuseNulMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if has_nul(request):
            return HttpResponseBadRequest(MESSAGE, content_type="text/plain; charset=utf-8")
        return self.get_response(request)
