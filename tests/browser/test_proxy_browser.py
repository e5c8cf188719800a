"""Two app servers behind HAProxy (``deploy/haproxy.cfg`` as shipped), sharing one PostgreSQL run store,
one S3 model store and one cookie secret: people sign in through the proxy against the loopback OpenID
Connect provider, and what one server starts, the other shows, stops and counts. Each person's server is
HAProxy's stickiness cookie (STUDIO_SERVER), checked against the server name the proxy answers with.
Screenshots go to test-artifacts/."""

import re

import pytest
from PIL import Image
from playwright.sync_api import expect
from test_app_browser import RUN_TIMEOUT_S
from test_draw_browser import READ_TIMEOUT_MS, TRAINING_TIMEOUT_MS
from test_sign_in_browser import PAGE_LOAD_TIMEOUT_MS, main, sign_in

from zoo.runs.store import open_run_store
from zoo.storage.models import ModelStore

pytestmark = pytest.mark.browser
LONG_PLAYGROUND_RUN = (
    "num_epochs=500&num_samples=1000&batch_size=1"  # minutes, even at thousands of batches/s
)


def open_on(page, address: str, server: str) -> None:
    """Open ``address`` and check that ``server`` answered it (the proxy names it in X-Zoo-Server)."""
    response = page.goto(address)
    assert response.headers["x-zoo-server"] == server


def test_a_run_or_model_from_one_server_is_followed_counted_stopped_and_drawn_with_on_the_other(
    proxied_studio, new_page, oidc_provider, screenshot, a_seven, tmp_path
):
    studio = proxied_studio(env={"ZOO_LIMIT_ACTIVE_RUNS_PER_OWNER": "1"})
    store, models = open_run_store(), ModelStore()
    alice, bob, teacher = new_page(), new_page(), new_page()

    # alice signs in through the proxy (the provider sends her back to the proxy's address) and starts a
    # long Playground run on the server the proxy pinned her to.
    sign_in(alice, studio.url, "alice")
    assert alice.url.startswith(studio.url)
    first = studio.server_of(alice)
    (other,) = set(studio.servers) - {first}
    open_on(alice, f"{studio.url}/playground?{LONG_PLAYGROUND_RUN}", first)
    alice.get_by_role("button", name="Start training").click(timeout=PAGE_LOAD_TIMEOUT_MS)
    expect(alice).to_have_url(re.compile(r"run=[0-9a-f]{12}"), timeout=PAGE_LOAD_TIMEOUT_MS)
    live_run = re.search(r"run=([0-9a-f]{12})", alice.url).group(1)
    assert store.get(live_run).owner == "alice"

    # bob, pinned to the other server, signs in there and follows her run live.
    studio.pin(bob, other)
    sign_in(bob, studio.url, "bob")
    assert studio.server_of(bob) == other
    open_on(bob, f"{studio.url}/playground?run={live_run}", other)
    expect(main(bob).get_by_test_id("stProgress").first).to_be_visible(timeout=PAGE_LOAD_TIMEOUT_MS)
    expect(main(bob).get_by_text(re.compile(rf"alice's run {live_run} \((queued|running)\)"))).to_be_visible()
    screenshot(bob, "proxy-bob-follows-alices-run-from-the-other-server")

    # alice's sign-in holds on the other server too (one cookie secret), and so does her cap of one live
    # run: her second Start there is refused.
    studio.pin(alice, other)
    open_on(alice, f"{studio.url}/playground?{LONG_PLAYGROUND_RUN}", other)
    alice.get_by_role("button", name="Start training").click(timeout=PAGE_LOAD_TIMEOUT_MS)
    expect(
        main(alice).get_by_text(re.compile("you have 1 runs queued or running, this host's limit per person"))
    ).to_be_visible(timeout=PAGE_LOAD_TIMEOUT_MS)
    assert [run.id for run in store.list_runs()] == [live_run]

    # The admin, on the other server, stops it; the model it trained so far, saved in the shared store
    # by the first server's worker, is shown there as alice's.
    studio.pin(teacher, other)
    sign_in(teacher, studio.url, "teacher")
    open_on(teacher, f"{studio.url}/playground?run={live_run}", other)
    main(teacher).get_by_role("button", name="Stop").click(timeout=PAGE_LOAD_TIMEOUT_MS)
    expect(teacher.get_by_text(re.compile(rf"Run {live_run} stopped after"))).to_be_visible(
        timeout=RUN_TIMEOUT_S * 1000
    )
    assert store.get(live_run).status == "stopped"
    model = models.names_by_run()[live_run]
    open_on(bob, f"{studio.url}/playground?run={live_run}", other)
    expect(bob.get_by_text(f"The model {model} is alice's")).to_be_visible(timeout=PAGE_LOAD_TIMEOUT_MS)

    # A CNN alice quick-trains on Draw through the first server is drawn with by bob on the other: it
    # reads his uploaded seven (an upload: held in the memory of the server he is pinned to).
    studio.pin(alice, first)
    open_on(alice, f"{studio.url}/draw", first)
    alice.get_by_role("button", name="Quick-train a CNN").click(timeout=PAGE_LOAD_TIMEOUT_MS)
    use_new_model = alice.get_by_role("button", name=re.compile(r"^Draw with cnn-"))
    expect(use_new_model).to_be_visible(timeout=TRAINING_TIMEOUT_MS)
    cnn_model = use_new_model.inner_text().removeprefix("Draw with ")
    (cnn_run,) = [run for run, name in models.names_by_run().items() if name == cnn_model]
    open_on(bob, f"{studio.url}/draw?run={cnn_run}", other)
    bob.get_by_role("button", name=f"Draw with {cnn_model}").click(timeout=PAGE_LOAD_TIMEOUT_MS)
    expect(bob.get_by_role("combobox", name="Model")).to_have_value(
        re.compile(f"^{cnn_model} · test accuracy")
    )
    seven = tmp_path / "seven.png"
    Image.fromarray(255 - a_seven).resize((140, 140)).save(seven)  # black on white
    bob.get_by_role("radio", name="Upload an image").click()
    bob.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(seven))
    expect(bob.get_by_test_id("stMetricValue")).to_have_text("7", timeout=READ_TIMEOUT_MS)
    screenshot(bob, "proxy-bob-draws-with-alices-cnn-from-the-other-server")
    assert oidc_provider.state.sign_ins == ["alice", "bob", "teacher"]
    assert not oidc_provider.state.refusals
