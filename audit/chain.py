"""The audit trail as hash chains (issue 11): tamper-evident, checked by `verify_audit_trail`
and the admins' *Audit chain* page.

One chain per patient ("patient:<id>") and one "study" chain for rows about no patient
(changes recorded by the database triggers, configuration). Per patient, not global: the
database serialises the writers of one chain until they commit (ATOMIC_REQUESTS holds that
for a whole request), so a global chain would queue every save of the trial behind every
other; per patient only two saves for the same patient wait for each other, and they would
conflict anyway. A casebook prints the head of its patient's chain.

Each row's hash is SHA-256 over a canonical text of its content and the previous row's hash,
computed in the database as the row is inserted (PostgreSQL: a BEFORE INSERT trigger, audit
migration 0007; SQLite, the demo: a trigger calling `edc_audit_hash`, registered on each
connection by audit.apps), so every path (the services' bulk_create, the capture trigger's
INSERT, psql) is chained. The verifier recomputes every hash here, in Python, from the
columns: a row altered, removed, reordered or slipped in by someone who bypassed the
triggers breaks a link. What it cannot see on its own: a superuser who rewrites a chain from
the altered row to its head, hashes and all; the printed heads (casebook PDFs, the verifier's
output) are the anchors that catch that (`verify_audit_trail --anchor`)."""

import hashlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db import connection, transaction

PAYLOAD_VERSION = "edc-audit-v1"
STUDY_CHAIN = "study"
# Rows read per round trip by the verifier (a server-side cursor on PostgreSQL).
BATCH = 5000

# The row's content, in the order it is hashed (after the chain key and the previous hash).
# A column added to AuditEntry that says something about the change belongs here, in the
# trigger (migration 0007's edc_audit_row_hash) and in a new PAYLOAD_VERSION.
CONTENT_COLUMNS = (
    "timestamp",
    "user_id",
    "user_name",
    "action",
    "content_type_id",
    "object_id",
    "object_repr",
    "patient_id",
    "form_code",
    "field_name",
    "old_value",
    "new_value",
    "reason",
    "ip_address",
    "user_agent",
    "channel",
)


def chain_of(patient_id) -> str:
    return STUDY_CHAIN if patient_id is None else f"patient:{patient_id}"


def canonical_timestamp(value) -> str | None:
    """UTC, microseconds, as PostgreSQL's to_char(... 'YYYY-MM-DD"T"HH24:MI:SS.US') writes it.
    SQLite hands the column over as text ("2026-03-11 08:00:00[.ffffff]", naive UTC)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _field(value) -> str:
    """Length-prefixed, so no value can pass for two (PostgreSQL: edc_audit_field)."""
    if value is None:
        return "~"
    text = str(value)
    return f"{len(text.encode())}:{text}"


def row_hash(*, chain: str, prev_hash: str, content: dict) -> str:
    """SHA-256 (hex) of the row's canonical text; `content` maps CONTENT_COLUMNS to values as
    text (timestamp canonical, ip as host text) or None. The same bytes as the trigger's."""
    parts = [PAYLOAD_VERSION, _field(chain), _field(prev_hash)]
    parts += [_field(content[name]) for name in CONTENT_COLUMNS]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def sqlite_row_hash(chain, prev_hash, *values) -> str:
    """The SQLite trigger's `edc_audit_hash(chain, prev_hash, <CONTENT_COLUMNS>)`."""
    content = dict(zip(CONTENT_COLUMNS, values, strict=True))
    content["timestamp"] = canonical_timestamp(content["timestamp"])
    return row_hash(chain=chain, prev_hash=prev_hash or "", content=content)


def register_sqlite_function(sender, connection, **kwargs) -> None:
    """connection_created receiver: SQLite computes the hash with this function."""
    if connection.vendor == "sqlite":
        connection.connection.create_function(
            "edc_audit_hash", 2 + len(CONTENT_COLUMNS), sqlite_row_hash, deterministic=True
        )


# ---- verification ----------------------------------------------------------------------------


@dataclass
class BrokenLink:
    chain: str
    sequence: int | None
    entry_id: int | None
    problem: str

    def __str__(self) -> str:
        where = f"row #{self.entry_id}" if self.entry_id else "no row"
        seq = f"sequence {self.sequence}" if self.sequence is not None else "no sequence"
        return f"{self.chain}: first broken link at {seq} ({where}): {self.problem}"


@dataclass
class ChainHead:
    chain: str
    sequence: int
    row_hash: str

    @property
    def anchor(self) -> str:
        """As `verify_audit_trail --anchor` and the Audit chain page read it."""
        return f"{self.chain}#{self.sequence}:{self.row_hash[:16]}"

    def __str__(self) -> str:
        return self.anchor


@dataclass
class ChainReport:
    rows: int = 0
    chains: int = 0
    seconds: float = 0.0
    broken: list[BrokenLink] = field(default_factory=list)
    heads: list[ChainHead] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.broken

    @property
    def rows_per_second(self) -> int:
        return int(self.rows / self.seconds) if self.seconds else self.rows

    def summary(self) -> str:
        verdict = "INTACT" if self.intact else f"BROKEN in {len(self.broken)} chain(s)"
        return (
            f"{verdict}: {self.rows} rows in {self.chains} chains verified in "
            f"{self.seconds:.2f} s ({self.rows_per_second} rows/s)"
        )


def _select_sql(vendor: str) -> str:
    if vendor == "postgresql":
        timestamp = """to_char("timestamp" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')"""
        ip = "host(ip_address)"
    else:
        timestamp, ip = '"timestamp"', "ip_address"
    columns = [
        timestamp if c == "timestamp" else ip if c == "ip_address" else f'"{c}"'
        for c in CONTENT_COLUMNS
    ]
    return (
        f"SELECT id, chain, chain_seq, prev_hash, row_hash, {', '.join(columns)} "
        "FROM audit_auditentry WHERE chain_seq IS NOT NULL ORDER BY chain, chain_seq"
    )


class _ChainWalk:
    """Walks one chain's rows in sequence order; remembers the first broken link."""

    def __init__(self, chain: str, report: ChainReport):
        self.chain, self.report = chain, report
        self.expected_seq, self.prev_hash, self.last_id = 1, "", None
        self.broken: BrokenLink | None = None

    def _break(self, seq, entry_id, problem):
        self.broken = BrokenLink(self.chain, seq, entry_id, problem)
        self.report.broken.append(self.broken)

    def step(self, entry_id, seq, prev_hash, stored_hash, content, vendor) -> None:
        if self.broken:
            return
        if vendor != "postgresql":
            content["timestamp"] = canonical_timestamp(content["timestamp"])
        if chain_of(content["patient_id"]) != self.chain:
            return self._break(
                seq,
                entry_id,
                f"moved: the row is about {chain_of(content['patient_id'])} but sits in "
                f"{self.chain} (its patient or its chain was changed)",
            )
        if seq > self.expected_seq:
            missing = (
                f"{self.expected_seq}"
                if seq == self.expected_seq + 1
                else f"{self.expected_seq}-{seq - 1}"
            )
            return self._break(
                seq,
                entry_id,
                f"missing row(s): sequence {missing} absent (deleted), the chain jumps to {seq}",
            )
        if seq < self.expected_seq:
            return self._break(seq, entry_id, f"sequence {seq} appears twice (a forked chain)")
        computed = row_hash(chain=self.chain, prev_hash=prev_hash or "", content=content)
        if computed != stored_hash:
            return self._break(
                seq,
                entry_id,
                "altered content: the row's hash does not match its content "
                f"(stored {(stored_hash or '')[:16]}, computed {computed[:16]})",
            )
        if (prev_hash or "") != self.prev_hash:
            return self._break(seq, entry_id, self._misplaced(prev_hash))
        self.expected_seq, self.prev_hash, self.last_id = seq + 1, stored_hash, entry_id

    def _misplaced(self, prev_hash) -> str:
        """The row is intact but not chained to the row before it: reordered, or the row
        before it was replaced."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT chain_seq FROM audit_auditentry WHERE chain = %s AND row_hash = %s",
                [self.chain, prev_hash],
            )
            found = cursor.fetchone()
        if found:
            return (
                f"reordered: it was written after the row now at sequence {found[0]}, not "
                f"after sequence {self.expected_seq - 1}"
            )
        return (
            f"the row before it (sequence {self.expected_seq - 1}) is not the one it was "
            "chained to: that row was replaced, or removed and the sequence renumbered"
        )

    def finish(self, head) -> None:
        """The chain-head table says how far the chain went: rows cut from its end leave no
        gap, but the head remembers them."""
        last_seq = self.expected_seq - 1
        if self.broken:
            return
        if head is None:
            return self._break(last_seq, self.last_id, "the chain has no head record")
        head_seq, head_hash = head
        if head_seq > last_seq:
            self._break(
                last_seq + 1,
                None,
                f"missing row(s) at the end: the chain's head is sequence {head_seq}, "
                f"the last row found is {last_seq}",
            )
        elif head_seq != last_seq or head_hash != self.prev_hash:
            self._break(
                last_seq,
                self.last_id,
                f"the chain's head (sequence {head_seq}, {head_hash[:16]}) does not match its "
                "last row",
            )


def _rows(cursor, sql):
    cursor.execute(sql)
    while True:
        batch = cursor.fetchmany(BATCH)
        if not batch:
            return
        yield from batch


def verify_audit_trail(*, anchors: list[tuple[str, int, str]] = ()) -> ChainReport:
    """Recompute every chain; the first broken link of each, and each chain's head. `anchors`
    (chain, sequence, hash prefix), as printed on a casebook, must still be in the trail.
    Read only, in one snapshot (when called outside a transaction: the command, the page), so
    rows written meanwhile do not look like breaks."""
    report = ChainReport()
    vendor = connection.vendor
    started = time.monotonic()
    fresh = not connection.in_atomic_block
    with transaction.atomic():
        if vendor == "postgresql" and fresh:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        with connection.cursor() as cursor:
            cursor.execute("SELECT chain, seq, row_hash FROM audit_chainhead")
            heads = {chain: (seq, hash_) for chain, seq, hash_ in cursor.fetchall()}
            cursor.execute(
                "SELECT id, patient_id FROM audit_auditentry "
                "WHERE chain_seq IS NULL OR row_hash IS NULL OR row_hash = '' ORDER BY id"
            )
            unchained = cursor.fetchall()
        walks: dict[str, _ChainWalk] = {}
        walk = None
        # A server-side cursor on PostgreSQL: the trail is streamed, never loaded whole.
        cursor = connection.chunked_cursor() if vendor == "postgresql" else connection.cursor()
        try:
            for entry_id, chain, seq, prev, stored, *values in _rows(cursor, _select_sql(vendor)):
                if walk is None or walk.chain != chain:
                    walk = walks[chain] = _ChainWalk(chain, report)
                report.rows += 1
                content = dict(zip(CONTENT_COLUMNS, values, strict=True))
                walk.step(entry_id, seq, prev, stored, content, vendor)
        finally:
            cursor.close()
        for chain in sorted(heads.keys() - walks.keys()):
            if heads[chain][0] > 0:
                walks[chain] = _ChainWalk(chain, report)
        for chain, walk_ in sorted(walks.items()):
            walk_.finish(heads.get(chain))
            if walk_.expected_seq > 1:
                report.heads.append(ChainHead(chain, walk_.expected_seq - 1, walk_.prev_hash))
        for entry_id, patient_id in unchained:
            report.broken.append(
                BrokenLink(
                    chain_of(patient_id),
                    None,
                    entry_id,
                    "unchained row: no sequence or hash (inserted with the triggers off)",
                )
            )
        report.broken += _anchor_problems(anchors)
    report.chains = len(walks)
    report.seconds = time.monotonic() - started
    report.broken.sort(key=lambda b: (b.chain, b.sequence or 0))
    return report


def _anchor_problems(anchors) -> list[BrokenLink]:
    problems = []
    for chain, sequence, prefix in anchors:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, row_hash FROM audit_auditentry WHERE chain = %s AND chain_seq = %s",
                [chain, sequence],
            )
            found = cursor.fetchone()
        if found is None:
            problems.append(BrokenLink(chain, sequence, None, "anchored row is missing"))
        elif not found[1].startswith(prefix.lower()):
            problems.append(
                BrokenLink(
                    chain,
                    sequence,
                    found[0],
                    f"rewritten: its hash is {found[1][:16]}, the anchor says {prefix}",
                )
            )
    return problems


def parse_anchor(text: str) -> tuple[str, int, str]:
    """ "patient:12#37:3f9a1c0b..." (as a casebook prints it) -> (chain, sequence, prefix)."""
    chain, _, rest = text.rpartition("#")
    sequence, _, prefix = rest.partition(":")
    if not chain or not sequence.isdigit() or len(prefix) < 8:
        raise ValueError(
            f"{text!r}: an anchor reads CHAIN#SEQUENCE:HASH (at least 8 hex characters), "
            "e.g. patient:12#37:3f9a1c0b"
        )
    return chain, int(sequence), prefix


def chain_heads(*, patient_ids: list[int]) -> list[ChainHead]:
    """The patients' chains' last links as they stand (what a casebook prints); one query."""
    from .models import AuditChainHead

    heads = AuditChainHead.objects.filter(chain__in=[chain_of(pk) for pk in patient_ids])
    return [ChainHead(h.chain, h.seq, h.row_hash) for h in heads if h.seq > 0]
