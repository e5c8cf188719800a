"""Zoo Studio: the Streamlit entry point. Page config, shared sidebar, navigation over pages/."""

import streamlit as st

from zoo.app import ui
from zoo.core.errors import DataError, SettingsError, StorageError, ZooError
from zoo.ml.backend import quiet_missing_gpu_error
from zoo.ml.data import describe_mnist_source

st.set_page_config(page_title="Zoo Studio", page_icon="🧠", layout="wide")

PAGES = [  # file, title, icon; the first is the default page
    ("pages/home.py", "Home", ":material/home:"),
    ("pages/playground.py", "Playground", ":material/tune:"),
    ("pages/train.py", "Train", ":material/model_training:"),
    ("pages/runs.py", "Runs", ":material/table_rows:"),
    ("pages/learn.py", "Learn", ":material/functions:"),
    ("pages/draw.py", "Draw", ":material/draw:"),
    ("pages/hub.py", "Hub", ":material/cloud_sync:"),
    ("pages/admin.py", "Admin", ":material/admin_panel_settings:"),
]


def live_runs_panel(live: bool) -> bool:
    """This person's live runs (running or queued) with their progress, each linked to the page that
    follows it, and how many runs the host has live in all."""
    user = ui.current_user()
    try:
        everyone = ui.open_run_store().active_runs(wait_seconds=ui.PAGE_STORE_WAIT_SECONDS)
    except StorageError as error:  # the store failed since the page started: say so, keep the page
        st.caption(f"**Runs:** {error}")
        return False
    active = [run for run in everyone if run.owner == user.name] if user.signed_in else []
    if len(everyone) > len(active):
        st.caption(f"{len(everyone)} run(s) queued or training on this host.")
    if not active:
        start = "Start one on Train or Playground" if user.signed_in else "Sign in to start one"
        st.caption(f"No live run of yours. {start}.")
    for run in active:
        st.page_link(
            ui.PAGE_OF_KIND[run.kind],
            label=f"Live: {run.kind} run {run.id}",
            icon=":material/progress_activity:",
            query_params={ui.RUN_QUERY_KEY: run.id},
        )
        ui.show_progress(run, "images" if run.kind == "cnn" else "points")
    return bool(active)


try:
    quiet_missing_gpu_error()  # before any page starts TensorFlow in this process
    ui.log_to_console()
    user = ui.current_user()
except SettingsError as error:  # a ZOO_* variable or a line of config.toml: which, and how to fix it
    st.error(str(error), icon=":material/error:")
    st.stop()
# Every page exists for everyone, so that a shared link opens it; the menu lists those open to this person
# (a visitor's link to Train asks them to sign in there, and brings them back to it afterwards).
pages = [
    st.Page(
        file,
        title=title,
        icon=icon,
        default=index == 0,
        visibility="visible" if ui.page_is_open(file, user) else "hidden",
    )
    for index, (file, title, icon) in enumerate(PAGES)
]
navigation = st.navigation(pages)
ui.mark_app_session()
ui.keep_place_through_sign_in(navigation, pages, user)
try:
    run_store = ui.open_run_store()
    # a store damaged since it was opened is moved aside here
    live = bool(run_store.active_runs(owner=user.name, wait_seconds=ui.PAGE_STORE_WAIT_SECONDS))
    ui.note_visit(run_store, user)
    ui.open_executor()  # and supervision of its runs, on the server's own clock
    store_problem = None
except ZooError as error:  # Learn, Draw and Hub work without it: say so and go on
    run_store, live, store_problem = None, False, str(error)
    st.error(f"{error} (Learn, Draw and Hub work without the run store.)", icon=":material/error:")
notice = run_store.describe().notice if run_store is not None else None
if notice:
    st.warning(notice, icon=":material/warning:")
with st.sidebar:
    if ui.hosting().hosted:
        ui.account_panel(user)
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
    if str(error) != store_problem:  # said once, at the top
        st.error(str(error), icon=":material/error:")
ui.keep_reruns_cheap()
