"""Extension points of the patient pages: what the apps above `patients` (follow-up, monitoring,
results) add to the patient page and the CRF page, without `patients` importing them.

Each app registers its provider in its AppConfig.ready(); `patients` calls what is registered
(`patients.selectors.patient_page_record` and `crf_slot`). With nothing registered the pages
show the patient record alone: no visit status, no signature, no query, no chart.

Three points, no more:
* record annotators fill the matrix's fields kept for other apps (visit status, open queries,
  source verification, signatures) in place;
* panels add a block, with its template, below the matrix of the patient page;
* the slot review (one provider) tells the CRF page whether a signature locks the visit and
  which data queries and source verification the record has.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import Visit
    from .selectors import PatientRecord

# ---- the patient page ------------------------------------------------------------------------

# annotator(record=PatientRecord) -> None: sets the matrix fields its app owns.
RecordAnnotator = Callable[..., None]

_annotators: list[RecordAnnotator] = []


def register_record_annotator(annotator: RecordAnnotator) -> None:
    """Called with `record=` (a PatientRecord, `closed` already set) on every patient page,
    in the order of registration. It fills, from data it loads in a bounded number of
    queries, the fields PatientRecord, VisitRow and FormCell keep for other apps (their
    comments name them) and must not change anything else."""
    if annotator not in _annotators:
        _annotators.append(annotator)


def annotate_record(record: "PatientRecord") -> None:
    for annotator in _annotators:
        annotator(record=record)


@dataclass(frozen=True)
class Panel:
    """A block of the patient page below the visit matrix: `template` is included with the
    page's context, to which `context` is added (its keys must not clash with the page's)."""

    template: str
    context: Mapping[str, Any] = field(default_factory=dict)


# panel(record=PatientRecord) -> Panel | None (None: nothing to show for this patient).
PanelProvider = Callable[..., Panel | None]

_panels: list[PanelProvider] = []


def register_panel(provider: PanelProvider) -> None:
    """Called with `record=` (an annotated PatientRecord) on every patient page; the panels
    show in the order of registration."""
    if provider not in _panels:
        _panels.append(provider)


def panels_for(record: "PatientRecord") -> list[Panel]:
    return [p for p in (provider(record=record) for provider in _panels) if p is not None]


# ---- the CRF page ----------------------------------------------------------------------------


def _no_lock(*, visit: "Visit") -> None:
    return None


def _no_queries(*, record) -> list:
    return []


def _no_sdv(*, record) -> None:
    return None


@dataclass(frozen=True)
class SlotReview:
    """The review of CRF slots, as the CRF page shows it (monitoring provides it):
    `lock(visit=)` is the signature that locks the visit (None: open), `queries(record=)` the
    record's data queries, newest first, and `sdv(record=)` its source-verification row (for
    the template: `status`, `status_label`, `verification`)."""

    lock: Callable[..., object | None] = _no_lock
    queries: Callable[..., list] = _no_queries
    sdv: Callable[..., object | None] = _no_sdv


_slot_review = [SlotReview()]


def register_slot_review(review: SlotReview) -> None:
    """One provider: a second registration replaces the first."""
    _slot_review[0] = review


def slot_review() -> SlotReview:
    return _slot_review[0]
