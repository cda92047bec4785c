"""Laboratory CRFs: semen analysis and hormones (screening and every follow-up), and the
procedure day: bone-marrow aspirate, MSC preparation with its release, injection."""

from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models
from django.utils import timezone

from core.choices import NY, Laterality
from core.limits import Limits
from patients.models import CrfRecord

# 1 ng/mL testosterone = 3.467 nmol/L (molar mass 288.42 g/mol).
TESTOSTERONE_NMOL_PER_NG = Decimal("3.467")


def testosterone_to_ng_ml(value: Decimal, unit: str) -> Decimal:
    if unit == "nmol/L":
        return (Decimal(value) / TESTOSTERONE_NMOL_PER_NG).quantize(Decimal("0.01"))
    return Decimal(value)


class SemenAnalysis(CrfRecord):
    """WHO method. Repeated 3 times at screening, once per follow-up visit."""

    class SpermSeen(models.TextChoices):
        NONE = "NONE", "None"
        PELLET_ONLY = "PELLET", "In the centrifuged pellet only"
        FRESH = "FRESH", "In the fresh sample"

    abstinence_days = models.PositiveSmallIntegerField("abstinence (days)")
    volume_ml = models.DecimalField("volume (mL)", max_digits=4, decimal_places=1)
    ph = models.DecimalField("pH", max_digits=3, decimal_places=1, null=True, blank=True)
    pellet_examined = models.CharField(
        "centrifuged pellet examined", max_length=1, choices=NY.choices
    )
    sperm_seen = models.CharField(max_length=6, choices=SpermSeen.choices)
    concentration = models.DecimalField(
        "sperm concentration (10^6/mL)", max_digits=6, decimal_places=2, default=0
    )
    progressive_pct = models.DecimalField(
        "progressive motility (%)", max_digits=4, decimal_places=1, null=True, blank=True
    )
    non_progressive_pct = models.DecimalField(
        "non-progressive motility (%)", max_digits=4, decimal_places=1, null=True, blank=True
    )
    immotile_pct = models.DecimalField(
        "immotile (%)", max_digits=4, decimal_places=1, null=True, blank=True
    )
    normal_forms_pct = models.DecimalField(
        "normal forms (%)", max_digits=4, decimal_places=1, null=True, blank=True
    )

    limits = {
        "abstinence_days": Limits(0, 30, 2, 7, "days", note="WHO method"),
        "volume_ml": Limits(0, 15, unit="mL"),
        "ph": Limits(5, 10, 7.0, 8.5),
        "concentration": Limits(0, 500, unit="10^6/mL"),
        "progressive_pct": Limits(0, 100, unit="%"),
        "non_progressive_pct": Limits(0, 100, unit="%"),
        "immotile_pct": Limits(0, 100, unit="%"),
        "normal_forms_pct": Limits(0, 100, unit="%"),
    }
    MOTILITY = ("progressive_pct", "non_progressive_pct", "immotile_pct")

    class Meta(CrfRecord.Meta):
        verbose_name_plural = "semen analyses"

    @property
    def total_count(self) -> Decimal | None:
        """Total sperm number (10^6 per ejaculate) = volume x concentration."""
        if self.volume_ml is None or self.concentration is None:
            return None
        return (Decimal(self.volume_ml) * Decimal(self.concentration)).quantize(Decimal("0.01"))

    @property
    def no_sperm(self) -> bool:
        return self.sperm_seen == self.SpermSeen.NONE

    @property
    def sperm_in_ejaculate(self) -> bool:
        """Any sperm, including pellet-only findings (the trial's response signal)."""
        return self.sperm_seen in (self.SpermSeen.PELLET_ONLY, self.SpermSeen.FRESH)

    def clean(self):
        super().clean()
        errors = {}
        if self.no_sperm:
            if self.concentration:
                errors["concentration"] = "Concentration must be 0 when no sperm was seen."
            if self.pellet_examined != NY.YES:
                errors["pellet_examined"] = (
                    "No sperm can only be recorded after the centrifuged pellet was examined."
                )
            for name in self.MOTILITY + ("normal_forms_pct",):
                if getattr(self, name) is not None:
                    errors[name] = "Leave motility and morphology empty when no sperm was seen."
        if self.sperm_seen == self.SpermSeen.PELLET_ONLY and self.pellet_examined != NY.YES:
            errors["pellet_examined"] = "Sperm in the pellet means the pellet was examined."
        motility = [getattr(self, n) for n in self.MOTILITY]
        if all(v is not None for v in motility) and abs(sum(motility) - 100) > 1:
            errors["immotile_pct"] = (
                f"Progressive, non-progressive and immotile must add up to 100% "
                f"(they add up to {sum(motility):g}%)."
            )
        if errors:
            raise ValidationError(errors)


class HormoneProfile(CrfRecord):
    fsh = models.DecimalField("FSH (IU/L)", max_digits=5, decimal_places=2)
    lh = models.DecimalField("LH (IU/L)", max_digits=5, decimal_places=2)
    # Canonical unit ng/mL; the form also accepts nmol/L and converts.
    testosterone = models.DecimalField("total testosterone (ng/mL)", max_digits=5, decimal_places=2)
    prolactin = models.DecimalField(
        "prolactin (ng/mL)", max_digits=5, decimal_places=1, null=True, blank=True
    )
    estradiol = models.DecimalField(
        "estradiol (pg/mL)", max_digits=5, decimal_places=1, null=True, blank=True
    )

    limits = {
        "fsh": Limits(0, 200, unit="IU/L"),
        "lh": Limits(0, 200, unit="IU/L"),
        "testosterone": Limits(0, 20, unit="ng/mL"),
        "prolactin": Limits(0, 500, unit="ng/mL"),
        "estradiol": Limits(0, 1000, unit="pg/mL"),
    }

    class Meta(CrfRecord.Meta):
        verbose_name = "hormone profile"


# ---- procedure day ---------------------------------------------------------------------------
#
# Bone-marrow aspirate -> MSC preparation (with its release decision) -> intratesticular
# injection, all on the procedure-day visit (D0). Each record has its date (assessment_date)
# and a time of day; the derived intervals are computed below, in one place.


def procedure_moment(day: date | None, at: time | None) -> datetime | None:
    """A CRF's date and time of day as an aware datetime in the site's time zone."""
    if day is None or at is None:
        return None
    return timezone.make_aware(datetime.combine(day, at))


def format_duration(delta: timedelta | None) -> str:
    """`4 h 05 min` (what the procedure-day summary shows)."""
    if delta is None:
        return "n/a"
    minutes = int(delta.total_seconds() // 60)
    sign = "-" if minutes < 0 else ""
    hours, minutes = divmod(abs(minutes), 60)
    return f"{sign}{hours} h {minutes:02d} min"


def _num(value: Decimal) -> str:
    """5.20 -> "5.2", 60.0 -> "60"."""
    return format(Decimal(value).normalize(), "f")


def _before(first: datetime | None, second: datetime | None) -> bool:
    """True when both moments are known and `first` is earlier than `second`."""
    return first is not None and second is not None and first < second


def _live(model, visit_id):
    if visit_id is None:
        return None
    return model.objects.filter(visit_id=visit_id, voided_at__isnull=True).first()


class BoneMarrowAspirate(CrfRecord):
    class AspirationSite(models.TextChoices):
        POSTERIOR = "POSTERIOR", "Posterior iliac crest"
        ANTERIOR = "ANTERIOR", "Anterior iliac crest"

    class Anaesthesia(models.TextChoices):
        LOCAL = "LOCAL", "Local"
        SEDATION = "SEDATION", "Local with sedation"
        GENERAL = "GENERAL", "General"

    aspiration_time = models.TimeField("time of aspiration")
    aspiration_site = models.CharField(
        "aspiration site", max_length=9, choices=AspirationSite.choices
    )
    side = models.CharField(max_length=9, choices=Laterality.choices)
    volume_ml = models.DecimalField("volume aspirated (mL)", max_digits=4, decimal_places=1)
    anaesthesia = models.CharField(max_length=8, choices=Anaesthesia.choices)
    operator = models.CharField(
        max_length=100, help_text="Name of the physician who performed the aspiration."
    )
    complications = models.CharField(max_length=1, choices=NY.choices)
    complications_detail = models.TextField(
        "complications (describe)",
        blank=True,
        help_text="Also record each complication in the adverse-event log.",
    )

    limits = {
        "volume_ml": Limits(1, 120, 40, 80, "mL", note="the protocol aspirates about 60 mL"),
    }

    class Meta(CrfRecord.Meta):
        verbose_name = "bone-marrow aspirate"

    @property
    def aspirated_at(self) -> datetime | None:
        return procedure_moment(self.assessment_date, self.aspiration_time)

    def clean(self):
        super().clean()
        errors = {}
        if self.complications == NY.YES and not self.complications_detail.strip():
            errors["complications_detail"] = "Describe the complication."
        if self.complications == NY.NO and self.complications_detail.strip():
            errors["complications_detail"] = "Leave the description empty when there was none."
        preparation = _live(MscPreparation, self.visit_id)
        if preparation is not None and _before(preparation.prepared_at, self.aspirated_at):
            errors["aspiration_time"] = (
                "The aspiration cannot follow the end of the MSC preparation "
                f"({preparation.prepared_at:%d %b %Y %H:%M})."
            )
        if errors:
            raise ValidationError(errors)


class MscPreparation(CrfRecord):
    """Ficoll density separation, CD105 magnetic selection, final suspension in PBS, and the
    release decision: a product that is not released cannot be recorded as injected."""

    class ReleaseDecision(models.TextChoices):
        RELEASED = "RELEASED", "Released for injection"
        NOT_RELEASED = "NOT_RELEASED", "Not released"

    ficoll_medium = models.CharField(
        "Ficoll density medium", max_length=100, help_text="e.g. Ficoll-Paque PLUS."
    )
    ficoll_lot = models.CharField("Ficoll lot number", max_length=50)
    buffy_coat_collected = models.CharField(
        "buffy coat collected", max_length=1, choices=NY.choices
    )
    cd105_beads = models.CharField(
        "CD105 magnetic beads", max_length=100, help_text="e.g. CD105 MicroBeads."
    )
    cd105_lot = models.CharField("CD105 bead lot number", max_length=50)
    final_volume_ml = models.DecimalField(
        "final suspension volume (mL of PBS)", max_digits=4, decimal_places=2
    )
    cell_count_million = models.DecimalField(
        "cell count (10^6 cells)", max_digits=5, decimal_places=2
    )
    viability_pct = models.DecimalField(
        "viability (%, trypan blue)", max_digits=4, decimal_places=1
    )
    preparation_end_time = models.TimeField("time the preparation ended")
    prepared_by = models.CharField("prepared by", max_length=100)
    released_by = models.CharField(
        "release decision by", max_length=100, help_text="Who released (or rejected) the product."
    )
    release_decision = models.CharField(
        "release decision", max_length=12, choices=ReleaseDecision.choices
    )
    release_reason = models.TextField(
        "reason not released", blank=True, help_text="Required when the product is not released."
    )

    limits = {
        "final_volume_ml": Limits(0.1, 10, 0.9, 1.1, "mL", note="the protocol injects 1 mL"),
        "cell_count_million": Limits(0.01, 100, 3.7, 5.2, "10^6 cells"),
        "viability_pct": Limits(0, 100, soft_min=95, unit="%", note="check before release"),
    }

    class Meta(CrfRecord.Meta):
        verbose_name = "MSC preparation"

    @property
    def released(self) -> bool:
        return self.release_decision == self.ReleaseDecision.RELEASED

    @property
    def prepared_at(self) -> datetime | None:
        return procedure_moment(self.assessment_date, self.preparation_end_time)

    def clean(self):
        super().clean()
        errors = {}
        if self.release_decision == self.ReleaseDecision.NOT_RELEASED:
            if not self.release_reason.strip():
                errors["release_reason"] = "Give the reason the product was not released."
            injection = _live(Injection, self.visit_id)
            if injection is not None:
                errors["release_decision"] = (
                    "This product is already recorded as injected: it cannot be marked "
                    "as not released. Correct the injection record first."
                )
        aspirate = _live(BoneMarrowAspirate, self.visit_id)
        if aspirate is not None and _before(self.prepared_at, aspirate.aspirated_at):
            errors["preparation_end_time"] = (
                f"The preparation cannot end before the bone-marrow aspiration "
                f"({aspirate.aspirated_at:%d %b %Y %H:%M})."
            )
        if errors:
            raise ValidationError(errors)


class Injection(CrfRecord):
    """Intratesticular injection of the released product; its date is the procedure date that
    anchors the follow-up schedule."""

    injection_time = models.TimeField("time of injection")
    testes_injected = models.CharField("testes injected", max_length=9, choices=Laterality.choices)
    left_volume_ml = models.DecimalField(
        "left testis: volume (mL)", max_digits=3, decimal_places=2, null=True, blank=True
    )
    left_cells_million = models.DecimalField(
        "left testis: cells (10^6)", max_digits=5, decimal_places=2, null=True, blank=True
    )
    right_volume_ml = models.DecimalField(
        "right testis: volume (mL)", max_digits=3, decimal_places=2, null=True, blank=True
    )
    right_cells_million = models.DecimalField(
        "right testis: cells (10^6)", max_digits=5, decimal_places=2, null=True, blank=True
    )
    local_anaesthesia = models.CharField(
        "local anaesthesia", max_length=1, choices=NY.choices, help_text="e.g. cord block."
    )
    operator = models.CharField(
        max_length=100, help_text="Name of the physician who injected the product."
    )
    immediate_complications = models.CharField(
        "immediate complications", max_length=1, choices=NY.choices
    )
    complications_detail = models.TextField(
        "complications (describe)",
        blank=True,
        help_text="Also record each complication in the adverse-event log.",
    )

    limits = {
        "left_volume_ml": Limits(0.05, 2, unit="mL"),
        "right_volume_ml": Limits(0.05, 2, unit="mL"),
        "left_cells_million": Limits(0.01, 50, unit="10^6 cells"),
        "right_cells_million": Limits(0.01, 50, unit="10^6 cells"),
    }
    SIDES = {
        "left": (Laterality.LEFT, Laterality.BILATERAL),
        "right": (Laterality.RIGHT, Laterality.BILATERAL),
    }

    class Meta(CrfRecord.Meta):
        pass

    @property
    def injected_at(self) -> datetime | None:
        return procedure_moment(self.assessment_date, self.injection_time)

    @property
    def total_volume_ml(self) -> Decimal:
        return sum((v for v in (self.left_volume_ml, self.right_volume_ml) if v), Decimal(0))

    @property
    def total_cells_million(self) -> Decimal:
        return sum(
            (v for v in (self.left_cells_million, self.right_cells_million) if v), Decimal(0)
        )

    def clean(self):
        super().clean()
        errors = {}
        for side, injected_when in self.SIDES.items():
            injected = self.testes_injected in injected_when
            for what, missing in (("volume_ml", "volume"), ("cells_million", "number of cells")):
                name = f"{side}_{what}"
                value = getattr(self, name)
                if injected and value is None:
                    errors[name] = f"Give the {missing} injected into the {side} testis."
                if not injected and value is not None and self.testes_injected:
                    errors[name] = f"Leave empty: the {side} testis was not injected."
        if self.immediate_complications == NY.YES and not self.complications_detail.strip():
            errors["complications_detail"] = "Describe the complication."
        if errors:
            raise ValidationError(errors)
        errors = release_gate_errors(injection=self)
        if errors:
            raise ValidationError(errors)


def release_gate_errors(*, injection: Injection) -> dict[str, str]:
    """The procedure-day rules an injection must pass against the other D0 records: a
    released product, no more volume or cells than were prepared, and a time that follows
    the aspiration and the end of the preparation. Reached by every write path (the model's
    clean(), hence patients.services.crf_save and the form)."""
    if injection.visit_id is None:
        return {}  # the form's first pass, before the visit is attached
    preparation = _live(MscPreparation, injection.visit_id)
    if preparation is None:
        return {
            NON_FIELD_ERRORS: "Record the MSC preparation and its release decision before "
            "the injection."
        }
    if not preparation.released:
        return {
            NON_FIELD_ERRORS: "The MSC product was not released "
            f"({preparation.release_reason.strip() or 'no reason given'}): it cannot be "
            "recorded as injected."
        }
    errors = {}
    if injection.total_volume_ml > preparation.final_volume_ml:
        errors[NON_FIELD_ERRORS] = (
            f"The volumes injected add up to {_num(injection.total_volume_ml)} mL, more than "
            f"the {_num(preparation.final_volume_ml)} mL prepared."
        )
    elif injection.total_cells_million > preparation.cell_count_million:
        errors[NON_FIELD_ERRORS] = (
            f"The cells injected add up to {_num(injection.total_cells_million)} x 10^6, more "
            f"than the {_num(preparation.cell_count_million)} x 10^6 prepared."
        )
    if _before(injection.injected_at, preparation.prepared_at):
        errors["injection_time"] = (
            "The injection cannot precede the end of the MSC preparation "
            f"({preparation.prepared_at:%d %b %Y %H:%M})."
        )
    return errors


def aspiration_to_injection(
    *, aspirate: BoneMarrowAspirate | None, injection: Injection | None
) -> timedelta | None:
    """Time from bone-marrow aspiration to intratesticular injection (the derived value)."""
    if aspirate is None or injection is None:
        return None
    start, end = aspirate.aspirated_at, injection.injected_at
    if start is None or end is None:
        return None
    return end - start
