"""Admin: a hosted studio at a glance for its admins (a teacher's overview): who is active, everyone's
runs and models, the queue, each person's best models, the host's load and limits; stop and delete."""

import dataclasses
import time

import pandas as pd
import streamlit as st

from zoo.app import ui
from zoo.app.overview import ACTIVE_SECONDS, HostOverview
from zoo.core.errors import ZooError
from zoo.core.hosting import describe_limit
from zoo.runs.records import Run


def ago(moment: float | None, now: float) -> str:
    return "never on a page" if moment is None else f"{ui.format_duration(now - moment)} ago"


def best(entry) -> str:
    return "" if entry is None else f"{entry.name} · {entry.accuracy:.1%}"


def people_section(overview: HostOverview) -> None:
    st.subheader("People")
    st.caption(
        f"Active: a page of theirs ran (opened, clicked, sent) in the last {ACTIVE_SECONDS / 60:.0f} "
        "minutes; Streamlit tells no session whether another is still open. Best models: by test accuracy."
    )
    rows = [
        {
            "person": person.name,
            "active": "yes" if person.active else "no",
            "last seen": ago(person.last_seen, overview.taken_at),
            "admin": "yes" if person.is_admin else "",
            "running": person.running,
            "queued": person.queued,
            "finished": person.finished,
            "models": person.models,
            "best CNN": best(person.best_cnn),
            "best classifier": best(person.best_binary),
        }
        for person in overview.people
    ]
    st.table(pd.DataFrame(rows).style.hide())


def queue_section(overview: HostOverview) -> None:
    """The live runs in order, and a stop for any of them (with the admin's permission)."""
    st.subheader("Queue and live runs")
    if not overview.queue:
        st.info("No run is queued or training.")
        return
    rows = [
        {
            "run": entry.run.id,
            "owner": entry.run.owner,
            "kind": entry.run.kind,
            "status": entry.run.status,
            "runs ahead": "training" if entry.position is None else entry.position,
            "device": entry.run.device,
            "progress": f"{entry.run.progress.fraction_done:.0%}" if entry.run.progress else "",
        }
        for entry in overview.queue
    ]
    st.table(pd.DataFrame(rows).style.hide())
    live = {entry.run.id: entry.run for entry in overview.queue}
    choice_column, stop_column = st.columns([3, 1], vertical_alignment="bottom")
    run_id = choice_column.selectbox("Live run", list(live), format_func=lambda run: describe(live[run]))
    if stop_column.button("Stop this run", icon=":material/stop:", help="It ends after its current batch."):
        ui.stop_run(live[run_id])


def with_times(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with its ``created_at`` seconds as dates and times (to the second)."""
    if "created_at" in table:
        table["created_at"] = pd.to_datetime(table["created_at"], unit="s").dt.floor("s")
    return table


def describe(run: Run) -> str:
    return f"{run.id} · {run.owner}'s {run.kind} run · {run.status}"


def runs_section(overview: HostOverview, user) -> None:
    """Every run, newest first, and a delete for an ended one (with its model, on request)."""
    st.subheader("Every run")
    st.dataframe(
        with_times(pd.DataFrame([run.to_row() for run in overview.runs])),
        hide_index=True,
        key="admin.runs",
        column_config={"test_accuracy": st.column_config.NumberColumn(format="percent")},
    )
    ended = {run.id: run for run in overview.runs if not run.is_active}
    if not ended:
        return
    choice_column, model_column, delete_column = st.columns([3, 2, 1], vertical_alignment="bottom")
    run_id = choice_column.selectbox("Run", list(ended), format_func=lambda run: describe(ended[run]))
    with_model = model_column.checkbox("and its saved model", key="admin.delete_model")
    if delete_column.button("Delete this run", icon=":material/delete:"):
        model_name = ui.model_of_run(ended[run_id])
        try:
            ui.run_store().delete(run_id, by=user)
            if with_model and model_name:
                ui.model_store().delete(model_name, by=user)
        except ZooError as error:
            st.error(str(error))
            return
        st.rerun()


def models_section(overview: HostOverview, user) -> None:
    """Every model of the local zoo, and a delete."""
    st.subheader("Models")
    st.dataframe(
        with_times(pd.DataFrame([entry.to_row() for entry in overview.models])),
        hide_index=True,
        key="admin.models",
        column_config={"accuracy": st.column_config.NumberColumn(format="percent")},
    )
    names = [entry.name for entry in overview.models]
    choice_column, delete_column = st.columns([3, 1], vertical_alignment="bottom")
    name = choice_column.selectbox("Model", names, key="admin.model")
    if name and delete_column.button("Delete this model", icon=":material/delete:"):
        try:
            ui.model_store().delete(name, by=user)
        except ZooError as error:
            st.error(str(error))
            return
        st.rerun()


def host_section(overview: HostOverview) -> None:
    st.subheader("The host")
    load = overview.load
    cpu, memory, workers = st.columns(3)
    cpu.metric(
        f"CPU load (1 min), {load.cpu_count} cores",
        f"{load.load_average[0]:.1f}",
        help="Processes wanting a CPU; 5 and 15 minutes: "
        f"{load.load_average[1]:.1f}, {load.load_average[2]:.1f}.",
    )
    if load.memory_total_mb:
        memory.metric("Memory available", f"{load.memory_available_mb:,} of {load.memory_total_mb:,} MB")
    workers.metric(
        f"Workers ({load.device.upper()})",
        f"{load.training_workers} training, {load.waiting_workers} waiting",
    )
    limits = {
        field.name: getattr(overview.limits, field.name) for field in dataclasses.fields(overview.limits)
    }
    st.markdown(
        "**Limits:** "
        + "; ".join(
            describe_limit(name, value) if value is not None else f"{name}: none"
            for name, value in limits.items()
        )
        + "."
    )


def admin_page() -> None:
    """The overview for an admin; anyone else is told politely that it is not for them."""
    ui.run_through_app()
    user = ui.require_sign_in("see the host's overview")
    st.title("Admin")
    if not user.is_admin:
        st.info(
            "This page is for the host's admins: it shows everyone's runs and models. Your own runs are "
            "on **Runs**; if you teach here, ask the host's operator to list you among the admins."
        )
        return
    overview = ui.host_overview()
    st.caption(f"As of {time.strftime('%H:%M:%S', time.localtime(overview.taken_at))}.")
    people_section(overview)
    queue_section(overview)
    runs_section(overview, user)
    models_section(overview, user)
    host_section(overview)


admin_page()
