"""The patient record: enrolment, identifiers (kept apart), consent, the patient's visits and
the screening CRFs that belong to the patient rather than to a lab (history, exam, genetics,
biopsy). Lab CRFs (semen, hormones, procedure day) live in `labs`."""

from datetime import date
from decimal import Decimal
from uuid import uuid4

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from core.choices import NY, Laterality
from core.identifiers import ALL_FIELDS
from core.limits import Limits, soft_limit_flags, validate_hard_limits
from core.models import BaseModel
from core.scoping import SiteScopedManager
from core.uploads import scan_type
from trial.models import CRITERION_SLOTS, ConsentVersion, StudySite, VisitDefinition


def age_on(date_of_birth: date, on: date) -> int:
    years = on.year - date_of_birth.year
    return years - ((on.month, on.day) < (date_of_birth.month, date_of_birth.day))


class Patient(BaseModel):
    site = models.ForeignKey(StudySite, on_delete=models.PROTECT, related_name="patients")
    # Sequential per site, never reused (patients are never deleted).
    number = models.PositiveIntegerField(editable=False)
    study_id = models.CharField("study id", max_length=16, unique=True, editable=False)
    date_of_birth = models.DateField("date of birth")
    enrolment_date = models.DateField("enrolment date")

    objects = SiteScopedManager()
    site_lookup = "site"

    class Meta:
        ordering = ["site__code", "number"]
        constraints = [
            models.UniqueConstraint(fields=["site", "number"], name="unique_patient_number")
        ]

    def __str__(self):
        return self.study_id

    @property
    def age_at_enrolment(self) -> int:
        return age_on(self.date_of_birth, self.enrolment_date)


class PatientIdentity(BaseModel):
    """Direct identifiers, apart from the clinical record: shown only to staff of the
    patient's site, never in lists, exports or PDFs."""

    patient = models.OneToOneField(Patient, on_delete=models.PROTECT, related_name="identity")
    full_name = models.CharField(max_length=200)
    phone = models.CharField(max_length=40, blank=True)
    national_id = models.CharField("national id", max_length=40, blank=True)
    address = models.TextField(blank=True)

    # Every field: the whole record identifies the patient (core.identifiers).
    identifier_fields = ALL_FIELDS
    objects = SiteScopedManager()
    site_lookup = "patient__site"

    class Meta:
        verbose_name_plural = "patient identities"

    def __str__(self):
        return f"Identity of {self.patient}"


class PatientStatus(models.Model):
    """The patient's stage and whether a live value of his is flagged (outside its expected
    range), stored so that the home page and the patient list count and filter with one
    indexed query instead of EXISTS over every form table for every patient (issue 12).

    Derived data, never entered: `patients.services.patient_status_refresh` rewrites the row
    in the transaction of every write that can change it (enrolment, consent signed or
    withdrawn, a CRF that decides the stage or has soft limits saved or voided), computing
    it with the one definition of the rules (`patients.selectors.with_stage` and
    `with_flag_count`). `manage.py patient_status --repair` and the restore check report and
    mend drift (a raw SQL write that bypassed the services)."""

    # Derived from audited rows, not clinical data itself: auditing it would fill the trail
    # with a copy of what the form's own audit rows already say (audit/dbtriggers.py).
    audit_exempt = True

    # Derived data follows its patient (patients are never deleted anyway). An id of its
    # own, as every patient-scoped table: bench/scale.py's clone remaps ids generically.
    patient = models.OneToOneField(Patient, on_delete=models.CASCADE, related_name="stored_status")
    # The patient's site again, so that a site's counts read this table alone (its indexes).
    site = models.ForeignKey(StudySite, on_delete=models.PROTECT, related_name="+")
    stage = models.CharField(max_length=20)  # patients.selectors.Stage
    has_flags = models.BooleanField(default=False)

    objects = SiteScopedManager()
    site_lookup = "site"

    class Meta:
        verbose_name_plural = "patient statuses"
        indexes = [
            models.Index(fields=["site", "stage"], name="patients_status_site_stage"),
            models.Index(fields=["site", "has_flags"], name="patients_status_site_flags"),
        ]

    def __str__(self):
        return f"{self.patient_id}: {self.stage}{' (flagged)' if self.has_flags else ''}"


def signed_consent_path(instance, filename):
    """A generated name: a uuid and the extension of what the bytes are, never the uploaded name
    (it may name the patient, or claim ".png" for a script). Files stored before keep theirs."""
    try:
        scan = scan_type(instance.document.file)
    except ValueError:  # FieldFile.save(name, content): the content is not on the field yet
        scan = None
    # The extension only helps a person who opens the folder: serving reads the bytes again.
    extension = scan.extension if scan else ".bin"
    patient = instance.patient
    return f"consents/{patient.site.code}/{patient.study_id}/{uuid4().hex}{extension}"


class Consent(BaseModel):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="consents")
    consent_version = models.ForeignKey(
        ConsentVersion, on_delete=models.PROTECT, related_name="consents"
    )
    signed_at = models.DateTimeField("date and time signed")
    obtained_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="consents_obtained"
    )
    witness_name = models.CharField("witness name", max_length=200, blank=True)
    patient_copy_given = models.BooleanField("patient given a copy", default=False)
    document = models.FileField(
        "signed consent (scan)",
        upload_to=signed_consent_path,
        blank=True,
        help_text="PDF or image of the signed form.",
    )
    withdrawn_on = models.DateField("withdrawal date", null=True, blank=True)
    withdrawal_reason = models.TextField(blank=True)

    # A scan stored before names were generated kept the uploaded name, which may be his.
    identifier_fields = ("document",)
    objects = SiteScopedManager()
    site_lookup = "patient__site"

    class Meta:
        ordering = ["patient", "-signed_at"]
        constraints = [
            # A patient signs each version once (a double submit cannot add a second row).
            models.UniqueConstraint(
                fields=["patient", "consent_version"], name="unique_patient_consent_version"
            )
        ]

    def __str__(self):
        return f"{self.patient} consent v{self.consent_version.version}"

    @property
    def signed_on(self) -> date:
        return timezone.localtime(self.signed_at).date()

    def stored_file_label(self, field_name: str) -> str:
        """What the scan is, in the restore check's list of files (audit.integrity)."""
        return f"consent scan of {self.patient.study_id} (consent #{self.pk})"


class Visit(BaseModel):
    """One of the patient's visits (SCR, D0, M4..., UNS n, EOS). Target date and window are
    snapshotted when the visit is created, so a later protocol change does not move them."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="visits")
    definition = models.ForeignKey(VisitDefinition, on_delete=models.PROTECT, related_name="+")
    sequence = models.PositiveSmallIntegerField(default=1)
    target_date = models.DateField(null=True, blank=True)
    window_start = models.DateField(null=True, blank=True)
    window_end = models.DateField(null=True, blank=True)

    objects = SiteScopedManager()
    site_lookup = "patient__site"

    class Meta:
        ordering = ["patient", "definition__order", "sequence"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "definition", "sequence"], name="unique_patient_visit"
            )
        ]

    def __str__(self):
        return f"{self.patient} {self.label}"

    @property
    def code(self) -> str:
        return self.definition.code

    @property
    def label(self) -> str:
        if self.definition.kind == VisitDefinition.Kind.UNSCHEDULED:
            return f"{self.definition.code} {self.sequence}"
        return self.definition.code


class CrfRecord(BaseModel):
    """What every CRF shares: the visit it belongs to, its date, its place among repeats
    (semen analysis 1-3 at screening) and soft deletion. Never hard-deleted."""

    visit = models.ForeignKey(
        Visit, on_delete=models.PROTECT, related_name="%(app_label)s_%(class)s_set"
    )
    sequence = models.PositiveSmallIntegerField(default=1, editable=False)
    assessment_date = models.DateField("date")
    voided_at = models.DateTimeField(null=True, blank=True, editable=False)
    void_reason = models.TextField(blank=True, editable=False)

    objects = SiteScopedManager()
    site_lookup = "visit__patient__site"
    # {field name: Limits}: plausible values (hard) and expected values (soft), defined once.
    limits: dict[str, Limits] = {}
    # Set by core.crf.register().
    crf_code = ""
    crf_title = ""
    # The dates the write guards (core.guards) hold against the end of study.
    dated_fields = ("assessment_date",)

    class Meta:
        abstract = True
        constraints = [
            models.UniqueConstraint(
                fields=["visit", "sequence"],
                condition=models.Q(voided_at__isnull=True),
                name="%(app_label)s_%(class)s_one_per_visit_slot",
            )
        ]

    def __str__(self):
        return f"{self.crf_title} {self.sequence} - {self.visit}"

    def clean(self):
        validate_hard_limits(self)

    def flags(self) -> dict[str, str]:
        return soft_limit_flags(self)


def _require_if(condition: bool, value, field: str, message: str, errors: dict) -> None:
    if condition and value in (None, ""):
        errors[field] = message


class Eligibility(CrfRecord):
    """One answer per eligibility criterion of the protocol (Protocol.eligibility_criteria),
    so another protocol's criteria are configuration, not code. The answer slots are named as
    CDISC IETESTCD names the criteria (incl01 answers INCL01); slots the protocol does not use
    stay blank. Eligible: every inclusion criterion Yes and every exclusion criterion No."""

    INCLUSION = tuple(f"incl{n:02d}" for n in range(1, CRITERION_SLOTS + 1))
    EXCLUSION = tuple(f"excl{n:02d}" for n in range(1, CRITERION_SLOTS + 1))

    class Meta(CrfRecord.Meta):
        verbose_name_plural = "eligibility"

    def criteria(self) -> dict[str, dict]:
        """{answer slot: criterion} for the protocol of this patient's site."""
        return self.visit.patient.site.protocol.criteria_by_slot()

    def clean(self):
        super().clean()
        criteria = self.criteria()
        errors = {}
        for name in self.INCLUSION + self.EXCLUSION:
            value = getattr(self, name)
            if name in criteria and not value:
                errors[name] = "Answer this criterion (Yes or No)."
            elif name not in criteria and value:
                errors[name] = f"The protocol has no criterion {name.upper()}."
        if errors:
            raise ValidationError(errors)

    @property
    def eligible(self) -> bool:
        return all(
            getattr(self, name) == (NY.YES if c["category"] == "INCLUSION" else NY.NO)
            for name, c in self.criteria().items()
        )


for _name in Eligibility.INCLUSION + Eligibility.EXCLUSION:
    _kind = "inclusion" if _name.startswith("incl") else "exclusion"
    Eligibility.add_to_class(
        _name,
        models.CharField(
            f"{_kind} criterion {_name[-2:]}", max_length=1, choices=NY.choices, blank=True
        ),
    )


class MedicalHistory(CrfRecord):
    class Smoking(models.TextChoices):
        NEVER = "NEVER", "Never"
        CURRENT = "CURRENT", "Current"
        FORMER = "FORMER", "Former"

    wife_age = models.PositiveSmallIntegerField("age of wife (years)")
    marriage_duration_years = models.DecimalField(
        "marriage duration (years)", max_digits=4, decimal_places=1
    )
    previous_marriage = models.CharField(max_length=1, choices=NY.choices)
    children_from_previous_marriage = models.PositiveSmallIntegerField(
        "children from previous marriage", null=True, blank=True
    )
    infertility_duration_years = models.DecimalField(
        "infertility duration (years)", max_digits=4, decimal_places=1
    )
    previous_icsi_tese = models.PositiveSmallIntegerField("previous ICSI/TESE attempts", default=0)
    mumps_orchitis = models.CharField(max_length=1, choices=NY.choices)
    cryptorchidism = models.CharField(max_length=1, choices=NY.choices)
    cryptorchidism_side = models.CharField(max_length=9, choices=Laterality.choices, blank=True)
    orchiopexy = models.CharField(max_length=1, choices=NY.choices, blank=True)
    varicocele = models.CharField(max_length=1, choices=NY.choices)
    varicocele_treated = models.CharField(max_length=1, choices=NY.choices, blank=True)
    chemo_radiotherapy = models.CharField(
        "chemotherapy or radiotherapy", max_length=1, choices=NY.choices
    )
    testicular_trauma_torsion = models.CharField(
        "testicular trauma or torsion", max_length=1, choices=NY.choices
    )
    drug_antihypertensives = models.CharField("antihypertensives", max_length=1, choices=NY.choices)
    drug_antidepressants = models.CharField("antidepressants", max_length=1, choices=NY.choices)
    drug_anabolic_steroids = models.CharField("anabolic steroids", max_length=1, choices=NY.choices)
    drug_other = models.CharField(
        "other drugs impairing spermatogenesis", max_length=200, blank=True
    )
    smoking = models.CharField(max_length=7, choices=Smoking.choices)
    diabetes = models.CharField(max_length=1, choices=NY.choices)
    hypertension = models.CharField(max_length=1, choices=NY.choices)

    limits = {
        "wife_age": Limits(15, 70, 18, 45, "years"),
        "marriage_duration_years": Limits(0, 60, unit="years"),
        "infertility_duration_years": Limits(
            0, 50, soft_min=2, unit="years", note="inclusion requires NOA for at least 2 years"
        ),
        "previous_icsi_tese": Limits(0, 20),
        "children_from_previous_marriage": Limits(0, 20),
    }

    class Meta(CrfRecord.Meta):
        verbose_name_plural = "medical histories"

    def clean(self):
        super().clean()
        errors: dict[str, str] = {}
        _require_if(
            self.cryptorchidism == NY.YES,
            self.cryptorchidism_side,
            "cryptorchidism_side",
            "Give the side of the undescended testis.",
            errors,
        )
        _require_if(
            self.cryptorchidism == NY.YES,
            self.orchiopexy,
            "orchiopexy",
            "Say whether an orchiopexy was done.",
            errors,
        )
        _require_if(
            self.varicocele == NY.YES,
            self.varicocele_treated,
            "varicocele_treated",
            "Say whether the varicocele was treated.",
            errors,
        )
        if self.previous_marriage != NY.YES and self.children_from_previous_marriage:
            errors["children_from_previous_marriage"] = (
                "Children from a previous marriage need a previous marriage."
            )
        if self.cryptorchidism == NY.NO and (self.cryptorchidism_side or self.orchiopexy):
            errors["cryptorchidism_side"] = (
                "Leave side and orchiopexy empty when there was no cryptorchidism."
            )
        if errors:
            raise ValidationError(errors)


class Examination(CrfRecord):
    class Consistency(models.TextChoices):
        NORMAL = "NORMAL", "Normal"
        SOFT = "SOFT", "Soft"
        FIRM = "FIRM", "Firm"

    class VolumeMethod(models.TextChoices):
        """CDISC METHOD: ORCHIDOMETERY (C163548) or ultrasound."""

        ORCHIDOMETER = "ORCHIDOMETERY", "Prader orchidometer"
        ULTRASOUND = "ULTRASOUND", "Ultrasound"

    class VaricoceleGrade(models.TextChoices):
        NONE = "0", "None"
        G1 = "1", "Grade 1"
        G2 = "2", "Grade 2"
        G3 = "3", "Grade 3"

    class Vas(models.TextChoices):
        PRESENT = "PRESENT", "Present"
        ABSENT = "ABSENT", "Absent"

    SMALL_TESTIS_ML = Decimal("12")

    height_cm = models.DecimalField("height (cm)", max_digits=4, decimal_places=1)
    weight_kg = models.DecimalField("weight (kg)", max_digits=4, decimal_places=1)
    # General features
    gigantism = models.CharField(max_length=1, choices=NY.choices, default=NY.NO)
    dwarfism = models.CharField(max_length=1, choices=NY.choices, default=NY.NO)
    myxedema = models.CharField(max_length=1, choices=NY.choices, default=NY.NO)
    klinefelter_habitus = models.CharField(max_length=1, choices=NY.choices, default=NY.NO)
    gynecomastia = models.CharField(max_length=1, choices=NY.choices, default=NY.NO)
    down_features = models.CharField(
        "Down features", max_length=1, choices=NY.choices, default=NY.NO
    )
    # Local examination, per side
    volume_method = models.CharField(
        "testicular volume method", max_length=14, choices=VolumeMethod.choices
    )
    left_volume_ml = models.DecimalField(
        "left testicular volume (mL)", max_digits=4, decimal_places=1
    )
    right_volume_ml = models.DecimalField(
        "right testicular volume (mL)", max_digits=4, decimal_places=1
    )
    left_consistency = models.CharField(max_length=6, choices=Consistency.choices)
    right_consistency = models.CharField(max_length=6, choices=Consistency.choices)
    left_varicocele = models.CharField(
        "left varicocele", max_length=1, choices=VaricoceleGrade.choices
    )
    right_varicocele = models.CharField(
        "right varicocele", max_length=1, choices=VaricoceleGrade.choices
    )
    left_vas = models.CharField("left vas deferens", max_length=7, choices=Vas.choices)
    right_vas = models.CharField("right vas deferens", max_length=7, choices=Vas.choices)
    cord_anomaly = models.CharField(max_length=1, choices=NY.choices, default=NY.NO)
    scrotal_swelling = models.CharField(max_length=1, choices=NY.choices, default=NY.NO)
    congenital_malformation = models.CharField(max_length=1, choices=NY.choices, default=NY.NO)

    limits = {
        "height_cm": Limits(120, 230, 150, 200, "cm"),
        "weight_kg": Limits(30, 250, 45, 150, "kg"),
        "left_volume_ml": Limits(0, 50, unit="mL"),
        "right_volume_ml": Limits(0, 50, unit="mL"),
    }

    class Meta(CrfRecord.Meta):
        pass

    @property
    def bmi(self) -> Decimal | None:
        if not self.height_cm or not self.weight_kg:
            return None
        metres = Decimal(self.height_cm) / 100
        return (Decimal(self.weight_kg) / (metres * metres)).quantize(Decimal("0.1"))

    @property
    def testicular_size(self) -> str:
        """Results-table category: small if either testis is below 12 mL."""
        volumes = [v for v in (self.left_volume_ml, self.right_volume_ml) if v is not None]
        return "small" if any(v < self.SMALL_TESTIS_ML for v in volumes) else "normal"

    @property
    def has_varicocele(self) -> bool:
        return self.left_varicocele not in ("", "0") or self.right_varicocele not in ("", "0")


class Karyotype(CrfRecord):
    class Result(models.TextChoices):
        NORMAL = "46,XY", "46,XY (normal)"
        KLINEFELTER = "47,XXY", "47,XXY (Klinefelter)"
        XX_MALE = "46,XX", "46,XX male"
        MOSAIC = "MOSAIC", "Mosaic"
        OTHER = "OTHER", "Other"

    result = models.CharField(max_length=8, choices=Result.choices)
    detail = models.CharField(
        "karyotype (ISCN)", max_length=100, blank=True, help_text="Required for mosaic or other."
    )

    class Meta(CrfRecord.Meta):
        pass

    def clean(self):
        super().clean()
        if self.result in (self.Result.MOSAIC, self.Result.OTHER) and not self.detail.strip():
            raise ValidationError({"detail": "Write the karyotype for a mosaic or other result."})


class AzfMicrodeletion(CrfRecord):
    class Result(models.TextChoices):
        NONE = "NONE", "No microdeletion"
        AZFA = "AZFa", "AZFa"
        AZFB = "AZFb", "AZFb"
        AZFC = "AZFc", "AZFc"
        AZFBC = "AZFb+c", "AZFb+c"
        AZFABC = "AZFa+b+c", "AZFa+b+c"

    result = models.CharField(max_length=8, choices=Result.choices)
    markers_tested = models.CharField(
        "STS markers tested", max_length=200, blank=True, help_text="e.g. sY84, sY86, sY127..."
    )

    class Meta(CrfRecord.Meta):
        verbose_name = "AZF microdeletion"


class Biopsy(CrfRecord):
    class Histology(models.TextChoices):
        SCOS = "SCOS", "Sertoli-cell-only syndrome (SCOS)"
        MA_PRIMARY = "MA_PRIMARY", "Maturation arrest at primary spermatocyte"
        MA_SECONDARY = "MA_SECONDARY", "Maturation arrest at secondary spermatocyte"
        MA_SPERMATID = "MA_SPERMATID", "Maturation arrest at spermatid"
        HYPOSPERMATOGENESIS = "HYPO", "Hypospermatogenesis"
        TUBULAR_SCLEROSIS = "SCLEROSIS", "Tubular sclerosis"

    ARREST = (Histology.MA_PRIMARY, Histology.MA_SECONDARY, Histology.MA_SPERMATID)

    side = models.CharField(max_length=9, choices=Laterality.choices)
    histology = models.CharField("histology class", max_length=12, choices=Histology.choices)
    johnsen_score = models.DecimalField(
        "Johnsen score", max_digits=3, decimal_places=1, null=True, blank=True
    )

    limits = {"johnsen_score": Limits(1, 10)}

    class Meta(CrfRecord.Meta):
        verbose_name_plural = "biopsies"
