"""django-otp registers its devices in the admin; here they are not: removing a device there
would reset a second factor with no reason and no AuthEvent. Resets go through User access
(monitoring), audited."""

from django.contrib import admin
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

for model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
