"""Follow-up: the follow-up visit CRF, the adverse-event log, end of study, schedule
extensions and visit reminders. Visits themselves are `patients.Visit` rows (one per patient
per visit definition), created by `followup.services`."""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from core.choices import NY
from core.jobs import JobClaim
from core.limits import Limits
from core.models import BaseModel
from core.rules import end_date_or_ongoing
from core.scoping import SiteScopedManager
from patients.models import CrfRecord, Examination, Patient, Visit
from trial.models import VisitDefinition


class Change(models.TextChoices):
    """Patient-reported change since the procedure."""

    IMPROVED = "IMPROVED", "Improved"
    UNCHANGED = "UNCHANGED", "Unchanged"
    WORSE = "WORSE", "Worse"


class FollowUpVisit(CrfRecord):
    """The clinical part of a follow-up visit (M4..M12, extensions, unscheduled); the semen
    analysis and hormones of the visit are their own CRFs (labs)."""

    volume_method = models.CharField(
        "testicular volume method", max_length=14, choices=Examination.VolumeMethod.choices
    )
    left_volume_ml = models.DecimalField(
        "left testicular volume (mL)", max_digits=4, decimal_places=1
    )
    right_volume_ml = models.DecimalField(
        "right testicular volume (mL)", max_digits=4, decimal_places=1
    )
    sexual_function = models.CharField(
        "sexual function", max_length=9, choices=Change.choices, help_text="Patient-reported."
    )
    libido = models.CharField(max_length=9, choices=Change.choices, help_text="Patient-reported.")
    iief5_score = models.PositiveSmallIntegerField(
        "IIEF-5 score", null=True, blank=True, help_text="Optional."
    )
    concomitant_medications_taken = models.CharField(
        "concomitant medications since the last visit",
        max_length=1,
        choices=NY.choices,
        help_text="Record each medication in the patient's concomitant-medication log first.",
    )
    adverse_events_since_last_visit = models.CharField(
        "adverse events since the last visit",
        max_length=1,
        choices=NY.choices,
        help_text="Record each event in the patient's adverse-event log.",
    )

    limits = {
        "left_volume_ml": Limits(0, 50, unit="mL"),
        "right_volume_ml": Limits(0, 50, unit="mL"),
        "iief5_score": Limits(5, 25),
    }

    class Meta(CrfRecord.Meta):
        verbose_name = "follow-up visit"


class EndOfStudy(CrfRecord):
    """How and when the patient's participation ended (CDISC NCOMPLT codes)."""

    class Status(models.TextChoices):
        COMPLETED = "COMPLETED", "Completed"
        WITHDRAWN = "WITHDRAWAL BY SUBJECT", "Withdrawn"
        LOST = "LOST TO FOLLOW-UP", "Lost to follow-up"
        DEATH = "DEATH", "Death"

    status = models.CharField(max_length=21, choices=Status.choices)
    withdrawal_reason = models.TextField("reason for withdrawal", blank=True)
    last_contact_date = models.DateField(
        "date of last contact", null=True, blank=True, help_text="For a patient lost to follow-up."
    )
    comments = models.TextField(blank=True)

    class Meta(CrfRecord.Meta):
        verbose_name = "end of study"
        verbose_name_plural = "ends of study"

    def clean(self):
        super().clean()
        errors = {}
        if self.status == self.Status.WITHDRAWN and not self.withdrawal_reason.strip():
            errors["withdrawal_reason"] = "Give the reason the patient withdrew."
        if self.status != self.Status.WITHDRAWN and self.withdrawal_reason.strip():
            errors["withdrawal_reason"] = "A reason for withdrawal only goes with a withdrawal."
        if self.status == self.Status.LOST and self.last_contact_date is None:
            errors["last_contact_date"] = "Give the date the patient was last in contact."
        if (
            self.last_contact_date
            and self.assessment_date
            and self.last_contact_date > self.assessment_date
        ):
            errors["last_contact_date"] = "The last contact cannot follow the end-of-study date."
        if errors:
            raise ValidationError(errors)


class AdverseEvent(BaseModel):
    """One adverse event (CDASH/SDTM AE domain), any time after consent. A log of the patient,
    not a once-per-visit form. Voided, never deleted."""

    class Grade(models.IntegerChoices):
        """CTCAE v5.0 (AETOXGR)."""

        MILD = 1, "1 - Mild"
        MODERATE = 2, "2 - Moderate"
        SEVERE = 3, "3 - Severe or medically significant"
        LIFE_THREATENING = 4, "4 - Life-threatening"
        DEATH = 5, "5 - Death related to the event"

    class Relation(models.TextChoices):
        NOT_RELATED = "NOT RELATED", "Not related"
        UNLIKELY = "UNLIKELY RELATED", "Unlikely"
        POSSIBLE = "POSSIBLY RELATED", "Possible"
        PROBABLE = "PROBABLY RELATED", "Probable"
        DEFINITE = "RELATED", "Definite"

    class Action(models.TextChoices):
        """CDISC ACN (C66767), the codes that apply to a single administration."""

        NOT_APPLICABLE = "NOT APPLICABLE", "Not applicable (single administration)"
        WITHDRAWN = "DRUG WITHDRAWN", "Treatment not given (withdrawn)"
        NOT_CHANGED = "DOSE NOT CHANGED", "Treatment given as planned"
        UNKNOWN = "UNKNOWN", "Unknown"

    class Outcome(models.TextChoices):
        """CDISC OUT (C66768)."""

        RECOVERED = "RECOVERED/RESOLVED", "Recovered / resolved"
        RECOVERING = "RECOVERING/RESOLVING", "Recovering / resolving"
        NOT_RECOVERED = "NOT RECOVERED/NOT RESOLVED", "Not recovered / not resolved"
        SEQUELAE = "RECOVERED/RESOLVED WITH SEQUELAE", "Recovered / resolved with sequelae"
        FATAL = "FATAL", "Fatal"
        UNKNOWN = "UNKNOWN", "Unknown"

    ENDED_OUTCOMES = (Outcome.RECOVERED, Outcome.SEQUELAE, Outcome.FATAL)
    CONTINUING_OUTCOMES = (Outcome.RECOVERING, Outcome.NOT_RECOVERED)
    # ICH E2A seriousness criteria and their SDTM flags.
    CRITERIA = {
        "serious_death": "AESDTH",
        "serious_life_threatening": "AESLIFE",
        "serious_hospitalisation": "AESHOSP",
        "serious_disability": "AESDISAB",
        "serious_congenital_anomaly": "AESCONG",
        "serious_other": "AESMIE",
    }
    # Pre-listed procedure-specific terms (CTCAE v5 spellings), offered as suggestions.
    SUGGESTED_TERMS = (
        "Testicular pain",
        "Scrotal pain",
        "Hematoma",
        "Testicular hemorrhage",
        "Orchitis",
        "Epididymal infection",
        "Wound infection",
        "Testicular atrophy",
        "Pain at the bone-marrow aspiration site",
        "Hematoma at the bone-marrow aspiration site",
        "Anaphylaxis",
        "Vasovagal reaction",
    )

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="adverse_events")
    number = models.PositiveSmallIntegerField("AE number", editable=False)  # AESPID
    term = models.CharField("adverse event (verbatim term)", max_length=200)  # AETERM
    location = models.CharField(
        "location / side", max_length=100, blank=True, help_text="e.g. left testis."
    )
    onset_date = models.DateField("onset date")  # AESTDTC
    end_date = models.DateField("end date", null=True, blank=True)  # AEENDTC
    ongoing = models.BooleanField(default=False)  # AEONGO
    ctcae_grade = models.PositiveSmallIntegerField("CTCAE grade", choices=Grade.choices)
    ctcae_version = models.CharField("CTCAE version", max_length=8, default="5.0", editable=False)
    serious = models.CharField(max_length=1, choices=NY.choices)  # AESER
    serious_death = models.BooleanField("results in death", default=False)
    serious_life_threatening = models.BooleanField("life-threatening", default=False)
    serious_hospitalisation = models.BooleanField(
        "requires or prolongs inpatient hospitalisation", default=False
    )
    serious_disability = models.BooleanField(
        "persistent or significant disability/incapacity", default=False
    )
    serious_congenital_anomaly = models.BooleanField(
        "congenital anomaly / birth defect", default=False
    )
    serious_other = models.BooleanField("other important medical event", default=False)
    relation_aspiration = models.CharField(
        "relation to the bone-marrow aspiration", max_length=16, choices=Relation.choices
    )
    relation_injection = models.CharField(
        "relation to the intratesticular injection", max_length=16, choices=Relation.choices
    )
    relation_product = models.CharField(
        "relation to the MSC product", max_length=16, choices=Relation.choices
    )  # AEREL
    action_taken = models.CharField(
        "action taken with study treatment",
        max_length=16,
        choices=Action.choices,
        default=Action.NOT_APPLICABLE,
    )  # AEACN
    other_action = models.CharField("other action taken", max_length=200, blank=True)  # AEACNOTH
    treatment_given = models.CharField(
        "treatment given for the event", max_length=1, choices=NY.choices
    )  # AECONTRT
    outcome = models.CharField(max_length=32, choices=Outcome.choices)  # AEOUT
    voided_at = models.DateTimeField(null=True, blank=True, editable=False)
    void_reason = models.TextField(blank=True, editable=False)

    objects = SiteScopedManager()
    site_lookup = "patient__site"
    crf_code = "adverse_event"

    class Meta:
        ordering = ["patient", "number"]
        constraints = [
            models.UniqueConstraint(fields=["patient", "number"], name="unique_ae_number"),
            models.CheckConstraint(
                condition=Q(ctcae_grade__gte=1, ctcae_grade__lte=5),
                name="ae_ctcae_grade_1_5",
                violation_error_message="The CTCAE grade is 1 to 5.",
            ),
            # ICH E2A: any seriousness criterion makes the event serious.
            models.CheckConstraint(
                condition=Q(serious=NY.YES)
                | Q(
                    serious_death=False,
                    serious_life_threatening=False,
                    serious_hospitalisation=False,
                    serious_disability=False,
                    serious_congenital_anomaly=False,
                    serious_other=False,
                ),
                name="ae_criterion_means_serious",
                violation_error_message="An event meeting a seriousness criterion is serious.",
            ),
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=models.F("onset_date")),
                name="ae_end_after_onset",
                violation_error_message="The end date cannot precede the onset.",
            ),
            models.CheckConstraint(
                condition=~Q(ongoing=True, end_date__isnull=False),
                name="ae_ongoing_no_end",
                violation_error_message="An ongoing event has no end date.",
            ),
        ]

    def __str__(self):
        return f"{self.patient} AE {self.number}: {self.term}"

    @property
    def seriousness_criteria(self) -> list[str]:
        return [
            str(self._meta.get_field(name).verbose_name)
            for name in self.CRITERIA
            if getattr(self, name)
        ]

    @property
    def is_serious(self) -> bool:
        return self.serious == NY.YES

    def clean(self):
        errors: dict[str, str] = {}
        if message := end_date_or_ongoing(
            start=self.onset_date,
            end=self.end_date,
            ongoing=self.ongoing,
            what="event",
            start_word="onset",
        ):
            errors["end_date"] = message
        criteria = self.seriousness_criteria
        if self.serious == NY.NO and criteria:
            errors["serious"] = (
                f"An event that meets a seriousness criterion ({', '.join(criteria)}) is "
                "serious: answer Yes."
            )
        if self.serious == NY.YES and not criteria:
            errors["serious"] = "Tick the criterion (ICH E2A) that makes the event serious."
        fatal = self.outcome == self.Outcome.FATAL
        if self.ctcae_grade == self.Grade.DEATH and not (fatal and self.serious_death):
            errors["ctcae_grade"] = (
                "Grade 5 means death related to the event: set the outcome to fatal and tick "
                "'results in death'."
            )
        if fatal != self.serious_death and self.outcome:
            errors["outcome"] = "A fatal outcome and the criterion 'results in death' go together."
        if self.outcome in self.ENDED_OUTCOMES and self.ongoing:
            errors["outcome"] = "This outcome means the event has ended: give its end date."
        if self.outcome in self.CONTINUING_OUTCOMES and self.end_date:
            errors["outcome"] = (
                "The event is not resolved yet: tick ongoing, or choose the outcome at its end."
            )
        if errors:
            raise ValidationError(errors)


class ConcomitantMedication(BaseModel):
    """One prior or concomitant medication (CDASH/SDTM CM domain): a log of the patient, like
    the adverse events. It may have started before consent (a prior medication); the entry
    itself is made once the patient has consented. Voided, never deleted."""

    class DoseUnit(models.TextChoices):
        """CDISC UNIT (C71620), the CDASH concomitant-medication dose units subset."""

        MG = "mg", "mg"
        UG = "ug", "µg"
        G = "g", "g"
        IU = "IU", "IU (international units)"
        ML = "mL", "mL"
        TABLET = "TABLET", "tablet"
        CAPSULE = "CAPSULE", "capsule"

    class Route(models.TextChoices):
        """CDISC ROUTE (C66729) subset; any other route is named in route_other."""

        ORAL = "ORAL", "Oral"
        INTRAMUSCULAR = "INTRAMUSCULAR", "Intramuscular"
        SUBCUTANEOUS = "SUBCUTANEOUS", "Subcutaneous"
        INTRAVENOUS = "INTRAVENOUS", "Intravenous"
        TOPICAL = "TOPICAL", "Topical"
        TRANSDERMAL = "TRANSDERMAL", "Transdermal"
        OTHER = "OTHER", "Other"

    class Frequency(models.TextChoices):
        """CDISC FREQ (C71113) subset; any other frequency is described in frequency_other."""

        QD = "QD", "Once a day"
        BID = "BID", "Twice a day"
        TID = "TID", "Three times a day"
        QW = "QW", "Once a week"
        Q2W = "Q2W", "Every 2 weeks"
        ONCE = "ONCE", "Once (single dose)"
        PRN = "PRN", "As needed"
        OTHER = "OTHER", "Other"

    class HormoneClass(models.TextChoices):
        HCG = "HCG", "hCG"
        FSH = "FSH", "FSH (recombinant or urinary)"
        SERM = "SERM", "Clomiphene or other SERM (e.g. tamoxifen)"
        AROMATASE_INHIBITOR = "AROMATASE_INHIBITOR", "Aromatase inhibitor (anastrozole, letrozole)"
        ANDROGEN = "ANDROGEN", "Testosterone or other androgen"
        OTHER_HORMONE = "OTHER_HORMONE", "Other hormone-active (e.g. corticosteroid)"
        NONE = "NONE", "Not hormone-active"

    # Name fragments of common hormone-active drugs -> their class: an entry naming one of them
    # cannot be filed as not hormone-active (it would hide a confounder of the outcomes).
    HORMONE_KEYWORDS = {
        "clomiphene": HormoneClass.SERM,
        "clomifene": HormoneClass.SERM,
        "tamoxifen": HormoneClass.SERM,
        "chorionic": HormoneClass.HCG,
        "hcg": HormoneClass.HCG,
        "follitropin": HormoneClass.FSH,
        "urofollitropin": HormoneClass.FSH,
        "fsh": HormoneClass.FSH,
        "menotropin": HormoneClass.FSH,
        "anastrozole": HormoneClass.AROMATASE_INHIBITOR,
        "letrozole": HormoneClass.AROMATASE_INHIBITOR,
        "testosterone": HormoneClass.ANDROGEN,
    }
    # Offered as suggestions (the verbatim name stays free text, coded later with WHODrug).
    SUGGESTED_MEDICATIONS = (
        "Clomiphene citrate",
        "Human chorionic gonadotropin (hCG)",
        "Follitropin alfa (recombinant FSH)",
        "Urofollitropin (urinary FSH)",
        "Menotropin (hMG)",
        "Anastrozole",
        "Letrozole",
        "Tamoxifen",
        "Testosterone undecanoate",
        "Testosterone enanthate",
        "Prednisolone",
        "Paracetamol",
        "Ibuprofen",
        "Ciprofloxacin",
        "Amoxicillin-clavulanate",
        "Vitamin E",
        "L-carnitine",
        "Folic acid",
    )

    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, related_name="concomitant_medications"
    )
    number = models.PositiveSmallIntegerField("medication number", editable=False)  # CMSPID
    medication = models.CharField("medication (name as reported)", max_length=200)  # CMTRT
    indication = models.CharField("indication", max_length=200)  # CMINDC
    dose = models.DecimalField(
        "dose per administration", max_digits=10, decimal_places=3, null=True, blank=True
    )  # CMDOSE
    dose_unit = models.CharField(
        "dose unit", max_length=7, choices=DoseUnit.choices, blank=True
    )  # CMDOSU
    route = models.CharField(max_length=13, choices=Route.choices)  # CMROUTE
    route_other = models.CharField("other route", max_length=100, blank=True)
    frequency = models.CharField(max_length=5, choices=Frequency.choices)  # CMDOSFRQ
    frequency_other = models.CharField("other frequency", max_length=100, blank=True)
    start_date = models.DateField("start date")  # CMSTDTC
    end_date = models.DateField("end date", null=True, blank=True)  # CMENDTC
    ongoing = models.BooleanField(default=False)  # CMONGO
    hormone_class = models.CharField(
        "hormone-active treatment",
        max_length=19,
        choices=HormoneClass.choices,
        help_text="hCG, FSH, clomiphene, aromatase inhibitors, testosterone and steroids change "
        "FSH, LH, testosterone and sperm production: they confound the trial's outcomes.",
    )  # CMCAT
    voided_at = models.DateTimeField(null=True, blank=True, editable=False)
    void_reason = models.TextField(blank=True, editable=False)

    objects = SiteScopedManager()
    site_lookup = "patient__site"
    crf_code = "concomitant_medication"
    # The dates the write guards (core.guards) hold against the end of study.
    dated_fields = ("start_date", "end_date")

    class Meta:
        ordering = ["patient", "number"]
        constraints = [
            models.UniqueConstraint(fields=["patient", "number"], name="unique_cm_number"),
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=models.F("start_date")),
                name="cm_end_after_start",
                violation_error_message="The end date cannot precede the start.",
            ),
            models.CheckConstraint(
                condition=Q(ongoing=True, end_date__isnull=True)
                | Q(ongoing=False, end_date__isnull=False),
                name="cm_end_date_or_ongoing",
                violation_error_message="A medication has an end date or is ongoing.",
            ),
            models.CheckConstraint(
                condition=Q(dose__isnull=True, dose_unit="") | (Q(dose__gt=0) & ~Q(dose_unit="")),
                name="cm_dose_with_unit",
                violation_error_message="A dose is above 0 and has its unit.",
            ),
        ]

    def __str__(self):
        return f"{self.patient} CM {self.number}: {self.medication}"

    @property
    def is_hormone_active(self) -> bool:
        return bool(self.hormone_class) and self.hormone_class != self.HormoneClass.NONE

    @property
    def dose_label(self) -> str:
        if self.dose is None:
            return ""
        return f"{self.dose.normalize():f} {self.get_dose_unit_display()}"

    @property
    def route_label(self) -> str:
        return self.route_other if self.route == self.Route.OTHER else self.get_route_display()

    @property
    def frequency_label(self) -> str:
        if self.frequency == self.Frequency.OTHER:
            return self.frequency_other
        return self.get_frequency_display()

    def known_hormone_class(self) -> str | None:
        """The class of a hormone-active drug the name mentions, if any."""
        words = self.medication.lower()
        return next((c for key, c in self.HORMONE_KEYWORDS.items() if key in words), None)

    def clean(self):
        errors: dict[str, str] = {}
        if message := end_date_or_ongoing(
            start=self.start_date,
            end=self.end_date,
            ongoing=self.ongoing,
            what="medication",
            start_word="start",
        ):
            errors["end_date"] = message
        if self.dose is not None and self.dose <= 0:
            errors["dose"] = "The dose is above 0; leave it empty when it is not known."
        elif self.dose is not None and not self.dose_unit:
            errors["dose_unit"] = "Give the unit of the dose."
        elif self.dose is None and self.dose_unit:
            errors["dose"] = "Give the dose, or clear its unit."
        if self.route == self.Route.OTHER and not self.route_other.strip():
            errors["route_other"] = "Name the route."
        if self.route != self.Route.OTHER and self.route_other.strip():
            errors["route_other"] = "Only for a route not in the list: choose Other."
        if self.frequency == self.Frequency.OTHER and not self.frequency_other.strip():
            errors["frequency_other"] = "Describe the frequency."
        if self.frequency != self.Frequency.OTHER and self.frequency_other.strip():
            errors["frequency_other"] = "Only for a frequency not in the list: choose Other."
        known = self.known_hormone_class() if self.medication else None
        if known and self.hormone_class == self.HormoneClass.NONE:
            errors["hormone_class"] = (
                f"{self.medication} is hormone-active: choose "
                f"'{self.HormoneClass(known).label}' (or the class that applies)."
            )
        if errors:
            raise ValidationError(errors)


class VisitExtension(BaseModel):
    """Marks a visit definition created to extend follow-up past the protocol's last
    scheduled visit (M14, M16...). Only patients whose schedule was extended get a visit of
    it; `schedule_create` never uses it."""

    # Protocol configuration, not clinical data: no capture trigger (audit/dbtriggers.py).
    audit_exempt = True

    definition = models.OneToOneField(
        VisitDefinition, on_delete=models.PROTECT, related_name="extension"
    )

    def __str__(self):
        return f"Extension {self.definition.code}"


class Reminder(BaseModel):
    """One reminder e-mail about one visit, claimed before it is sent: unique per (visit,
    kind), so running the daily job twice sends nothing twice. A claim older than
    REMINDER_SENDING_STALE_MINUTES was left by a sender that died: the next run takes it."""

    # Operational state (claimed, sent, failed), not clinical data: its status flips are not
    # clinical changes, so the capture trigger skips it (audit/dbtriggers.py).
    audit_exempt = True

    class Kind(models.TextChoices):
        WINDOW_OPENS_SOON = "window_opens_soon", "Window opens soon"
        OVERDUE = "overdue", "Overdue"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    visit = models.ForeignKey(Visit, on_delete=models.PROTECT, related_name="reminders")
    kind = models.CharField(max_length=17, choices=Kind.choices)
    status = models.CharField(max_length=7, choices=Status.choices, default=Status.PENDING)
    due_on = models.DateField("due on")
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(
        null=True, blank=True, help_text="When a run last claimed it to send it."
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    recipients = models.TextField(blank=True, help_text="E-mail addresses, comma-separated.")
    error = models.TextField(blank=True)

    objects = SiteScopedManager()
    site_lookup = "visit__patient__site"

    class Meta:
        ordering = ["-due_on", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["visit", "kind"], name="unique_visit_reminder")
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.visit}"


def _reminder_stale_after() -> timedelta:
    return timedelta(minutes=settings.REMINDER_SENDING_STALE_MINUTES)


# A run claims a reminder (pending or failed) to send it; a claim older than
# REMINDER_SENDING_STALE_MINUTES (longer than the job's time limit, so no live sender holds
# it) was left by a sender that died: the next run takes it. A row left sending without a
# claim time (before claimed_at existed) counts from its last save. The claim time is the token.
REMINDER_CLAIM = JobClaim(
    model=Reminder,
    free=(Reminder.Status.PENDING, Reminder.Status.FAILED),
    held=Reminder.Status.SENDING,
    token="claimed_at",
    alive=("claimed_at", "updated_at"),
    stale_after=_reminder_stale_after,
)
