"""The demo data that README documents: an admin, a user on each plan, an organization, a
support agent, an analyst, knowledge-base articles and 30 days of history for the analytics
console (iridium.web.demo_history). `seed()` is idempotent: running it again changes nothing."""

from iridium.accounts.models import Organization, Plan, User
from iridium.analytics.access import analysts_group
from iridium.web import demo_history
from support.access import agents_group
from support.models import Article

DEMO_PASSWORD = "iridium-demo"
ADMIN_PASSWORD = "iridium-admin"

DEMO_ORGANIZATION = {"slug": "acme", "name": "Acme Corp", "plan": "enterprise"}
# username, plan, organization slug or None, email
DEMO_USERS = [
    ("alice", "free", None, "alice@example.com"),
    ("bob", "pro", None, "bob@example.com"),
    ("carol", "enterprise", "acme", "carol@example.com"),
]
DEMO_AGENT = "dana"  # support staff: the ticket queue, and knowledge-base articles in admin
DEMO_ANALYST = "erin"  # the analytics console's figures and traces, not people's words
DEMO_ARTICLES = [
    (
        "Resetting your password",
        "account, password, login",
        "1. Open **Settings → Security**.\n2. Choose **Reset password**.\n3. Follow the link we "
        "email you within ten minutes.\n\nThe link works once and expires after an hour.",
    ),
    (
        "Understanding your invoice",
        "billing, invoice, refund",
        "Each invoice lists your plan, the period and any extra usage. If you were charged twice, "
        "file a ticket in the **billing** category: refunds are issued within five working days.",
    ),
    (
        "Plans and limits",
        "plans, limits, budget",
        "Every plan has a daily number of AI requests and a monthly AI budget. When you reach "
        "either, AI features pause until the next day or month; upgrade for more.",
    ),
]


def seed() -> str:
    """Create or update the demo data; returns the log-ins, for the console."""
    plans = {plan.slug: plan for plan in Plan.objects.all()}
    organization, _ = Organization.objects.update_or_create(
        slug=DEMO_ORGANIZATION["slug"],
        defaults={"name": DEMO_ORGANIZATION["name"], "plan": plans[DEMO_ORGANIZATION["plan"]]},
    )
    _user("admin", ADMIN_PASSWORD, plans["enterprise"], None, "admin@example.com", True)
    for username, plan_slug, org_slug, email in DEMO_USERS:
        org = organization if org_slug == organization.slug else None
        _user(username, DEMO_PASSWORD, plans[plan_slug], org, email, False)
    agent = _user(DEMO_AGENT, DEMO_PASSWORD, plans["pro"], None, "dana@example.com", False)
    agent.is_staff = True
    agent.save(update_fields=["is_staff"])
    agent.groups.add(agents_group())
    analyst = _user(DEMO_ANALYST, DEMO_PASSWORD, plans["pro"], None, "erin@example.com", False)
    analyst.groups.add(analysts_group())
    for title, tags, body in DEMO_ARTICLES:
        Article.objects.update_or_create(
            title=title, defaults={"tags": tags, "body": body, "published": True}
        )
    written = demo_history.seed()
    history = f"{written} generation rows of history" if written else "history already there"
    return (
        f"{history}; admin / {ADMIN_PASSWORD} (staff); "
        + ", ".join(f"{u} / {DEMO_PASSWORD} ({p})" for u, p, _, _ in DEMO_USERS)
        + f", {DEMO_AGENT} / {DEMO_PASSWORD} (support staff)"
        + f", {DEMO_ANALYST} / {DEMO_PASSWORD} (analyst)"
    )


def _user(username, password, plan, organization, email, is_admin):
    user = User.objects.filter(username=username).first() or User(username=username)
    user.email = email
    user.plan = plan
    user.organization = organization
    user.is_staff = user.is_superuser = is_admin
    user.is_active = True
    if not user.pk or not user.check_password(password):
        user.set_password(password)
    user.save()
    return user
