"""Demo data: the protocol, two sites, one user per role and synthetic patients at several
screening stages. Synthetic only: no real person's data. Safe to run twice.

`--cohort` instead creates the synthetic 87-patient trial cohort of reports/cohort.py (the
counts of the paper's Table 1) for the results page, into a database without patients."""

import time as clock
from datetime import datetime, time, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from accounts.services import demo_authenticator_enrol
from core.change_reason import change_reason
from core.roles import Role
from demo.cohort import seed_cohort
from demo.followup import seed_followup_demo
from demo.patients import demo_screening
from patients import services as patient_services
from patients.models import Patient
from trial.selectors import current_consent_version
from trial.services import protocol_load, site_membership_add

DEMO_PASSWORD = "noa-demo-2026"

USERS = [
    # username, first, last, role, site codes
    ("andrologist", "Amr", "Hassan", Role.ANDROLOGIST, ["BEN"]),
    ("andrologist2", "Mona", "Saleh", Role.ANDROLOGIST, ["AND"]),
    ("coordinator", "Nour", "Adel", Role.COORDINATOR, ["BEN"]),
    ("labtech", "Karim", "Fathy", Role.LAB_TECHNICIAN, ["BEN"]),
    ("monitor", "Laila", "Mansour", Role.MONITOR, ["BEN", "AND"]),
    ("admin", "Sami", "Youssef", Role.ADMIN, ["BEN", "AND"]),
]


class Command(BaseCommand):
    help = "Load the protocol and create demo sites, users and synthetic patients."

    def add_arguments(self, parser):
        parser.add_argument(
            "--cohort",
            action="store_true",
            help="Create the synthetic 87-patient trial cohort (reports/cohort.py) instead of "
            "the screening and follow-up demo patients. Needs a database without patients.",
        )

    @transaction.atomic
    def handle(self, *args, **options):
        # Audited as made by this program (user "system", channel "host: manage.py seed_demo").
        protocol = protocol_load(
            path=settings.PROTOCOL_FILE,
            reason=f"Demo set-up (seed_demo): protocol file {settings.PROTOCOL_FILE.name}",
        )
        users = self._users(protocol)
        if Patient.objects.exists():
            self.stdout.write("Patients already exist: demo patients not added again.")
        elif options["cohort"]:
            started = clock.monotonic()
            patients = seed_cohort(protocol=protocol, users=users)
            self.stdout.write(
                f"Trial cohort created: {len(patients)} patients in "
                f"{clock.monotonic() - started:.0f} s (see reports/cohort.py: only 18/87 "
                "responders is confirmed, the other counts are placeholders)."
            )
        else:
            self._patients(protocol, users)
        self.stdout.write(self.style.SUCCESS("Demo ready. Log in at http://127.0.0.1:8000 with:"))
        for username, _first, _last, role, sites in USERS:
            self.stdout.write(f"  {username:<13} / {DEMO_PASSWORD}   {role} at {', '.join(sites)}")
        if settings.EDC_REQUIRE_2FA:
            self.stdout.write(
                "Two-factor sign-in is on: each demo account has an authenticator. After the "
                "password, get its current code with\n"
                "  .venv/bin/python manage.py demo_totp <user>   (e.g. demo_totp andrologist)\n"
                "or add the account to an authenticator app with the key demo_totp --key prints. "
                "(EDC_REQUIRE_2FA=0 switches two-factor sign-in off, with a banner.)"
            )
        self.stdout.write(self.style.WARNING("Demo passwords: never use this data in production."))

    def _users(self, protocol):
        User = get_user_model()
        users = {}
        for username, first, last, role, sites in USERS:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "first_name": first,
                    "last_name": last,
                    "email": f"{username}@example.org",
                },
            )
            if created:
                user.set_password(DEMO_PASSWORD)
            if role == Role.ADMIN:
                user.is_staff = user.is_superuser = True
            user.save()
            with change_reason("Demo account (seed_demo)"):
                user.groups.add(Group.objects.get(name=role))
            for code in sites:
                site_membership_add(
                    user=user,
                    site=protocol.sites.get(code=code),
                    reason="Demo account (seed_demo)",
                )
            # Two-factor sign-in: an authenticator whose codes `manage.py demo_totp` prints.
            demo_authenticator_enrol(user=user)
            users[username] = user
        return users

    def _patients(self, protocol, users):
        today = timezone.localdate()
        doc = users["andrologist"]
        version = current_consent_version(protocol=protocol)

        def enrol(site, name, age, days_ago, user):
            return patient_services.patient_enrol(
                site=protocol.sites.get(code=site),
                user=user,
                full_name=name,
                phone="+20 100 000 0000",
                national_id="",
                address="",
                date_of_birth=today - timedelta(days=365 * age + 40),
                enrolment_date=today - timedelta(days=days_ago),
            )

        def consent(patient, days_ago, user):
            signed = datetime.combine(today - timedelta(days=days_ago), time(10, 0))
            return patient_services.consent_record(
                patient=patient,
                consent_version=version,
                user=user,
                obtained_by=user,
                signed_at=timezone.make_aware(signed),
                witness_name="Nurse on duty",
                patient_copy_given=True,
            )

        def screening(patient, user, days_ago, *, complete=True, abstinence=3, azf="NONE"):
            demo_screening(
                patient,
                user,
                on=today - timedelta(days=days_ago),
                complete=complete,
                first_abstinence=abstinence,
                azf=azf,
                eligible=azf == "NONE",
            )

        enrol("BEN", "Ahmed Demo One", 31, 2, doc)  # awaiting consent
        p2 = enrol("BEN", "Mohamed Demo Two", 29, 20, doc)
        consent(p2, 20, doc)
        screening(p2, doc, 18, complete=False)  # screening in progress
        p3 = enrol("BEN", "Omar Demo Three", 34, 60, doc)
        consent(p3, 60, doc)
        screening(p3, doc, 58)  # eligible
        p4 = enrol("BEN", "Youssef Demo Four", 38, 55, doc)
        consent(p4, 55, doc)
        screening(p4, doc, 50, abstinence=10, azf="AZFa")  # flagged value, screen failure
        p5 = enrol("BEN", "Tarek Demo Five", 27, 40, doc)
        c5 = consent(p5, 40, doc)
        screening(p5, doc, 38, complete=False)
        patient_services.consent_withdraw(
            consent=c5, withdrawn_on=today - timedelta(days=5), reason="Moved abroad", user=doc
        )
        other = users["andrologist2"]
        a1 = enrol("AND", "Hany Demo Six", 33, 30, other)
        consent(a1, 30, other)
        screening(a1, other, 28)
        enrol("AND", "Walid Demo Seven", 41, 1, other)
        # Procedure day, follow-up, responders, an overdue visit, adverse events (issue 4).
        seed_followup_demo(protocol=protocol, users=users)
