from decimal import Decimal

import pytest
from django.http import HttpRequest
from django.urls import reverse

from iridium.accounts.models import Organization, Plan, User

STRONG_PASSWORD = "violet-Harbor-42"


def test_default_plans_exist_with_their_figures(plans):
    assert [p.slug for p in Plan.objects.all()] == ["free", "pro", "enterprise"]
    free, pro, enterprise = plans["free"], plans["pro"], plans["enterprise"]
    assert free.default_model == "gpt-4o-mini"
    assert pro.advanced_model == "gpt-4o"
    assert free.monthly_budget_usd < pro.monthly_budget_usd < enterprise.monthly_budget_usd
    assert free.daily_request_limit < pro.daily_request_limit < enterprise.daily_request_limit
    assert enterprise.privacy_mode_forced and not free.privacy_mode_forced
    assert isinstance(pro.monthly_budget_usd, Decimal)


def test_a_new_user_starts_on_the_free_plan(plans):
    user = User.objects.create_user("newcomer", password=STRONG_PASSWORD)
    assert user.plan == plans["free"]
    assert user.effective_plan == plans["free"]


def test_a_superuser_also_gets_a_plan(plans):
    admin = User.objects.create_superuser("root", "root@example.com", STRONG_PASSWORD)
    assert admin.plan == plans["free"]


def test_an_organizations_plan_is_inherited_by_its_members(make_user, organization, plans):
    member = make_user("member", plan="free", organization=organization)
    assert member.effective_plan == plans["enterprise"]


def test_an_organization_without_a_plan_leaves_members_on_their_own(make_user, plans):
    organization = Organization.objects.create(name="Initech", slug="initech")
    member = make_user("member", plan="pro", organization=organization)
    assert member.effective_plan == plans["pro"]


def test_a_user_belongs_to_at_most_one_organization(make_user, organization):
    member = make_user("member", organization=organization)
    other = Organization.objects.create(name="Initech", slug="initech")
    member.organization = other
    member.save()
    assert list(organization.members.all()) == []
    assert list(other.members.all()) == [member]


# --- Sign-up, log-in, log-out, password change --------------------------------------------


def signup(client, **fields):
    data = {"username": "newbie", "email": "", "password1": STRONG_PASSWORD}
    data["password2"] = fields.get("password1", STRONG_PASSWORD)
    data.update(fields)
    return client.post(reverse("signup"), data)


def test_signup_creates_a_free_user_and_logs_them_in(client, plans):
    response = signup(client)
    assert response.status_code == 302
    user = User.objects.get(username="newbie")
    assert user.plan == plans["free"]
    page = client.get(reverse("home"))
    assert page.context["user"] == user
    assert "Free plan" in page.content.decode()


def test_signup_with_a_taken_username_says_so(client, make_user):
    make_user("newbie")
    response = signup(client, username="NewBie")
    assert response.status_code == 200
    assert "A user with that username already exists." in response.content.decode()
    assert User.objects.filter(username__iexact="newbie").count() == 1


def test_signup_with_an_invalid_username_says_so(client, plans):
    response = signup(client, username="no spaces allowed!")
    assert response.status_code == 200
    assert "Enter a valid username" in response.content.decode()
    assert not User.objects.exists()


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short1", "This password is too short"),
        ("password123", "This password is too common"),
        ("8473629105", "This password is entirely numeric"),
    ],
)
def test_signup_with_a_weak_password_says_why(client, plans, password, message):
    response = signup(client, password1=password)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not User.objects.exists()


def test_signup_with_mismatched_passwords_says_so(client, plans):
    response = signup(client, password2="something-Else-99")
    assert "fields didn\N{RIGHT SINGLE QUOTATION MARK}t match" in response.content.decode()
    assert not User.objects.exists()


def test_login_logout_and_password_change(client, make_user):
    make_user("ursula", password=STRONG_PASSWORD)
    response = client.post(reverse("login"), {"username": "ursula", "password": STRONG_PASSWORD})
    assert response.status_code == 302 and response.url == reverse("home")

    new_password = "amber-Lantern-77"
    response = client.post(
        reverse("password_change"),
        {
            "old_password": STRONG_PASSWORD,
            "new_password1": new_password,
            "new_password2": new_password,
        },
    )
    assert response.status_code == 302 and response.url == reverse("password_change_done")

    client.post(reverse("logout"))
    assert client.get(reverse("chat:index")).status_code == 302
    assert client.login(request=HttpRequest(), username="ursula", password=new_password)


def test_login_with_a_wrong_password_says_so(client, user):
    response = client.post(reverse("login"), {"username": user.username, "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


# --- The layout -------------------------------------------------------------------------------


def test_layout_shows_the_plan_and_navigation(client, make_user, organization):
    member = make_user("member", plan="free", organization=organization)
    client.force_login(member)
    html = client.get(reverse("home")).content.decode()
    assert "Enterprise plan" in html  # inherited from the organization
    for label in ("Chat", "Support", "Generate"):
        assert f">{label}</a>" in html
    assert ">Admin</a>" not in html


def test_layout_shows_admin_to_staff(client, staff):
    client.force_login(staff)
    assert ">Admin</a>" in client.get(reverse("home")).content.decode()


@pytest.mark.parametrize("name", ["chat:index", "support:index", "codegen:index"])
def test_app_pages_need_a_signed_in_user(client, plans, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_the_demo_provider_banner_speaks_to_staff_only(client, user, staff, settings):
    """Whoever runs the install learns how to set a real model up; the people who use it are
    not told about configuration on every page (each demo answer says it is one)."""
    settings.AI_USES_DEMO_PROVIDER = True
    client.force_login(staff)
    assert "built-in demo provider" in client.get(reverse("home")).content.decode()
    client.force_login(user)
    assert "built-in demo provider" not in client.get(reverse("home")).content.decode()
    settings.AI_USES_DEMO_PROVIDER = False
    client.force_login(staff)
    assert "built-in demo provider" not in client.get(reverse("home")).content.decode()


def test_the_plans_page_compares_the_plans_and_marks_mine(client, make_user):
    client.force_login(make_user("ursula", plan="pro"))
    page = client.get(reverse("plans"))
    assert page.status_code == 200
    text = page.content.decode()
    table = text.split("<tbody>")[1]
    assert table.index("Free") < table.index("Pro") < table.index("Enterprise")
    assert 'aria-current="true" class="current-plan"' in text
    assert "You are on the <strong>Pro</strong> plan" in text
    assert reverse("plans") in client.get(reverse("account")).content.decode()
