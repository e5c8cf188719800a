"""Runs: every run in one table; overlay the curves of the chosen runs, delete runs, download CSVs."""

import streamlit as st

from zoo.app import ui
from zoo.app.charts import training as charts
from zoo.core.errors import ZooError
from zoo.runs.records import Run

CONFIRM_KEY = "runs.delete-to-confirm"  # the run ids whose deletion waits for a confirmation


def show_no_runs() -> None:
    st.info("No runs yet. Train the MNIST CNN on **Train**, or a binary classifier on **Playground**.")
    left, right = st.columns(2)
    left.page_link("pages/train.py", label="Train the CNN", icon=":material/model_training:")
    right.page_link("pages/playground.py", label="Open the Playground", icon=":material/tune:")


def runs_table(runs: list[Run]) -> list[Run]:
    """The table of every run, with its CSV download; returns the runs chosen in it."""
    table = charts.runs_table(runs, ui.model_store().names_by_run())
    st.caption("Choose rows (the boxes on the left) to compare their curves, download or delete them.")
    selection = st.dataframe(
        table,
        hide_index=True,
        key="runs.table",
        on_select="rerun",
        selection_mode="multi-row",
        column_config={
            "test accuracy": st.column_config.NumberColumn(format="percent"),
            "macro F1": st.column_config.NumberColumn(format="%.3f"),
            "AUC": st.column_config.NumberColumn(format="%.3f"),
            "started": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
        },
    )
    st.download_button(
        "Download this table (CSV)", table.to_csv(index=False), file_name="zoo-runs.csv", mime="text/csv"
    )
    return [runs[row] for row in selection.selection.rows]


def compare_curves(chosen: list[Run]) -> None:
    """One metric of the chosen runs, overlaid."""
    frames = {f"{run.kind} {run.id}": ui.metrics_frame(run.id) for run in chosen}
    names = sorted({name for frame in frames.values() for name in frame["name"].unique()})
    if names:
        default = "epoch/val_accuracy" if "epoch/val_accuracy" in names else names[0]
        metric = st.selectbox("Metric to compare", names, index=names.index(default))
        st.plotly_chart(charts.overlay_curves(frames, metric), key="runs.overlay")
    else:
        st.info("The chosen runs have not logged any metric yet.")
    for run in chosen:
        if run.status in ("failed", "diverged"):
            ui.show_run_outcome(run)


def download_metrics(chosen: list[Run]) -> None:
    run_to_download = st.selectbox("Metrics of run", [run.id for run in chosen])
    st.download_button(
        "Download its metrics (CSV)",
        ui.metrics_frame(run_to_download).to_csv(index=False),
        file_name=f"zoo-run-{run_to_download}-metrics.csv",
        mime="text/csv",
    )


def delete_runs(chosen: list[Run], user) -> None:
    """Delete the chosen runs that ``user`` may manage, once confirmed, with the Playground models
    nobody kept and, on request, their other saved models."""
    deletable = [run for run in chosen if ui.may_manage_owner(run.owner)]
    if len(deletable) < len(chosen):
        others = len(chosen) - len(deletable)
        st.caption(f"{others} of the chosen runs are someone else's: you can look at them, not delete them.")
    also_models = st.checkbox("Also delete their saved models from the local zoo")
    ids = [run.id for run in deletable]
    if st.button(f"Delete {len(deletable)} run(s)", icon=":material/delete:", disabled=not deletable):
        st.session_state[CONFIRM_KEY] = ids
    if st.session_state.get(CONFIRM_KEY) != ids or not ids:
        return
    with st.container(border=True):
        models = " and their saved models" if also_models else ""
        st.warning(
            f"Delete run(s) {', '.join(ids)} with their metrics{models}? This cannot be undone.",
            icon=":material/warning:",
        )
        confirm_column, cancel_column = st.columns(2)
        confirmed = confirm_column.button("Yes, delete them", type="primary", key="runs.confirm-delete")
        if cancel_column.button("Cancel", key="runs.cancel-delete"):
            del st.session_state[CONFIRM_KEY]
            st.rerun()
        if not confirmed:
            return
    del st.session_state[CONFIRM_KEY]
    model_names, errors = ui.model_store().names_by_run(), []
    for run in deletable:
        try:
            ui.run_store().delete(run.id, by=user)
            name = model_names.get(run.id)
            if name and (also_models or not ui.model_store().entry(name).config.kept):
                ui.model_store().delete(name, by=user)  # a Playground model nobody kept goes with its run
        except ZooError as error:
            errors.append(str(error))
    for error in errors:
        st.error(error)
    if not errors:
        del st.session_state["runs.table"]  # the rows it chose are gone
        st.rerun()


def runs_page() -> None:
    """Every run in one table; the chosen ones compared, downloaded or deleted."""
    ui.run_through_app()
    user = ui.require_sign_in("see and manage runs")
    st.title("Runs")
    runs = ui.run_store().list_runs(wait_seconds=ui.PAGE_STORE_WAIT_SECONDS)
    if not runs:
        show_no_runs()
        return
    chosen = runs_table(runs)
    if not chosen:
        st.info("Choose one or more runs in the table to overlay their curves and download their metrics.")
        return
    compare_curves(chosen)
    download_column, delete_column = st.columns(2)
    with download_column:
        download_metrics(chosen)
    with delete_column:
        delete_runs(chosen, user)


runs_page()
