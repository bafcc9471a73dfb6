from django.urls import reverse

from iridium.accounts.models import PlanChange, User


def change_form_data(user, **changes):
    data = {
        "username": user.username,
        "email": user.email,
        "first_name": "",
        "last_name": "",
        "is_active": "on",
        "plan": user.plan_id,
        "organization": user.organization_id or "",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "plan_changes-TOTAL_FORMS": "0",
        "plan_changes-INITIAL_FORMS": "0",
        "plan_changes-MIN_NUM_FORMS": "0",
        "plan_changes-MAX_NUM_FORMS": "0",
    }
    data.update(changes)
    return data


def test_changing_a_users_plan_in_admin_is_recorded(client, staff, user, plans):
    client.force_login(staff)
    url = reverse("admin:accounts_user_change", args=[user.pk])
    response = client.post(url, change_form_data(user, plan=plans["pro"].pk))
    assert response.status_code == 302, response.context["adminform"].form.errors
    user.refresh_from_db()
    assert user.plan == plans["pro"]
    change = PlanChange.objects.get()
    assert (change.user, change.from_plan, change.to_plan, change.changed_by) == (
        user,
        plans["free"],
        plans["pro"],
        staff,
    )
    assert change.changed_at is not None


def test_saving_a_user_without_changing_the_plan_records_nothing(client, staff, user):
    client.force_login(staff)
    url = reverse("admin:accounts_user_change", args=[user.pk])
    response = client.post(url, change_form_data(user, email="new@example.com"))
    assert response.status_code == 302
    assert not PlanChange.objects.exists()


def test_bulk_action_moves_many_users_and_records_each(client, staff, make_user, plans):
    users = [make_user(f"user{i}", plan="free") for i in range(3)]
    already_pro = make_user("already", plan="pro")
    client.force_login(staff)
    response = client.post(
        reverse("admin:accounts_user_changelist"),
        {
            "action": "move_to_plan_pro",
            "_selected_action": [u.pk for u in [*users, already_pro]],
        },
        follow=True,
    )
    assert "3 user(s) moved to the Pro plan." in response.content.decode()
    assert set(User.objects.filter(plan=plans["pro"])) == {*users, already_pro}
    changes = PlanChange.objects.all()
    assert {c.user for c in changes} == set(users)
    assert {(c.from_plan, c.to_plan, c.changed_by) for c in changes} == {
        (plans["free"], plans["pro"], staff)
    }


def test_plan_changes_are_visible_in_admin(client, staff, user, plans):
    client.force_login(staff)
    client.post(
        reverse("admin:accounts_user_change", args=[user.pk]),
        change_form_data(user, plan=plans["enterprise"].pk),
    )
    listing = client.get(reverse("admin:accounts_planchange_changelist")).content.decode()
    assert user.username in listing and "Enterprise" in listing
    history = client.get(reverse("admin:accounts_user_change", args=[user.pk])).content.decode()
    assert "plan history" in history.lower()


def test_organization_plan_change_is_recorded(client, staff, organization, plans):
    client.force_login(staff)
    response = client.post(
        reverse("admin:accounts_organization_change", args=[organization.pk]),
        {
            "name": organization.name,
            "slug": organization.slug,
            "plan": plans["pro"].pk,
            "members-TOTAL_FORMS": "0",
            "members-INITIAL_FORMS": "0",
            "members-MIN_NUM_FORMS": "0",
            "members-MAX_NUM_FORMS": "0",
            "plan_changes-TOTAL_FORMS": "0",
            "plan_changes-INITIAL_FORMS": "0",
            "plan_changes-MIN_NUM_FORMS": "0",
            "plan_changes-MAX_NUM_FORMS": "0",
        },
    )
    assert response.status_code == 302
    change = PlanChange.objects.get()
    assert (change.organization, change.from_plan, change.to_plan) == (
        organization,
        plans["enterprise"],
        plans["pro"],
    )


def test_user_list_shows_plan_organization_and_staff_flags_and_filters(
    client, staff, make_user, organization, plans
):
    make_user("member", organization=organization, plan="pro")
    make_user("loner", plan="free")
    client.force_login(staff)
    listing = client.get(reverse("admin:accounts_user_changelist"), {"q": "member"})
    html = listing.content.decode()
    assert "member" in html and "Globex" in html and "loner" not in html
    assert ">Pro<" in html  # the plan column
    by_plan = client.get(
        reverse("admin:accounts_user_changelist"), {"plan__id__exact": plans["pro"].pk}
    )
    assert "member" in by_plan.content.decode() and "loner" not in by_plan.content.decode()
    staff_only = client.get(reverse("admin:accounts_user_changelist"), {"is_staff__exact": "1"})
    assert "loner" not in staff_only.content.decode() and "stella" in staff_only.content.decode()


def test_organization_page_lists_its_members(client, staff, make_user, organization):
    make_user("member", organization=organization)
    client.force_login(staff)
    html = client.get(
        reverse("admin:accounts_organization_change", args=[organization.pk])
    ).content.decode()
    assert "member" in html


def test_plans_are_editable_in_admin(client, staff, plans):
    client.force_login(staff)
    free = plans["free"]
    response = client.post(
        reverse("admin:accounts_plan_change", args=[free.pk]),
        {
            "name": "Free",
            "position": 0,
            "default_model": "gpt-4.1-nano",
            "advanced_model": "gpt-4o-mini",
            "monthly_budget_usd": "2.50",
            "daily_request_limit": 25,
            "max_output_tokens": 1024,
            "max_answers_in_flight": 3,
        },
    )
    assert response.status_code == 302
    free.refresh_from_db()
    assert (free.default_model, str(free.monthly_budget_usd), free.daily_request_limit) == (
        "gpt-4.1-nano",
        "2.50",
        25,
    )
    assert (free.max_output_tokens, free.max_answers_in_flight) == (1024, 3)


def test_a_non_staff_user_cannot_reach_admin(client, user):
    client.force_login(user)
    for url in [
        reverse("admin:index"),
        reverse("admin:accounts_user_changelist"),
        reverse("admin:accounts_plan_changelist"),
    ]:
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith(reverse("admin:login"))


def test_anonymous_cannot_reach_admin(client, plans):
    response = client.get(reverse("admin:accounts_user_changelist"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))


def test_models_without_a_price_are_listed_with_a_link_to_price_them(client, staff):
    from iridium.ai.models import PriceOverride, UnpricedModel

    UnpricedModel.objects.create(model="acme-finetune-v1", provider="openai", calls=3)
    client.force_login(staff)
    html = client.get(reverse("admin:ai_unpricedmodel_changelist")).content.decode()
    assert "acme-finetune-v1" in html and "Set a price" in html
    PriceOverride.objects.create(
        model="acme-finetune-v1", input_usd_per_mtok=1, output_usd_per_mtok=2
    )
    html = client.get(reverse("admin:ai_unpricedmodel_changelist")).content.decode()
    assert "override set" in html


def test_flag_overrides_record_who_changed_them(client, staff):
    from iridium.ai.models import FlagOverride

    client.force_login(staff)
    response = client.post(
        reverse("admin:ai_flagoverride_add"),
        {"key": "ai-kill-switch", "value": "refuse", "active": "on", "note": "incident 12"},
    )
    assert response.status_code == 302
    flag = FlagOverride.objects.get()
    assert flag.updated_by == staff and flag.parsed_value() == "refuse"
    history = client.get(reverse("admin:ai_flagoverride_history", args=[flag.pk]))
    assert staff.username in history.content.decode()


def test_admin_shows_no_ai_content_and_links_each_row_to_its_trace(client, make_user, user):
    """Prompts, answers, tool input and output and error text are read in the console, which
    checks the permission to read them and writes each read to the audit log."""
    from django.contrib.auth.models import Permission

    from iridium.accounts.models import AuditEntry
    from tests import factories

    marker = "ADMIN-CONTENT-MARKER"
    generation = factories.create_generation(
        trace_id="conversation-7", user=user, is_error=True, http_status=400,
        input=[{"role": "user", "content": marker}],
        output=[{"role": "assistant", "content": marker}],
        error=f"BadRequestError: {marker}", properties={"framework": marker},
    )  # fmt: skip
    span = factories.span(trace_id="conversation-7", user=user, input_state={"query": marker},
                          output_state=marker, is_error=True, error=marker)  # fmt: skip
    viewer = make_user("vic", is_staff=True)
    viewer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_generation", "view_span"])
    )
    root = make_user("root", is_staff=True, is_superuser=True)
    trace = reverse("analytics:trace", args=["conversation-7"])
    for who in (viewer, root):
        client.force_login(who)
        for name, row in [("generation", generation), ("span", span)]:
            for url in (
                reverse(f"admin:ai_{name}_changelist"),
                reverse(f"admin:ai_{name}_change", args=[row.pk]),
            ):
                response = client.get(url)
                assert response.status_code == 200, url
                html = response.content.decode()
                assert marker not in html, url
                assert f'href="{trace}"' in html, url
    assert not AuditEntry.objects.exists()
    # The link leads to the console: the content only with the permission, and audited.
    assert client.get(trace).status_code == 200
    assert AuditEntry.objects.get().actor == root
    client.force_login(viewer)
    assert client.get(trace).status_code == 403


def test_a_ticket_read_in_admin_is_audited(client, make_user, user):
    from django.contrib.auth.models import Permission

    from iridium.accounts.models import AuditEntry
    from tests import factories

    ticket = factories.ticket(user)
    viewer = make_user("vic", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_ticket"))
    client.force_login(viewer)
    assert client.get(reverse("admin:support_ticket_changelist")).status_code == 200
    assert not AuditEntry.objects.exists()  # a list of titles: nobody's thread
    response = client.get(reverse("admin:support_ticket_change", args=[ticket.pk]))
    assert response.status_code == 200
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.action, entry.target, entry.subject, entry.detail) == (
        viewer, "read ticket", ticket.ai_session_id, user, "admin"
    )  # fmt: skip
