from django import template

register = template.Library()


@register.filter
def model_label(instance) -> str:
    """ "app_label.ModelName", for URLs that name a record generically (history)."""
    return instance._meta.label
