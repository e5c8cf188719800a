"""Hosted mode in a real browser, signed in through Streamlit's own ``st.login`` against the loopback
OpenID Connect provider of tests/oidc_server.py: each person is a browser context of their own.

alice starts a run on the Playground and owns a trained CNN; bob sees her runs and models and cannot
stop, delete or rename them on any page; the admin (teacher) can. A visitor who is not signed in gets
Home, Learn and Draw, also after signing out; a host without an ``[auth]`` section says so in one
line when Sign in is clicked.
Screenshots go to test-artifacts/."""

import re

import pytest
from oidc_server import USERS
from playwright.sync_api import expect
from test_app_browser import ROW_MARKER_X, RUN_TIMEOUT_S, TABLE_ROW_HEIGHT

from zoo.app.ui import SIGN_IN_NOT_CONFIGURED
from zoo.core.hosting import User
from zoo.core.spec import TrainSpec
from zoo.execution.admission import start
from zoo.execution.executor import open_executor, wait
from zoo.runs.store import open_run_store
from zoo.storage.models import ModelStore

pytestmark = pytest.mark.browser
PAGE_LOAD_TIMEOUT_MS = 90_000  # the first page that scores a saved model imports TensorFlow in the server
VISITOR_PAGES = ["Home", "Learn", "Draw"]
ALL_PAGES = ["Home", "Playground", "Train", "Runs", "Learn", "Draw", "Hub"]
RENAME_FIELD = "Keep the model in the local zoo as"


def sidebar(page):
    return page.get_by_test_id("stSidebar")


def main(page):
    return page.get_by_test_id("stMainBlockContainer")


def expect_pages(page, names: list[str]) -> None:
    """The sidebar's navigation offers exactly these pages (once app.py's ``st.navigation`` has run)."""
    links = page.get_by_test_id("stSidebarNavLink")  # each link's text: its icon's name, then its title
    expect(links).to_have_text([re.compile(f"{name}$") for name in names], timeout=PAGE_LOAD_TIMEOUT_MS)


def sign_in(page, base_url: str, user: str) -> None:
    """Sign in as ``user`` the way a visitor does: Sign in, the provider's page, back in the studio."""
    page.goto(base_url)
    sidebar(page).get_by_role("button", name="Sign in").click(timeout=PAGE_LOAD_TIMEOUT_MS)
    page.get_by_role("button", name=user, exact=True).click()  # the provider's page: who signs in
    role = " (admin)" if user == "teacher" else ""
    expect(sidebar(page).get_by_text(f"Signed in as {user}{role}.")).to_be_visible(
        timeout=PAGE_LOAD_TIMEOUT_MS
    )


def choose_rows(page, count: int) -> None:
    """Tick the first ``count`` rows of the Runs table (Streamlit draws it on a canvas)."""
    table = page.get_by_test_id("stDataFrame")
    expect(table.locator("canvas").first).to_be_visible(timeout=PAGE_LOAD_TIMEOUT_MS)
    for row in range(1, count + 1):
        table.click(position={"x": ROW_MARKER_X, "y": (row + 0.5) * TABLE_ROW_HEIGHT})
        expect(page.get_by_role("button", name=re.compile(r"Delete \d run\(s\)"))).to_be_visible(
            timeout=PAGE_LOAD_TIMEOUT_MS
        )


def test_without_an_auth_section_visitors_get_home_learn_draw_and_sign_in_says_it_is_not_configured(
    streamlit_app, browser_page, hosted
):
    page = browser_page
    page.goto(streamlit_app(env=hosted, secrets=""))  # a secrets file without [auth]
    expect_pages(page, VISITOR_PAGES)
    sidebar(page).get_by_role("button", name="Sign in").click()
    expect(sidebar(page).get_by_text(SIGN_IN_NOT_CONFIGURED)).to_be_visible(timeout=PAGE_LOAD_TIMEOUT_MS)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    expect_pages(page, VISITOR_PAGES)


def test_signed_in_people_manage_only_their_own_runs_and_models_and_an_admin_manages_all(
    streamlit_app, new_page, oidc_provider, screenshot, hosted, zoo_home
):
    store, models = open_run_store(), ModelStore()
    # alice's CNN, trained by a worker while the browsers sign in
    cnn_run = start(
        TrainSpec.cnn(mnist_source="embedded", num_epochs=1), by=User("alice"), executor=open_executor(store)
    )
    base_url = streamlit_app(
        env=hosted, secrets=oidc_provider.auth_secrets("http://127.0.0.1:{port}/oauth2callback")
    )
    alice, bob, teacher = new_page(), new_page(), new_page()

    # Not signed in: Home, Learn and Draw only. Then each person signs in with the provider.
    bob.goto(base_url)
    expect_pages(bob, VISITOR_PAGES)
    expect(main(bob).get_by_text(f"cnn run {cnn_run} ·")).to_be_visible()  # the host's runs, not linked
    expect(main(bob).get_by_text("No runs yet")).to_have_count(0)
    for page, user in [(bob, "bob"), (alice, "alice"), (teacher, "teacher")]:
        sign_in(page, base_url, user)
        expect_pages(page, ALL_PAGES + (["Admin"] if user == "teacher" else []))
    assert oidc_provider.state.sign_ins == ["bob", "alice", "teacher"]
    assert not oidc_provider.state.refusals

    # alice starts a long run on the Playground (a minute or more even at thousands of batches a second:
    # 500 epochs of 700 batches); hers to stop.
    alice.goto(f"{base_url}/playground?num_epochs=500&num_samples=1000&batch_size=1")
    alice.get_by_role("button", name="Start training").click(timeout=PAGE_LOAD_TIMEOUT_MS)
    expect(alice).to_have_url(re.compile(r"run=[0-9a-f]{12}"), timeout=PAGE_LOAD_TIMEOUT_MS)
    live_run = re.search(r"run=([0-9a-f]{12})", alice.url).group(1)
    assert store.get(live_run).owner == "alice"
    expect(sidebar(alice).get_by_text(f"Live: binary run {live_run}")).to_be_visible()
    expect(main(alice).get_by_role("button", name="Stop")).to_be_enabled()

    # bob follows her live run: read-only; his sidebar lists only his own live runs.
    bob.goto(f"{base_url}/playground?run={live_run}")
    expect(main(bob).get_by_test_id("stProgress").first).to_be_visible(timeout=PAGE_LOAD_TIMEOUT_MS)
    expect(main(bob).get_by_role("button", name="Stop")).to_have_count(0)  # hers to stop, not his
    expect(
        main(bob).get_by_text(re.compile(rf"alice's run {live_run} \((queued|running)\), trained with"))
    ).to_be_visible()
    expect(sidebar(bob).get_by_text("No live run of yours")).to_be_visible()
    expect(sidebar(bob).get_by_text(re.compile(r"run\(s\) queued or training on this host"))).to_be_visible()
    expect(sidebar(bob).get_by_text(re.compile("^Live:"))).to_have_count(0)
    screenshot(bob, "hosted-bob-follows-alices-run")
    bob.goto(f"{base_url}/runs")
    choose_rows(bob, 1)
    expect(bob.get_by_text("1 of the chosen runs are someone else's")).to_be_visible()
    expect(bob.get_by_role("button", name="Delete 0 run(s)")).to_be_disabled()

    # The admin stops alice's run; the model it trained so far is kept, still hers.
    teacher.goto(f"{base_url}/playground?run={live_run}")
    main(teacher).get_by_role("button", name="Stop").click(timeout=PAGE_LOAD_TIMEOUT_MS)
    expect(teacher.get_by_text(re.compile(rf"Run {live_run} stopped after"))).to_be_visible(
        timeout=RUN_TIMEOUT_S * 1000
    )
    assert store.get(live_run).status == "stopped"
    assert wait(cnn_run, RUN_TIMEOUT_S, open_executor(store)).status == "completed"
    boundary_model, cnn_model = (models.names_by_run()[run_id] for run_id in (live_run, cnn_run))
    assert {models.entry(name).owner for name in (boundary_model, cnn_model)} == {"alice"}

    # bob can look at her models and draw with her CNN, not rename or delete them, on any page.
    bob.goto(f"{base_url}/playground?run={live_run}")
    expect(bob.get_by_text(f"The model {boundary_model} is alice's")).to_be_visible(
        timeout=PAGE_LOAD_TIMEOUT_MS
    )
    expect(bob.get_by_role("button", name="Keep this model")).to_have_count(0)
    bob.goto(f"{base_url}/train?run={cnn_run}")
    expect(bob.get_by_text(f"The model {cnn_model} is alice's")).to_be_visible(timeout=PAGE_LOAD_TIMEOUT_MS)
    expect(bob.get_by_label(RENAME_FIELD)).to_have_count(0)
    expect(main(bob).get_by_role("button", name="Stop")).to_have_count(0)
    bob.goto(f"{base_url}/draw?run={cnn_run}")
    expect(bob.get_by_role("button", name=f"Draw with {cnn_model}")).to_be_visible(
        timeout=PAGE_LOAD_TIMEOUT_MS
    )
    expect(main(bob).get_by_role("button", name="Stop")).to_have_count(0)
    bob.goto(base_url)
    expect(bob.get_by_text(re.compile(rf"^{cnn_model} · test accuracy"))).to_be_visible(
        timeout=PAGE_LOAD_TIMEOUT_MS
    )
    expect(main(bob).get_by_role("button", name=re.compile("Delete|Rename|Save|Keep"))).to_have_count(0)
    bob.goto(f"{base_url}/runs")
    choose_rows(bob, 2)
    expect(bob.get_by_text("2 of the chosen runs are someone else's")).to_be_visible()
    expect(bob.get_by_role("button", name="Delete 0 run(s)")).to_be_disabled()
    screenshot(bob, "hosted-bob-runs")
    assert {run.id for run in store.list_runs()} == {live_run, cnn_run}

    # alice keeps her Playground model under a name; the admin deletes both runs with their models.
    alice.goto(f"{base_url}/playground?run={live_run}")
    alice.get_by_label("Name", exact=True).fill("alices-boundary", timeout=PAGE_LOAD_TIMEOUT_MS)
    alice.get_by_role("button", name="Keep this model").click()
    expect(alice.get_by_text("Saved in the local zoo as alices-boundary.")).to_be_visible(
        timeout=PAGE_LOAD_TIMEOUT_MS
    )
    assert models.entry("alices-boundary").owner == "alice"
    teacher.goto(f"{base_url}/runs")
    choose_rows(teacher, 2)
    teacher.get_by_text("Also delete their saved models from the local zoo").click()
    teacher.get_by_role("button", name="Delete 2 run(s)").click()
    teacher.get_by_role("button", name="Yes, delete them").click(timeout=PAGE_LOAD_TIMEOUT_MS)
    expect(teacher.get_by_text("No runs yet")).to_be_visible(timeout=PAGE_LOAD_TIMEOUT_MS)
    assert store.list_runs() == []
    assert [entry.name for entry in models.entries()] == ["mnist-cnn"]  # the shipped starter is shared

    # Signing out goes through the provider's logout and back: a visitor again.
    sidebar(teacher).get_by_role("button", name="Sign out").click()
    expect(sidebar(teacher).get_by_role("button", name="Sign in")).to_be_visible(timeout=PAGE_LOAD_TIMEOUT_MS)
    expect_pages(teacher, VISITOR_PAGES)
    assert set(oidc_provider.state.sign_ins) == set(USERS) and not oidc_provider.state.refusals
