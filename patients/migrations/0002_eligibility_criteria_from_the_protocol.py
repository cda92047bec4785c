"""The eligibility answers become one slot per protocol criterion (INCL01.., EXCL01..).

The nine named criteria of the first build keep their answers under the code the protocol file
now gives them; the remaining slots are added blank."""

from django.db import migrations, models

RENAMED = {
    "primary_infertility": "incl01",
    "noa_two_years": "incl02",
    "azoospermia_confirmed": "incl03",
    "obstruction_excluded": "incl04",
    "consent_given": "incl05",
    "excl_genital_infection": "excl01",
    "excl_systemic_illness": "excl02",
    "excl_bleeding_disorder": "excl03",
    "excl_hormone_treatment": "excl04",
}
SLOTS = [f"incl{n:02d}" for n in range(1, 11)] + [f"excl{n:02d}" for n in range(1, 11)]


def _answer(name):
    kind = "inclusion" if name.startswith("incl") else "exclusion"
    return models.CharField(
        f"{kind} criterion {name[-2:]}",
        max_length=1,
        choices=[("Y", "Yes"), ("N", "No")],
        blank=True,
    )


class Migration(migrations.Migration):
    dependencies = [("patients", "0001_initial")]

    operations = [
        *(
            migrations.RenameField("eligibility", old, new)
            for old, new in RENAMED.items()
        ),
        *(
            migrations.AlterField("eligibility", name, _answer(name))
            for name in RENAMED.values()
        ),
        *(
            migrations.AddField("eligibility", name, _answer(name))
            for name in SLOTS
            if name not in RENAMED.values()
        ),
    ]
