"""Zoo Studio: the Streamlit entry point. Page config, shared sidebar, navigation over pages/."""

import streamlit as st

from zoo import ui
from zoo.data import describe_mnist_source
from zoo.errors import DataError, StorageError

st.set_page_config(page_title="Zoo Studio", page_icon="🧠", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/playground.py", title="Playground", icon=":material/tune:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/runs.py", title="Runs", icon=":material/table_rows:"),
    # Learn, Draw and Hub follow here, in that order.
    st.Page("pages/learn.py", title="Learn", icon=":material/functions:"),
    st.Page("pages/draw.py", title="Draw", icon=":material/draw:"),
    st.Page("pages/hub.py", title="Hub", icon=":material/cloud_sync:"),
]


def live_runs_panel(live: bool) -> bool:
    """The live runs (running or queued) with their progress, each linked to the page that follows it."""
    try:
        active = ui.open_run_store().active_runs()
    except StorageError as error:  # the store failed since the page started: say so, keep the page
        st.caption(f"**Runs:** {error}")
        return False
    if not active:
        st.caption("No live run. Start one on Train or Playground.")
    for run in active:
        st.page_link(
            ui.PAGE_OF_KIND[run.kind],
            label=f"Live: {run.kind} run {run.id}",
            icon=":material/progress_activity:",
            query_params={ui.RUN_QUERY_KEY: run.id},
        )
        ui.show_progress(run, "images" if run.kind == "cnn" else "points")
    return bool(active)


navigation = st.navigation(PAGES)
ui.mark_app_session()
try:
    run_store = ui.open_run_store()
    live = bool(run_store.active_runs())  # a store damaged since it was opened is moved aside here
except StorageError as error:  # Learn, Draw and Hub work without it: say so and go on
    run_store, live = None, False
    st.error(f"{error} (Learn, Draw and Hub work without the run store.)", icon=":material/error:")
if run_store is not None and run_store.notice:
    st.warning(run_store.notice, icon=":material/warning:")
with st.sidebar:
    st.caption(f"**Device:** {ui.device_description()} · **Backend:** {ui.backend_name()}")
    try:
        source = describe_mnist_source()
        st.caption(f"**MNIST:** {source.description}.")
    except DataError as error:
        st.caption(f"**MNIST:** {error}")
    if run_store is not None:
        ui.live_fragment(
            live_runs_panel, live=live, key="sidebar-live-runs", every=ui.SIDEBAR_REFRESH_SECONDS
        )()
try:
    navigation.run()
except StorageError as error:  # a page that needs the run store, while it cannot be used
    st.error(str(error), icon=":material/error:")
