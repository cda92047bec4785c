"""Recompute the audit trail's hash chains (audit/chain.py).

    python manage.py verify_audit_trail
    python manage.py verify_audit_trail --anchor 'patient:12#37:3f9a1c0b'   # from a casebook

Prints each chain's first broken link (row, chain, sequence, what is wrong) and the heads, and
exits non-zero when a chain is broken. Read only."""

from django.core.management.base import BaseCommand, CommandError

from audit.chain import parse_anchor, verify_audit_trail


class Command(BaseCommand):
    # Read only and about data: the system checks add nothing here.
    requires_system_checks = []

    help = (
        "Verify the audit trail's hash chains: every row's hash recomputed, the first broken "
        "link of each chain reported (altered, missing, reordered or unchained rows)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--anchor",
            action="append",
            default=[],
            help="CHAIN#SEQUENCE:HASH as printed on a casebook PDF: that row must still be "
            "in the trail with that hash (repeatable)",
        )
        parser.add_argument(
            "--heads", action="store_true", help="print every chain's head (to keep elsewhere)"
        )

    def handle(self, *args, anchor, heads, **options):
        try:
            anchors = [parse_anchor(text) for text in anchor]
        except ValueError as error:
            raise CommandError(str(error)) from error
        report = verify_audit_trail(anchors=anchors)
        for link in report.broken:
            self.stdout.write(f"BROKEN  {link}")
        if heads:
            for head in report.heads:
                self.stdout.write(f"head    {head.chain}#{head.sequence}:{head.row_hash}")
        self.stdout.write(report.summary())
        if not report.intact:
            raise CommandError("The audit trail's hash chain is broken (BROKEN above).")
