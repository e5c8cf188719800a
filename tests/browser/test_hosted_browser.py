"""Hosted mode as a class meets it in a real browser, signed in through ``st.login`` against the loopback
OpenID Connect provider: whose drawings are whose, links shared with visitors, the host's limits in the
widgets, and the teacher's admin page. Screenshots go to test-artifacts/."""

import re
import subprocess

import numpy as np
import pytest
from playwright.sync_api import expect
from run_helpers import claim
from test_sign_in_browser import (
    ALL_PAGES,
    PAGE_LOAD_TIMEOUT_MS,
    VISITOR_PAGES,
    expect_pages,
    main,
    sidebar,
    sign_in,
)

from zoo.core.hosting import User
from zoo.core.spec import TrainSpec
from zoo.runs.store import open_run_store
from zoo.storage.digits import DigitStore

pytestmark = pytest.mark.browser


def auth_secrets(oidc_provider) -> str:
    return oidc_provider.auth_secrets("http://127.0.0.1:{port}/oauth2callback")


def choose_digit_set(page, base_url: str, set_name: str) -> None:
    """Open Draw and type ``set_name`` as the digit set (my digits)."""
    page.goto(f"{base_url}/draw")
    field = page.get_by_label("Digit set", exact=True)
    field.fill(set_name, timeout=PAGE_LOAD_TIMEOUT_MS)
    field.press("Enter")


def test_a_persons_drawings_are_theirs_unless_they_share_them_and_an_admin_sees_them(
    streamlit_app, new_page, oidc_provider, hosted, screenshot
):
    store = DigitStore()
    for index in range(6):
        drawing = np.zeros((280, 280, 4), np.uint8)
        drawing[40:240, 130 + index : 150 + index, 3] = 255
        store.add("alice-digits", index % 2, drawing, np.zeros((28, 28), np.float32), by=User("alice"))
    base_url = streamlit_app(env=hosted, secrets=auth_secrets(oidc_provider))
    bob, teacher, alice = new_page(), new_page(), new_page()

    # bob types her set's name on Draw: not shown, not downloadable, nothing to fine-tune on.
    sign_in(bob, base_url, "bob")
    choose_digit_set(bob, base_url, "alice-digits")
    expect(main(bob).get_by_text("the digit set 'alice-digits' is alice's and not shared")).to_be_visible(
        timeout=PAGE_LOAD_TIMEOUT_MS
    )
    expect(bob.get_by_text("6 digits")).to_have_count(0)
    expect(bob.get_by_text("Relabel, delete or download")).to_have_count(0)  # where the downloads are
    expect(bob.get_by_role("button", name="Fine-tune mnist-cnn on my digits")).to_have_count(0)
    screenshot(bob, "hosted-bob-refused-alices-digits")

    # The admin sees them.
    sign_in(teacher, base_url, "teacher")
    choose_digit_set(teacher, base_url, "alice-digits")
    expect(teacher.get_by_text("6 digits")).to_be_visible(timeout=PAGE_LOAD_TIMEOUT_MS)

    # alice shares her set on Draw; then bob sees it and may fine-tune on it, not change it.
    sign_in(alice, base_url, "alice")
    alice.goto(f"{base_url}/draw")
    expect(alice.get_by_text("6 digits")).to_be_visible(timeout=PAGE_LOAD_TIMEOUT_MS)
    assert not store.is_shared("alice-digits")
    alice.get_by_text("Share this set with everyone").click()
    expect(alice.get_by_role("switch", name="Share this set with everyone")).to_be_checked()
    choose_digit_set(bob, base_url, "alice-digits")
    expect(bob.get_by_text("6 digits")).to_be_visible(timeout=PAGE_LOAD_TIMEOUT_MS)
    assert store.is_shared("alice-digits")
    expect(bob.get_by_text("alice-digits is alice's, shared with everyone")).to_be_visible()
    expect(bob.get_by_role("button", name="Fine-tune mnist-cnn on my digits")).to_be_enabled()
    bob.get_by_text("Relabel, delete or download").click()
    expect(bob.get_by_role("button", name="Download .npz")).to_be_visible()
    expect(bob.get_by_role("button", name="Relabel")).to_be_disabled()
    expect(bob.get_by_text("Share this set with everyone")).to_have_count(0)
    screenshot(bob, "hosted-bob-sees-alices-shared-digits")


def test_a_visitor_opening_a_shared_link_signs_in_on_that_page_and_comes_back_to_it(
    streamlit_app, browser_page, oidc_provider, hosted, screenshot
):
    store = open_run_store()
    run_id = store.create_run(TrainSpec.cnn(mnist_source="embedded"), "cpu", owner=User("alice"))
    assert claim(store, run_id)
    store.finish(run_id, "stopped", message="stopped on request")
    base_url = streamlit_app(env=hosted, secrets=auth_secrets(oidc_provider))
    page = browser_page
    page.goto(f"{base_url}/train?run={run_id}")  # a link alice shared, opened by someone not signed in
    expect(main(page).get_by_text("Sign in to train a model.")).to_be_visible(timeout=PAGE_LOAD_TIMEOUT_MS)
    expect(page.get_by_text("Page not found")).to_have_count(0)
    expect_pages(page, VISITOR_PAGES)
    screenshot(page, "hosted-visitor-on-a-shared-link")

    main(page).get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="bob", exact=True).click()  # the provider's page
    expect(page).to_have_url(f"{base_url}/train?run={run_id}", timeout=PAGE_LOAD_TIMEOUT_MS)
    expect(main(page).get_by_text(f"Run {run_id} stopped after")).to_be_visible(timeout=PAGE_LOAD_TIMEOUT_MS)
    expect(sidebar(page).get_by_text("Signed in as bob.")).to_be_visible()

    # Signing in from another page comes back to that one; once back, a reload stays where it is.
    sidebar(page).get_by_role("button", name="Sign out").click()
    expect(sidebar(page).get_by_role("button", name="Sign in")).to_be_visible(timeout=PAGE_LOAD_TIMEOUT_MS)
    page.goto(f"{base_url}/learn")
    sidebar(page).get_by_role("button", name="Sign in").click(timeout=PAGE_LOAD_TIMEOUT_MS)
    page.get_by_role("button", name="alice", exact=True).click()
    expect(page).to_have_url(f"{base_url}/learn", timeout=PAGE_LOAD_TIMEOUT_MS)
    expect(sidebar(page).get_by_text("Signed in as alice.")).to_be_visible(timeout=PAGE_LOAD_TIMEOUT_MS)


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 800}, {"width": 390, "height": 844}])
def test_fields_stop_at_the_hosts_limits_and_say_so(
    streamlit_app, browser_page, oidc_provider, hosted, screenshot, viewport
):
    page = browser_page
    base_url = streamlit_app(env=hosted, secrets=auth_secrets(oidc_provider))
    sign_in(page, base_url, "alice")
    page.set_viewport_size(viewport)  # a phone's sidebar is folded away: signed in before
    # The hosted defaults: 500 epochs per run, batches of at most 1,024.
    for path, fields in [("playground", {"Epochs": 500}), ("train", {"Epochs": 500, "Batch size": 1024})]:
        page.goto(f"{base_url}/{path}")
        for label, maximum in fields.items():
            field = page.get_by_label(label, exact=True)
            if path == "train":
                expect(field).to_have_attribute("max", str(maximum), timeout=PAGE_LOAD_TIMEOUT_MS)
            else:  # the Playground's number fields have no bounds of their own (issue 22, item 10)
                page.get_by_role("tab", name="Training").click(timeout=PAGE_LOAD_TIMEOUT_MS)
                field.fill(str(maximum + 1))
                field.press("Enter")
                expect(
                    page.get_by_text(f"{label}: {maximum + 1} is not allowed; choose 1 to {maximum}.")
                ).to_be_visible(timeout=PAGE_LOAD_TIMEOUT_MS)
            expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=PAGE_LOAD_TIMEOUT_MS)
            page.get_by_role("button", name=f"Help for {label}").hover()  # its tooltip: the words next to it
            expect(page.get_by_test_id("stTooltipContent")).to_have_text(
                f"At most {maximum:,} with the other settings as they are: this host allows "
                + ("500 epochs per run." if label == "Epochs" else "batches of at most 1,024."),
                timeout=PAGE_LOAD_TIMEOUT_MS,
            )
            page.mouse.move(0, 0)  # the tooltip goes
        screenshot(page, f"hosted-limits-{path}-{viewport['width']}")


def test_the_teacher_has_an_admin_overview_that_stops_runs_and_a_student_is_politely_refused_it(
    streamlit_app, new_page, oidc_provider, hosted, screenshot
):
    store = open_run_store()
    worker = subprocess.Popen(["sleep", "600"])  # stands for the process training alice's run
    try:
        live = store.create_run(TrainSpec.binary(), "cpu", owner=User("alice"))
        assert claim(store, live, worker=worker.pid)
        base_url = streamlit_app(env=hosted, secrets=auth_secrets(oidc_provider))
        bob, teacher = new_page(), new_page()

        sign_in(bob, base_url, "bob")
        expect_pages(bob, ALL_PAGES)  # no Admin in a student's menu
        bob.goto(f"{base_url}/admin")  # and its address: a polite no, not "Page not found"
        expect(main(bob).get_by_text("This page is for the host's admins")).to_be_visible(
            timeout=PAGE_LOAD_TIMEOUT_MS
        )
        expect(bob.get_by_text("Page not found")).to_have_count(0)
        expect(main(bob).get_by_role("table")).to_have_count(0)

        sign_in(teacher, base_url, "teacher")
        expect_pages(teacher, [*ALL_PAGES, "Admin"])
        sidebar(teacher).get_by_test_id("stSidebarNavLink").filter(has_text="Admin").click()
        people = main(teacher).get_by_role("table").first
        expect(people.get_by_role("row", name="bob yes")).to_be_visible(timeout=PAGE_LOAD_TIMEOUT_MS)
        expect(people.get_by_role("row", name="teacher yes")).to_be_visible()
        expect(people.get_by_role("row", name="alice no never on a page")).to_be_visible()
        expect(main(teacher).get_by_text(re.compile("500 epochs per run"))).to_be_visible()
        screenshot(teacher, "hosted-admin-overview")

        main(teacher).get_by_role("button", name="Stop this run").click()
        expect(teacher.get_by_text(f"Stopping run {live} after its current batch.")).to_be_visible(
            timeout=PAGE_LOAD_TIMEOUT_MS
        )
        assert store.heartbeat(live)  # the worker is asked to stop
    finally:
        worker.kill()
        worker.wait()
