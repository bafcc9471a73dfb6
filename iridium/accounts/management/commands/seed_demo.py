"""Create the demo data that README documents. Idempotent: running it again changes nothing."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from iridium.accounts.models import Organization, Plan, User

DEMO_PASSWORD = "iridium-demo"
ADMIN_PASSWORD = "iridium-admin"

DEMO_ORGANIZATION = {"slug": "acme", "name": "Acme Corp", "plan": "enterprise"}
# username, plan, organization slug or None, email
DEMO_USERS = [
    ("alice", "free", None, "alice@example.com"),
    ("bob", "pro", None, "bob@example.com"),
    ("carol", "enterprise", "acme", "carol@example.com"),
]


class Command(BaseCommand):
    help = "Create the demo admin, one user on each plan and an organization (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--allow-production",
            action="store_true",
            help="Seed even with DEBUG off (the demo passwords are public: not for real sites).",
        )

    def handle(self, *args, allow_production=False, **options):
        if not settings.DEBUG and not allow_production:
            raise CommandError(
                "seed_demo creates accounts with public passwords; it runs only with DEBUG on "
                "(or pass --allow-production)."
            )
        plans = {plan.slug: plan for plan in Plan.objects.all()}
        organization, _ = Organization.objects.update_or_create(
            slug=DEMO_ORGANIZATION["slug"],
            defaults={
                "name": DEMO_ORGANIZATION["name"],
                "plan": plans[DEMO_ORGANIZATION["plan"]],
            },
        )
        self._user("admin", ADMIN_PASSWORD, plans["enterprise"], None, "admin@example.com", True)
        for username, plan_slug, org_slug, email in DEMO_USERS:
            org = organization if org_slug == organization.slug else None
            self._user(username, DEMO_PASSWORD, plans[plan_slug], org, email, False)
        self.stdout.write(
            f"Demo data ready: admin / {ADMIN_PASSWORD} (staff); "
            + ", ".join(f"{u} / {DEMO_PASSWORD} ({p})" for u, p, _, _ in DEMO_USERS)
        )

    def _user(self, username, password, plan, organization, email, is_admin):
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
