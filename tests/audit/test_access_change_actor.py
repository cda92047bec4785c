"""Role, site and account changes record who made them (ICH E6(R3) 4.3.8): they arrive through
model signals, without the request, so the actor comes from the request being served."""

from django.contrib.auth.models import Group
from django.urls import reverse

from audit.models import AuthEvent
from trial.models import SiteMembership


def _user_change_form(user, **changes):
    data = {
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on" if user.is_active else "",
        "groups": [g.pk for g in user.groups.all()],
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "reason_for_change": "Access review",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v != ""}


def test_a_role_change_and_a_deactivation_in_the_admin_name_the_admin(
    client, admin_user, andrologist
):
    monitor_group = Group.objects.get_or_create(name="Monitor")[0]
    client.force_login(admin_user)
    url = reverse("admin:auth_user_change", args=[andrologist.pk])
    data = _user_change_form(
        andrologist,
        groups=[*andrologist.groups.values_list("pk", flat=True), monitor_group.pk],
        is_active="",
    )
    response = client.post(url, data, REMOTE_ADDR="10.1.1.1", HTTP_USER_AGENT="ClinicTablet/1")
    assert response.status_code == 302, response.content.decode()[:2000]
    role = AuthEvent.objects.get(kind="role_change", username="alice", detail__contains="Monitor")
    account = AuthEvent.objects.get(kind="account_change", username="alice")
    assert (role.actor_name, account.actor_name) == ("adam", "adam")
    # ...and from where (21 CFR 11.10(h)).
    assert (role.ip_address, role.user_agent) == ("10.1.1.1", "ClinicTablet/1")
    assert account.detail == "account deactivated"


def test_a_site_added_in_the_admin_names_the_admin(client, admin_user, andrologist, other_site):
    client.force_login(admin_user)
    url = reverse("admin:trial_studysite_change", args=[other_site.pk])
    existing = list(SiteMembership.objects.filter(site=other_site))
    prefix = "memberships"
    data = {
        "protocol": other_site.protocol_id,
        "code": other_site.code,
        "name": other_site.name,
        f"{prefix}-TOTAL_FORMS": len(existing) + 1,
        f"{prefix}-INITIAL_FORMS": len(existing),
        f"{prefix}-MIN_NUM_FORMS": 0,
        f"{prefix}-MAX_NUM_FORMS": 1000,
        "reason_for_change": "Joins the Andrology site",
    }
    for i, m in enumerate(existing):
        data |= {f"{prefix}-{i}-id": m.pk, f"{prefix}-{i}-site": other_site.pk}
        data[f"{prefix}-{i}-user"] = m.user_id
    data[f"{prefix}-{len(existing)}-user"] = andrologist.pk
    data[f"{prefix}-{len(existing)}-site"] = other_site.pk
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    event = AuthEvent.objects.get(kind="site_change", username="alice", detail="site added: AND")
    assert event.actor_name == "adam"


def test_a_change_outside_a_request_has_no_actor(andrologist):
    andrologist.groups.add(Group.objects.get_or_create(name="Monitor")[0])
    event = AuthEvent.objects.filter(kind="role_change", username="alice").latest("id")
    assert event.actor_name == ""
