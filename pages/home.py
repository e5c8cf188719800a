"""Home: what the studio does, where to go next, recent runs and the models in the local zoo.

Renders without TensorFlow: it reads the run store and the model directories only.
"""

from pathlib import Path

import streamlit as st

from zoo.app import ui
from zoo.app.health import check_health
from zoo.core.errors import StorageError

PAGE_GUIDE = [
    (
        "playground.py",
        "Playground",
        ":material/tune:",
        "Train the article's 2-3-1 binary classifier on 2-D points and watch "
        "its decision boundary and every hidden unit change as it learns.",
    ),
    (
        "train.py",
        "Train",
        ":material/model_training:",
        "Train the article's MNIST CNN with live loss and accuracy curves, then look "
        "at its confusion matrix and its mistakes.",
    ),
    (
        "runs.py",
        "Runs",
        ":material/table_rows:",
        "Every run, side by side: compare curves, download metrics, clean up.",
    ),
    ("learn.py", "Learn", ":material/functions:", "The formulas behind the networks, as live pictures."),
    ("draw.py", "Draw", ":material/draw:", "Draw a digit and see a trained CNN read it, layer by layer."),
    (
        "hub.py",
        "Hub",
        ":material/cloud_sync:",
        "Share models through the Hugging Face Hub, or pull someone else's.",
    ),
    (
        "admin.py",
        "Admin",
        ":material/admin_panel_settings:",
        "The host at a glance: who is active, everyone's runs, models and best scores, the queue and "
        "the load; stop or delete from there.",
    ),
]
PAGES_DIRECTORY = Path(__file__).parent


def page_guide(user) -> None:
    """One card per page that exists and is open to ``user``, with what it is for."""
    columns = st.columns(3)
    for index, (file, title, icon, blurb) in enumerate(
        entry
        for entry in PAGE_GUIDE
        if (PAGES_DIRECTORY / entry[0]).is_file() and ui.page_is_open(f"pages/{entry[0]}", user)
    ):
        with columns[index % 3].container(border=True):
            st.page_link(f"pages/{file}", label=title, icon=icon)
            st.caption(blurb)


def health() -> None:
    """The studio's self-checks, open when one fails."""
    checks = check_health(server_cookie_secret=ui.cookie_secret_set())
    with st.expander(
        "Health: all checks ok" if all(check.ok for check in checks) else "Health: something needs attention",
        expanded=not all(check.ok for check in checks),
        icon=":material/health_and_safety:",
    ):
        for check in checks:
            (st.success if check.ok else st.error)(f"**{check.name}**: {check.detail}")
        st.caption("The same checks: `python -m zoo doctor` (exit code 1 when one fails).")


def recent_runs(user) -> None:
    st.subheader("Recent runs")
    try:
        runs = ui.run_store().list_runs(limit=8, wait_seconds=ui.PAGE_STORE_WAIT_SECONDS)
    except StorageError as error:  # the run store cannot be read now: the local zoo's models still show
        st.caption(f"Not listed now: {error}")
        return
    for run in runs:
        scored = f" · test accuracy {run.final_metrics.accuracy:.1%}" if run.final_metrics is not None else ""
        details = f"{run.status}{scored} · {ui.format_duration(run.duration_seconds)}"
        if user.signed_in:
            # The link names the run, its details follow as text: a page link's label is one line, cut
            # short where the column ends (on a phone), while text wraps under it.
            with st.container(horizontal=True, vertical_alignment="center", gap="small"):
                st.page_link(
                    ui.PAGE_OF_KIND[run.kind],
                    label=f"{run.kind} run {run.id}",
                    query_params={ui.RUN_QUERY_KEY: run.id},
                )
                st.caption(details, width="content")
        else:
            st.caption(f"{run.kind} run {run.id} · {details}")
    if not runs and not user.signed_in:
        st.info("No runs yet: sign in to start one.")
    elif not runs:
        st.info("No runs yet. Start one on **Playground** (seconds) or **Train** (the MNIST CNN).")
    elif user.signed_in:
        st.page_link("pages/runs.py", label="All runs", icon=":material/table_rows:")


def local_models() -> None:
    st.subheader("Models in the local zoo")
    entries = ui.model_store().entries()
    st.markdown("\n".join(f"- {ui.describe_model(entry)} ({entry.kind})" for entry in entries))
    if not entries:
        st.info(
            "The local zoo is empty. Every finished run saves its model here; "
            "train one, or pull one from the Hub."
        )


def home_page() -> None:
    """What the studio does, where to go next, recent runs and the models in the local zoo."""
    ui.run_through_app()
    st.title("Zoo Studio")
    st.write(
        "See how neural networks learn. Train the two networks of the articles — a convolutional network "
        "that reads handwritten digits and a tiny binary classifier — on this machine, watch them learn "
        "live, measure how good they are, and keep the results in your local zoo."
    )
    user = ui.current_user()
    page_guide(user)
    health()
    runs_column, models_column = st.columns(2)
    with runs_column:
        recent_runs(user)
    with models_column:
        local_models()


home_page()
