"""The studio in a real browser: the Playground's live boundary and loss, a Train run followed
to its evaluation across a reload, and runs chosen on Runs, overlaid and deleted.
Screenshots go to test-artifacts/."""

import contextlib
import re
import time

import pytest
from playwright.sync_api import expect

from zoo.core.hosting import LOCAL_USER
from zoo.core.spec import TrainSpec
from zoo.execution.admission import start
from zoo.execution.executor import open_executor, wait
from zoo.runs.store import open_run_store
from zoo.storage.models import ModelStore

pytestmark = pytest.mark.browser
PAGE_LOAD_TIMEOUT_MS = 60_000
RUN_TIMEOUT_S = 150
POLL_SECONDS = 0.3
TABLE_ROW_HEIGHT = 35  # px, header included: Streamlit's dataframe draws its rows on a canvas
ROW_MARKER_X = 15  # px, the middle of the row-selection boxes' column

# The Playground's plane as drawn: the step of the surface on its canvas (-1: the points only) and the
# colour at its centre (null before the canvas is there).
PLANE_DRAWN = """() => {
    const canvas = document.querySelector('.st-key-boundary canvas');
    if (!canvas) return null;
    const pixel = canvas.getContext('2d').getImageData(canvas.width / 2, canvas.height / 2, 1, 1).data;
    return canvas.dataset.frame + '|' + Array.from(pixel).join(',');
}"""

# The Playground's loss curves as drawn: the last epoch on the canvas and the colours along its middle
# row (null before the canvas is there).
LOSS_DRAWN = """() => {
    const root = document.querySelector('.st-key-loss .zoo-loss');
    const canvas = root && root.querySelector('canvas');
    if (!canvas) return null;
    const row = canvas.getContext('2d').getImageData(0, canvas.height / 2, canvas.width, 1).data;
    return root.dataset.frame + '|' + Array.from(row).join(',');
}"""


# The names of a chart's traces, once it has more than one (null before).
TRACE_NAMES = """(key) => {
    const graph = document.querySelector(`.st-key-${key} .js-plotly-plot`);
    return graph && graph.data && graph.data.length > 1 ? graph.data.map((trace) => trace.name) : null;
}"""


def progress_text(page) -> str:
    bars = page.get_by_test_id("stMain").get_by_test_id("stProgress")
    return bars.first.inner_text() if bars.count() else ""


def test_playground_boundary_and_loss_change_live_then_stop(
    streamlit_app, browser_page, screenshot, zoo_home
):
    page = browser_page
    # 1000 epochs of 280 single-point batches: a run long enough to watch and stop (the default's
    # 1000 epochs of 9 batches end in about 4 s)
    page.goto(f"{streamlit_app()}/playground?num_epochs=1000&batch_size=1&noise=0.25")
    start = page.get_by_role("button", name="Start training")
    expect(start).to_be_visible(timeout=PAGE_LOAD_TIMEOUT_MS)
    expect(page.get_by_role("slider", name="Noise")).to_have_value("0.25")  # set by the link
    expect(page.locator(".st-key-boundary canvas")).to_be_visible(timeout=PAGE_LOAD_TIMEOUT_MS)
    page.get_by_label("Seed").fill("3")
    page.get_by_label("Seed").press("Enter")
    expect(page).to_have_url(re.compile(r"seed=3"))  # a changed setting goes into the link
    screenshot(page, "playground-before")
    start.click()
    expect(page).to_have_url(re.compile(r"run=[0-9a-f]{12}"), timeout=PAGE_LOAD_TIMEOUT_MS)
    assert "num_epochs=1000" in page.url, "the settings stay in the link"

    boundaries, losses = [], []
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while (len(boundaries) < 3 or len(losses) < 3) and time.monotonic() < deadline:
        boundary, loss = page.evaluate(PLANE_DRAWN), page.evaluate(LOSS_DRAWN)
        if boundary and not boundary.startswith("-1|") and boundary not in boundaries:
            boundaries.append(boundary)
        if loss and not loss.startswith("0|") and loss not in losses:
            losses.append(loss)
        time.sleep(POLL_SECONDS)
    assert len(boundaries) >= 3, f"the boundary changed {len(boundaries) - 1} time(s) while training"
    assert len(losses) >= 3, f"the loss chart changed {len(losses) - 1} time(s) while training"
    assert "Epoch" in progress_text(page), "the run is still live"
    page.locator(".st-key-boundary canvas").hover()  # the middle of the plane: what the model says there
    expect(page.locator(".st-key-boundary .zoo-plane-hover")).to_have_text(
        re.compile(r"x=-?\d+\.\d\d, y=-?\d+\.\d\d, P\(1\)=[01]\.\d\d")
    )
    screenshot(page, "playground-live")

    # The main area's Stop, not the one in Streamlit's own "running" status widget.
    page.get_by_test_id("stMainBlockContainer").get_by_role("button", name="Stop").click()
    expect(page.get_by_text(re.compile(r"Run [0-9a-f]{12} stopped after"))).to_be_visible(
        timeout=RUN_TIMEOUT_S * 1000
    )
    run_id = re.search(r"run=([0-9a-f]{12})", page.url).group(1)
    run = open_run_store().get(run_id)
    assert run.status == "stopped" and run.progress.epoch < 1000
    expect(page.locator(".st-key-roc .js-plotly-plot")).to_be_visible(timeout=PAGE_LOAD_TIMEOUT_MS)
    expect(page.get_by_role("button", name="Keep this model")).to_be_visible(timeout=PAGE_LOAD_TIMEOUT_MS)
    page.set_viewport_size({"width": 1400, "height": 2600})  # the whole page, results included
    screenshot(page, "playground-stopped")


def test_train_one_epoch_followed_across_a_reload_to_its_confusion_matrix(
    streamlit_app, browser_page, screenshot, zoo_home
):
    page = browser_page
    page.goto(f"{streamlit_app()}/train")
    expect(page.get_by_role("button", name="Start training")).to_be_visible(timeout=PAGE_LOAD_TIMEOUT_MS)
    page.get_by_text("Embedded subset: 4,000 train").click()
    page.get_by_label("Epochs").fill("1")
    page.get_by_label("Batch size").fill("16")  # 225 steps: a run long enough to reload in the middle
    page.get_by_role("button", name="Start training").click()
    expect(page).to_have_url(re.compile(r"run=[0-9a-f]{12}"), timeout=PAGE_LOAD_TIMEOUT_MS)
    run_id = re.search(r"run=([0-9a-f]{12})", page.url).group(1)
    expect(page.get_by_test_id("stMain").get_by_test_id("stProgress").first).to_be_visible(
        timeout=PAGE_LOAD_TIMEOUT_MS
    )
    expect(page.get_by_test_id("stSidebar").get_by_text(f"Live: cnn run {run_id}")).to_be_visible()
    screenshot(page, "train-live")

    page.reload()
    # The main area's heading, not the sidebar's "Live: cnn run ..." (get_by_text ignores case).
    expect(page.get_by_test_id("stMain").get_by_text(f"Run {run_id}", exact=True)).to_be_visible(
        timeout=PAGE_LOAD_TIMEOUT_MS
    )
    assert open_run_store().get(run_id).is_active, "the reload happened mid-run"
    seen = []
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while "step 225/225" not in (seen[-1] if seen else "") and time.monotonic() < deadline:
        text = progress_text(page)
        if text and (not seen or seen[-1] != text):
            seen.append(text)
        time.sleep(POLL_SECONDS)
    assert seen and "Epoch 1/1 · step 225/225" in seen[-1], seen
    assert len(seen) >= 2, f"after the reload the progress bar moved on: {seen}"
    # While the page reruns into its results, the live bar's stale copy can still be shown beside it.
    full_bar = page.get_by_test_id("stMain").locator('[role="progressbar"][aria-valuenow="100"]')
    expect(full_bar.first).to_be_visible()
    screenshot(page, "train-after-reload")

    confusion = page.locator(".js-plotly-plot").filter(has_text="Confusion matrix")
    expect(confusion).to_be_visible(timeout=RUN_TIMEOUT_S * 1000)
    expect(page.get_by_text(re.compile(r"Run [0-9a-f]{12} completed in"))).to_be_visible()
    expect(page.get_by_text("Misclassified digits")).to_be_visible(timeout=PAGE_LOAD_TIMEOUT_MS)
    expect(page.get_by_role("button", name="Save under this name")).to_be_visible(
        timeout=PAGE_LOAD_TIMEOUT_MS
    )
    page.set_viewport_size({"width": 1400, "height": 3600})  # the whole page, the galleries included
    screenshot(page, "train-evaluated")


def test_runs_chosen_in_the_table_are_overlaid_then_deleted_once_confirmed_with_their_models(
    streamlit_app, browser_page, screenshot, zoo_home
):
    store, models = open_run_store(), ModelStore()
    executor = open_executor(store)
    kept_run = start(TrainSpec.binary(num_epochs=5), by=LOCAL_USER, executor=executor)  # as the CLI trains
    assert wait(kept_run, RUN_TIMEOUT_S, executor).status == "completed"
    playground_run = start(TrainSpec.binary(num_epochs=5, keep_model=False), by=LOCAL_USER, executor=executor)
    assert wait(playground_run, RUN_TIMEOUT_S, executor).status == "completed"
    kept_model, playground_model = (models.names_by_run()[run_id] for run_id in (kept_run, playground_run))
    assert [entry.name for entry in models.entries()] == [kept_model]  # the Playground's is not kept

    page = browser_page
    page.goto(f"{streamlit_app()}/runs")
    table = page.get_by_test_id("stDataFrame")
    expect(table.locator("canvas").first).to_be_visible(timeout=PAGE_LOAD_TIMEOUT_MS)
    expect(page.get_by_text("Choose one or more runs in the table")).to_be_visible()
    # the row-selection boxes of the first two rows, under the header row (newest first)
    row_boxes = [{"x": ROW_MARKER_X, "y": (row + 0.5) * TABLE_ROW_HEIGHT} for row in (1, 2)]
    table.click(position=row_boxes[0])
    expect(page.locator(".st-key-runs-overlay .js-plotly-plot")).to_be_visible(timeout=PAGE_LOAD_TIMEOUT_MS)
    table.click(position=row_boxes[1])
    traces = page.wait_for_function(TRACE_NAMES, arg="runs-overlay", timeout=PAGE_LOAD_TIMEOUT_MS)
    assert sorted(traces.json_value()) == sorted(f"binary {run_id}" for run_id in (kept_run, playground_run))
    screenshot(page, "runs-overlay")

    # One click deletes nothing: it asks first, and Cancel keeps the runs.
    table.click(position=row_boxes[1])  # only the Playground run stays chosen
    page.get_by_role("button", name="Delete 1 run(s)").click()
    expect(page.get_by_text(f"Delete run(s) {playground_run} with their metrics?")).to_be_visible(
        timeout=PAGE_LOAD_TIMEOUT_MS
    )
    assert {run.id for run in store.list_runs()} == {kept_run, playground_run}
    page.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("button", name="Yes, delete them")).to_have_count(0, timeout=PAGE_LOAD_TIMEOUT_MS)
    assert {run.id for run in store.list_runs()} == {kept_run, playground_run}
    # Confirmed: the run goes, with its Playground model nobody kept (the box for models unticked).
    page.get_by_role("button", name="Delete 1 run(s)").click()
    page.get_by_role("button", name="Yes, delete them").click(timeout=PAGE_LOAD_TIMEOUT_MS)
    expect(page.get_by_text("Choose one or more runs in the table")).to_be_visible(
        timeout=PAGE_LOAD_TIMEOUT_MS
    )
    assert [run.id for run in store.list_runs()] == [kept_run]
    assert playground_model not in [entry.name for entry in models.entries(include_unkept=True)]

    also_models = page.get_by_text("Also delete their saved models from the local zoo")
    for _ in range(3):  # the table is drawn anew after the deletion: a click may land on the old one
        table.click(position=row_boxes[0])
        with contextlib.suppress(AssertionError):
            expect(also_models).to_be_visible(timeout=10_000)
            break
    screenshot(page, "runs-after-delete")
    also_models.click()
    page.get_by_role("button", name="Delete 1 run(s)").click()
    expect(page.get_by_text("and their saved models? This cannot be undone")).to_be_visible(
        timeout=PAGE_LOAD_TIMEOUT_MS
    )
    page.get_by_role("button", name="Yes, delete them").click()
    expect(page.get_by_text("No runs yet")).to_be_visible(timeout=PAGE_LOAD_TIMEOUT_MS)
    assert store.list_runs() == []
    assert [entry.name for entry in models.entries()] == ["mnist-cnn"]  # only the shipped starter is left
