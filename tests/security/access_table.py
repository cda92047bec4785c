"""Who may do what: ONE declarative table, URL name -> the roles that may GET and POST it.

Read by tests/security/test_access_matrix.py, which tries every URL of the resolver with
every role, on an object of the user's own site and of the other site, and anonymously.
A URL that is not in this table fails that test: add its line here when you add a view.

    get / post   the roles that may use the method; NOT_SERVED when the view refuses the
                 method itself (405; a role check in front of it may answer 403 first).
                 Pages that only read answer a POST like a GET (nothing is written): their
                 POST roles are their GET roles.
    scoped       the URL names an object of one site (a patient, its records, a query, a
                 signature, a job): another site's object must be 404, never 200.
    denied       what a role that may not use the URL gets on its own site's object: 403,
                 or 404 where the app hides that the object exists (PDF jobs: a lab
                 technician has none, so any job id is "not found").
    public       no login needed (login page, health check); anonymous users get the page.
    ends_session logout: its success is a redirect to the login page.
    sends_on_when_signed_in  the second-factor pages: every user tried has completed the
                 sign-in, so a GET is sent on (302, not to the login page).
    post_body    what the POST sends (an empty body by default); "{patient}" and "{site}"
                 are the uuid of the patient / site of the side tried, "{site_code}" its
                 code. Used where an empty
                 body would stop before the check that matters (the PDF request's kind).

The rules themselves are the app's (core/roles.py, each app's views.py *_ROLES); this table
states them once, from the outside, so a view that loses its check is caught.
"""

from dataclasses import dataclass, field

from core.roles import Role

A = Role.ANDROLOGIST
C = Role.COORDINATOR
L = Role.LAB_TECHNICIAN
M = Role.MONITOR
D = Role.ADMIN

EVERYONE = frozenset({A, C, L, M, D})
SITE_STAFF = frozenset({A, C, L})  # data entry; the only roles that see identities
ENROL = frozenset({A, C})  # enrol, consent, follow-up logs and visits
AUDITORS = frozenset({M, D})
EXPORTERS = frozenset({C, M, D})
PDF = frozenset({A, C, M, D})
RESULTS = frozenset({A, M, D})
NOT_SERVED = None


@dataclass(frozen=True)
class Access:
    get: frozenset | None
    post: frozenset | None
    scoped: bool = False
    denied: int = 403
    public: bool = False
    post_body: dict = field(default_factory=dict)
    ends_session: bool = False  # logout: its success is the redirect to the login page
    # The second-factor pages: a user whose sign-in is complete is sent on (302), not shown
    # the page again.
    sends_on_when_signed_in: bool = False


def read(roles, **extra) -> Access:
    """A page that only reads: a POST is answered like a GET."""
    return Access(get=roles, post=roles, **extra)


def action(roles, **extra) -> Access:
    """A POST-only action (require_POST)."""
    return Access(get=NOT_SERVED, post=roles, **extra)


def form(roles, **extra) -> Access:
    """A form page: GET shows it, POST submits it, for the same roles."""
    return Access(get=roles, post=roles, **extra)


TABLE: dict[str, Access] = {
    # ---- core --------------------------------------------------------------------------
    "home": read(EVERYONE),
    "healthz": read(EVERYONE, public=True),
    "login": form(EVERYONE, public=True),
    "logout": action(EVERYONE, ends_session=True),
    # ---- accounts: the second factor (a signed-in, verified user is sent on) ------------
    "accounts:second-factor": form(EVERYONE, sends_on_when_signed_in=True),
    "accounts:second-factor-enrol": form(EVERYONE, sends_on_when_signed_in=True),
    # ---- trial -------------------------------------------------------------------------
    "trial:protocol-detail": read(EVERYONE),
    # The approved blank consent form: any study user (no patient in it).
    "trial:consent-version-document": read(EVERYONE),
    # ---- patients ----------------------------------------------------------------------
    "patients:patient-list": Access(get=EVERYONE, post=NOT_SERVED),  # a ListView: GET only
    "patients:patient-enrol": form(ENROL),
    "patients:patient-detail": read(EVERYONE, scoped=True),
    "patients:identity-edit": form(SITE_STAFF, scoped=True),
    "patients:consent-create": form(ENROL, scoped=True),
    "patients:consent-document": read(SITE_STAFF, scoped=True),  # the scan names the patient
    "patients:consent-withdraw": form(ENROL, scoped=True),
    "patients:crf-edit": Access(get=EVERYONE, post=SITE_STAFF, scoped=True),
    "patients:crf-void": action(SITE_STAFF, scoped=True),
    # ---- follow-up ---------------------------------------------------------------------
    "followup:schedule": read(frozenset({A, C, M, D})),
    "followup:reminder-list": read(frozenset({C, M, D})),
    "followup:patient-followup": read(EVERYONE, scoped=True),
    "followup:visit-add-unscheduled": action(ENROL, scoped=True),
    "followup:schedule-extend": action(ENROL, scoped=True),
    "followup:end-of-study": action(ENROL, scoped=True),
    "followup:ae-list": read(EVERYONE, scoped=True),
    "followup:ae-create": form(ENROL, scoped=True),
    "followup:ae-edit": Access(get=EVERYONE, post=ENROL, scoped=True),
    "followup:ae-void": form(ENROL, scoped=True),
    "followup:cm-list": read(EVERYONE, scoped=True),
    "followup:cm-create": form(ENROL, scoped=True),
    "followup:cm-edit": Access(get=EVERYONE, post=ENROL, scoped=True),
    "followup:cm-void": form(ENROL, scoped=True),
    # ---- audit -------------------------------------------------------------------------
    "audit:trail": read(AUDITORS),
    "monitoring:audit-review": read(AUDITORS),
    "monitoring:audit-review-record": action(AUDITORS),
    "audit:chain": read(frozenset({D})),
    # Anyone who may see the record may see its history (identifiers masked: leak scan).
    "audit:record-history": read(EVERYONE, scoped=True),
    # ---- monitoring --------------------------------------------------------------------
    "monitoring:query-list": read(EVERYONE),  # each sees the queries of their sites
    # Everyone who sees the query reads it; what a POST may do depends on the action:
    # answering is for data entry, closing and re-opening for the monitor. The probe closes.
    "monitoring:query-detail": Access(
        get=EVERYONE,
        post=frozenset({M}),
        scoped=True,
        post_body={"action": "close", "text": "Access matrix probe"},
    ),
    "monitoring:query-open": form(frozenset({M}), scoped=True),
    "monitoring:sdv-list": read(AUDITORS),
    "monitoring:source-verify": action(frozenset({M}), scoped=True),
    "monitoring:sign-casebook": form(frozenset({A}), scoped=True),
    "monitoring:sign-visit": form(frozenset({A}), scoped=True),
    "monitoring:signature-unlock": action(frozenset({D}), scoped=True),
    "monitoring:consent-audit": read(AUDITORS),
    "monitoring:user-access": read(frozenset({D})),
    "monitoring:access-review-record": action(frozenset({D})),
    "monitoring:user-unlock": action(frozenset({D})),
    "monitoring:user-second-factor-reset": action(frozenset({D})),
    # ---- exports -----------------------------------------------------------------------
    "exports:study": read(EVERYONE),
    "exports:pdf-request": action(
        PDF, scoped=True, post_body={"kind": "casebook", "patient": "{patient}"}
    ),
    "exports:job-detail": Access(get=PDF, post=NOT_SERVED, scoped=True, denied=404),
    "exports:job-status": Access(get=PDF, post=NOT_SERVED, scoped=True, denied=404),
    "exports:job-download": Access(get=PDF, post=NOT_SERVED, scoped=True, denied=404),
    "exports:blank-crf": Access(get=EVERYONE, post=NOT_SERVED),  # no patient data
    "exports:analysis-csv": Access(get=EXPORTERS, post=NOT_SERVED),
    "exports:adverse-events-csv": Access(get=EXPORTERS, post=NOT_SERVED),
    "exports:concomitant-medications-csv": Access(get=EXPORTERS, post=NOT_SERVED),
    "exports:dictionary-csv": Access(get=EXPORTERS, post=NOT_SERVED),
    "exports:form-csv": Access(get=EXPORTERS, post=NOT_SERVED),
    "exports:odm-xml": Access(get=EXPORTERS, post=NOT_SERVED),
    "exports:bundle-zip": Access(get=EXPORTERS, post=NOT_SERVED),
    # The PDF of the results of one site (its code), asked for on the results page (path
    # /reports/results/pdf/): another site's is not found.
    "exports:results-pdf": action(RESULTS, scoped=True, post_body={"site": "{site_code}"}),
    # ---- reports -----------------------------------------------------------------------
    "reports:results": read(RESULTS),
    "reports:results-csv": read(RESULTS),
    # "Recompute now": a computation of the user's own scope (a POST; another site's code
    # falls back to the user's sites, as the page's filter does).
    "reports:results-recompute": action(RESULTS),
}
