"""Code lists shared by several CRFs, coded as CDISC SDTM controlled terminology."""

from django.db import models


class NY(models.TextChoices):
    """CDISC NY (C66742)."""

    YES = "Y", "Yes"
    NO = "N", "No"


class Laterality(models.TextChoices):
    """CDISC LAT (C99073)."""

    LEFT = "LEFT", "Left"
    RIGHT = "RIGHT", "Right"
    BILATERAL = "BILATERAL", "Both"
