"""Reading and validating a protocol data file, without touching the database.

Used by the `load_protocol` command (which then writes it) and by a system check at start-up.
"""

import json
import re
from pathlib import Path

from core import crf

from .models import CRITERION_SLOTS, VisitDefinition

REQUIRED_KEYS = ("registry_id", "short_name", "title", "version", "sites", "visits")

# Eligibility criteria: codes as CDISC IETESTCD writes them, INCL01.. and EXCL01.. (the
# eligibility CRF has CRITERION_SLOTS answer slots per category).
CRITERION_CODE = {
    "inclusion": re.compile(r"^INCL(\d\d)$"),
    "exclusion": re.compile(r"^EXCL(\d\d)$"),
}


def read(path: Path) -> dict:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def problems(data: dict) -> tuple[list[str], list[str]]:
    """(errors, warnings) found in a protocol definition."""
    errors: list[str] = []
    warnings: list[str] = []
    for key in REQUIRED_KEYS:
        if key not in data:
            errors.append(f"missing key '{key}'")
    visits = data.get("visits", [])
    codes = [v.get("code") for v in visits]
    if len(codes) != len(set(codes)):
        errors.append("visit codes are not unique")
    kinds = {v.get("kind") for v in visits}
    for needed in ("screening", "procedure"):
        if needed not in kinds:
            errors.append(f"no visit of kind '{needed}'")
    for v in visits:
        code = v.get("code", "?")
        if v.get("kind") not in VisitDefinition.Kind.values:
            errors.append(f"visit {code}: unknown kind {v.get('kind')!r}")
        if v.get("anchor", "none") not in VisitDefinition.Anchor.values:
            errors.append(f"visit {code}: unknown anchor {v.get('anchor')!r}")
        if v.get("kind") == "scheduled" and v.get("target_day") is None:
            errors.append(f"visit {code}: a scheduled visit needs a target_day")
        for key in ("window_before", "window_after"):
            if int(v.get(key, 0)) < 0:
                errors.append(f"visit {code}: {key} cannot be negative")
    missing = sorted(
        {
            f.get("code", "")
            for v in visits
            for f in v.get("forms", [])
            if not crf.is_registered(f.get("code", ""))
        }
    )
    uses_eligibility = any(
        f.get("code") == "eligibility" for v in visits for f in v.get("forms", [])
    )
    errors += _criteria_problems(data.get("eligibility"), required=uses_eligibility)
    if missing:
        # A warning, not an error: the visit still runs; these forms are hidden until built.
        warnings.append(f"forms without a CRF in this build (hidden): {', '.join(missing)}")
    return errors, warnings


def _criteria_problems(eligibility, *, required: bool) -> list[str]:
    if eligibility is None:
        return (
            ["missing key 'eligibility' (the criteria the eligibility form asks)"]
            if required
            else []
        )
    errors = []
    if not eligibility.get("inclusion"):
        errors.append("eligibility: at least one inclusion criterion is needed")
    for category, pattern in CRITERION_CODE.items():
        seen = set()
        for criterion in eligibility.get(category, []):
            if not isinstance(criterion, dict):
                errors.append(
                    f"eligibility: each {category} criterion is "
                    '{"code": ..., "text": ...}, not ' + repr(criterion)
                )
                continue
            code = criterion.get("code", "")
            match = pattern.match(code)
            if not match or not 1 <= int(match.group(1)) <= CRITERION_SLOTS:
                prefix = "INCL" if category == "inclusion" else "EXCL"
                errors.append(
                    f"eligibility: {category} code {code!r} is not {prefix}01..{prefix}"
                    f"{CRITERION_SLOTS:02d}"
                )
            if code in seen:
                errors.append(f"eligibility: {code} is listed twice")
            seen.add(code)
            if not str(criterion.get("text", "")).strip():
                errors.append(f"eligibility: {code} has no text")
    return errors


def eligibility_criteria(data: dict) -> list[dict]:
    """The file's criteria as Protocol.eligibility_criteria keeps them."""
    eligibility = data.get("eligibility") or {}
    return [
        {"code": c["code"], "category": category.upper(), "text": c["text"].strip()}
        for category in ("inclusion", "exclusion")
        for c in eligibility.get(category, [])
    ]
