"""The console's filters: read from the URL (GET parameters, so a view can be shared), applied
to the generation rows and, where the roll-ups keep the column, to the daily roll-ups."""

from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta

from django import forms
from django.core.cache import cache
from django.utils import timezone

from iridium.accounts.models import Organization, Plan, User
from iridium.ai.models import Generation

from .models import DailyUsage, HourlyUsage, RollupMark

PERIODS = {"today": "Today", "24h": "24 hours", "7d": "7 days", "30d": "30 days",
           "90d": "90 days"}  # fmt: skip
HOURLY = {"today", "24h"}
DEFAULT_PERIOD = "30d"
NO_SUCH_USER = "No user by that name."


@dataclass(frozen=True)
class Filters:
    feature: str = ""
    model: str = ""
    plan: int | None = None
    organization: int | None = None
    user: int | None = None
    variant: str = ""
    errors: bool = False

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    @property
    def latency_rollups_ok(self) -> bool:
        """The latency roll-ups are kept per model, feature, variant, plan and organization (of
        successful calls: errors only leaves none); one person's calls are read raw."""
        return not (self.user or self.errors)

    def _lookups(self, *, errors: bool = True) -> dict:
        lookups = {}
        for name, column in [("feature", "feature"), ("model", "model"), ("plan", "plan_id"),
                             ("organization", "organization_id"), ("user", "user_id"),
                             ("variant", "variant")]:  # fmt: skip
            value = getattr(self, name)
            if value:
                lookups[column] = value
        if errors and self.errors:
            lookups["is_error"] = True
        return lookups

    def rows(self, queryset):
        """Generation rows that pass the filters."""
        return queryset.filter(**self._lookups())

    def usage(self, queryset):
        """DailyUsage or HourlyUsage rows that pass the filters (they keep whether the calls
        failed)."""
        return queryset.filter(**self._lookups())

    def seen_lookups(self) -> dict:
        """The lookups of ConversationSeenBy rows that pass the filters (they keep whether the
        calls failed)."""
        return self._lookups()

    def latency(self, queryset):
        """DailyLatency or HourlyLatency rows that pass the filters (only when
        `latency_rollups_ok`)."""
        assert self.latency_rollups_ok
        return queryset.filter(**self._lookups())


NO_FILTERS = Filters()


CHOICE_COLUMNS = ("feature", "model", "variant")
CHOICES_CACHE_KEY = "analytics:filter-choices"
CHOICES_SECONDS = 60


def known_values(*, fresh: bool = False) -> dict[str, list[str]]:
    """The features, models and variants seen in the last 90 days: from the roll-ups (days and
    hours), and from the rows after them, in one pass over each. Kept for a minute."""
    if not fresh:
        found = cache.get(CHOICES_CACHE_KEY)
        if found is not None:
            return found
    mark = RollupMark.objects.first()
    values: dict[str, set] = {column: set() for column in CHOICE_COLUMNS}
    since, sources = timezone.now() - timedelta(days=90), []
    if mark:
        since = datetime.combine(mark.rolled_through, time.min,
                                 tzinfo=timezone.get_current_timezone())  # fmt: skip
        sources.append(DailyUsage.objects.all())
        if mark.hours_from is not None and mark.hours_from <= since < mark.rolled_until:
            since = mark.rolled_until
            sources.append(HourlyUsage.objects.all())
    sources.append(Generation.objects.filter(created_at__gte=since))
    for source in sources:
        for row in source.values_list(*CHOICE_COLUMNS).order_by().distinct():
            for column, value in zip(CHOICE_COLUMNS, row, strict=True):
                values[column].add(value)
    found = {column: sorted(v for v in values[column] if v) for column in CHOICE_COLUMNS}
    cache.set(CHOICES_CACHE_KEY, found, CHOICES_SECONDS)
    return found


def _choices(values, everything: str):
    return [("", everything)] + [(value, value) for value in values]


class FilterForm(forms.Form):
    """The filters as a GET form. A value that does not check out is dropped, with its error."""

    period = forms.ChoiceField(choices=list(PERIODS.items()), required=False)
    feature = forms.ChoiceField(required=False)
    model = forms.ChoiceField(required=False)
    plan = forms.ModelChoiceField(
        Plan.objects.all(), to_field_name="slug", required=False, empty_label="All plans"
    )
    organization = forms.ModelChoiceField(
        Organization.objects.all(),
        to_field_name="slug",
        required=False,
        empty_label="All organizations",
    )
    user = forms.CharField(required=False, max_length=150, label="User name")
    variant = forms.ChoiceField(required=False, label="Experiment variant")
    errors = forms.BooleanField(required=False, label="Errors only")

    def __init__(self, data, *, with_day: bool = False):
        super().__init__(data)
        known = known_values()
        asked = {column: data.get(column) for column in CHOICE_COLUMNS if data.get(column)}
        if any(value not in known[column] for column, value in asked.items()):
            known = known_values(fresh=True)  # seen in the last minute, perhaps
        self.fields["feature"].choices = _choices(known["feature"], "All features")
        self.fields["model"].choices = _choices(known["model"], "All models")
        self.fields["variant"].choices = _choices(known["variant"], "All variants")
        if with_day:
            self.fields["day"] = forms.DateField(
                required=False, label="Day", widget=forms.DateInput(attrs={"type": "date"})
            )
        self.is_valid()

    def clean_user(self):
        username = self.cleaned_data["user"].strip()
        if not username:
            return None
        found = User.objects.filter(username=username).values_list("pk", flat=True).first()
        if found is None:
            raise forms.ValidationError(NO_SUCH_USER)
        return found

    def value(self, name, default=None):
        value = self.cleaned_data.get(name)
        return default if value in (None, "") else value

    @property
    def selected_period(self) -> str:
        return self.value("period", DEFAULT_PERIOD)

    @property
    def selected_day(self) -> date | None:
        return self.value("day")

    @property
    def filters(self) -> Filters:
        plan = self.value("plan")
        organization = self.value("organization")
        return Filters(
            feature=self.value("feature", ""),
            model=self.value("model", ""),
            plan=plan.pk if plan else None,
            organization=organization.pk if organization else None,
            user=self.value("user"),
            variant=self.value("variant", ""),
            errors=bool(self.value("errors", False)),
        )
