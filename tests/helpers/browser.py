"""Steps that browser tests share."""

from playwright.sync_api import expect

from tests.factories import DEFAULT_PASSWORD

# Assertions wait as long as actions do (10 s, set on every context): on a loaded two-core CI
# machine an answer can take longer than expect()'s default 5 s to finish.
expect.set_options(timeout=10_000)


def log_in(page, live_url, user, password=DEFAULT_PASSWORD):
    """Log `user` in through the log-in page; returns once the layout shows their plan."""
    page.goto(live_url + "/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("plan-badge")).to_be_visible()


def wait_until_connected(page):
    """Until the stream page's script has run and its socket is open (it marks the page
    `data-connected`): keys pressed before would reach a composer no script listens to yet."""
    page.wait_for_selector("[data-connected]", state="attached")


DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SIZES = {"desktop": DESKTOP, "phone": PHONE}


def new_page(browser, *, size=DESKTOP, scheme="light", **options):
    """A page of a fresh browser context at `size` (DESKTOP or PHONE) in the `scheme` colour
    scheme ("light" or "dark"); closing its context is the caller's (page.context.close())."""
    context = browser.new_context(
        viewport=size,
        color_scheme=scheme,
        has_touch=size is PHONE,
        is_mobile=size is PHONE,
        **options,
    )
    context.set_default_timeout(10_000)
    return context.new_page()


def box(locator) -> dict:
    """The element's box in the viewport (x, y, width, height, and its bottom)."""
    found = locator.bounding_box()
    assert found is not None, f"{locator} is not shown"
    return {**found, "bottom": found["y"] + found["height"], "right": found["x"] + found["width"]}


def horizontal_overflow(page) -> int:
    """How many pixels the page is wider than its viewport (0: no horizontal scrolling)."""
    return page.evaluate(
        "document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth"
    )
