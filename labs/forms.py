from django import forms

from core.forms import CrfForm

from .models import (
    BoneMarrowAspirate,
    HormoneProfile,
    Injection,
    MscPreparation,
    SemenAnalysis,
    testosterone_to_ng_ml,
)

TIME_INPUT = forms.TimeInput(attrs={"type": "time"}, format="%H:%M")


class SemenAnalysisForm(CrfForm):
    sections = [
        ("Collection", ["assessment_date", "abstinence_days", "volume_ml", "ph"]),
        ("Sperm", ["pellet_examined", "sperm_seen", "concentration"]),
        (
            "Motility and morphology (only when sperm was seen)",
            ["progressive_pct", "non_progressive_pct", "immotile_pct", "normal_forms_pct"],
        ),
    ]

    class Meta:
        model = SemenAnalysis
        exclude = ["visit"]
        labels = {"assessment_date": "Sample date"}


class HormoneProfileForm(CrfForm):
    testosterone_unit = forms.ChoiceField(
        label="Testosterone unit",
        choices=[("ng/mL", "ng/mL"), ("nmol/L", "nmol/L")],
        initial="ng/mL",
        help_text="nmol/L is converted to ng/mL (1 ng/mL = 3.467 nmol/L).",
    )
    sections = [
        ("Sample", ["assessment_date"]),
        ("Gonadotrophins", ["fsh", "lh"]),
        ("Testosterone", ["testosterone", "testosterone_unit"]),
        ("Optional", ["prolactin", "estradiol"]),
    ]

    class Meta:
        model = HormoneProfile
        exclude = ["visit"]
        labels = {"assessment_date": "Sample date", "testosterone": "Total testosterone"}

    def clean(self):
        cleaned = super().clean()
        value = cleaned.get("testosterone")
        if value is not None and cleaned.get("testosterone_unit") == "nmol/L":
            cleaned["testosterone"] = testosterone_to_ng_ml(value, "nmol/L")
        return cleaned


class BoneMarrowAspirateForm(CrfForm):
    sections = [
        ("Aspiration", ["assessment_date", "aspiration_time", "aspiration_site", "side"]),
        ("Procedure", ["volume_ml", "anaesthesia", "operator"]),
        ("Complications", ["complications", "complications_detail"]),
    ]

    class Meta:
        model = BoneMarrowAspirate
        exclude = ["visit"]
        labels = {"assessment_date": "Aspiration date", "side": "Side of the iliac crest"}
        widgets = {
            "aspiration_time": TIME_INPUT,
            "complications_detail": forms.Textarea(attrs={"rows": 2}),
        }


class MscPreparationForm(CrfForm):
    sections = [
        ("Density separation", ["assessment_date", "ficoll_medium", "ficoll_lot"]),
        ("Selection", ["buffy_coat_collected", "cd105_beads", "cd105_lot"]),
        ("Final product", ["final_volume_ml", "cell_count_million", "viability_pct"]),
        ("Timing and staff", ["preparation_end_time", "prepared_by"]),
        ("Release", ["release_decision", "released_by", "release_reason"]),
    ]

    class Meta:
        model = MscPreparation
        exclude = ["visit"]
        labels = {"assessment_date": "Preparation date"}
        widgets = {
            "preparation_end_time": TIME_INPUT,
            "release_reason": forms.Textarea(attrs={"rows": 2}),
        }


class InjectionForm(CrfForm):
    sections = [
        ("Injection", ["assessment_date", "injection_time", "testes_injected"]),
        ("Left testis", ["left_volume_ml", "left_cells_million"]),
        ("Right testis", ["right_volume_ml", "right_cells_million"]),
        ("Procedure", ["local_anaesthesia", "operator"]),
        ("Immediate complications", ["immediate_complications", "complications_detail"]),
    ]

    class Meta:
        model = Injection
        exclude = ["visit"]
        labels = {"assessment_date": "Injection date (procedure date)"}
        help_texts = {
            "assessment_date": "Anchors the follow-up visit windows of the protocol.",
        }
        widgets = {
            "injection_time": TIME_INPUT,
            "complications_detail": forms.Textarea(attrs={"rows": 2}),
        }
