"""Playground: the article's binary classifier on 2-D points, with its decision boundary and
every hidden unit drawn live. Every setting is bound to the URL, so a link reproduces the experiment."""

from dataclasses import replace

import streamlit as st

from zoo import jobs, ui
from zoo.charts import training as charts
from zoo.errors import ZooError
from zoo.runs import Run
from zoo.training import TrainSpec
from zoo.vocabulary import ACTIVATIONS, OPTIMIZER_LABELS, OPTIMIZERS, POINT_DATASETS

# The article's 2-3-1 sigmoid network and Adam; a learning rate of 0.01 (the article's 0.001
# needs ~10x the epochs) lets the boundary visibly form in a run of 10-20 s on a laptop CPU.
DEFAULTS = TrainSpec.binary(learning_rate=0.01)
MAX_LAYERS, MAX_UNITS = 4, 8
MAX_EPOCHS = 1000  # beyond a host's limit on epochs, when it has a lower one
LEARNING_RATES = (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
SETTING_DEFAULTS = {
    "dataset": DEFAULTS.dataset,
    "noise": DEFAULTS.noise,
    "num_samples": DEFAULTS.num_samples,
    "test_fraction": DEFAULTS.test_fraction,
    "seed": DEFAULTS.seed,
    "hidden_layers": len(DEFAULTS.hidden_units),
    **{f"units_{layer}": DEFAULTS.hidden_units[0] for layer in range(1, MAX_LAYERS + 1)},
    "activation": DEFAULTS.activation,
    "optimizer": DEFAULTS.optimizer,
    "learning_rate": DEFAULTS.learning_rate,
    "batch_size": DEFAULTS.batch_size,
    "num_epochs": DEFAULTS.num_epochs,
}
BOUND = {"bind": "query-params"}


def restore_defaults() -> None:
    st.session_state.update(SETTING_DEFAULTS)


def settings() -> TrainSpec | None:
    """The data, network and training settings (bound to the URL) as a spec; None, said with
    ``st.error``, when they do not make one. A field that feeds a limit of the host stops at it, the
    settings above it as chosen (``ui.limit_bound``), and says so."""
    data_column, network_column, training_column = st.columns(3)
    with data_column.container(border=True):
        st.markdown("**Data**")
        dataset = st.selectbox("Dataset", POINT_DATASETS, key="dataset", **BOUND)
        noise = st.slider("Noise", 0.0, 1.0, DEFAULTS.noise, 0.05, key="noise", **BOUND)
        points = ui.limit_bound(lambda value: replace(DEFAULTS, num_samples=value), 50, 2000)
        num_samples = st.slider(
            "Number of points",
            50,
            points.maximum,
            min(DEFAULTS.num_samples, points.maximum),
            50,
            key="num_samples",
            help=points.note,
            **BOUND,
        )
        test_fraction = st.slider(
            "Share of points held out for testing",
            0.1,
            0.9,
            DEFAULTS.test_fraction,
            0.05,
            key="test_fraction",
            **BOUND,
        )
        seed = st.number_input("Seed", 0, 99_999, DEFAULTS.seed, key="seed", **BOUND)
    with network_column.container(border=True):
        st.markdown("**Network**")
        hidden_layers = st.number_input("Hidden layers", 1, MAX_LAYERS, 1, key="hidden_layers", **BOUND)
        unit_columns = st.columns(2)
        chosen = replace(DEFAULTS, num_samples=num_samples, hidden_units=())
        for layer in range(1, hidden_layers + 1):
            units = ui.limit_bound(
                lambda value, chosen=chosen: replace(chosen, hidden_units=(*chosen.hidden_units, value)),
                1,
                MAX_UNITS,
            )
            value = unit_columns[(layer - 1) % 2].number_input(
                f"Units in layer {layer}",
                1,
                units.maximum,
                min(DEFAULTS.hidden_units[0], units.maximum),
                key=f"units_{layer}",
                help=units.note,
                **BOUND,
            )
            chosen = replace(chosen, hidden_units=(*chosen.hidden_units, value))
        hidden_units = chosen.hidden_units
        activation = st.selectbox("Activation", ACTIVATIONS, key="activation", **BOUND)
    with training_column.container(border=True):
        st.markdown("**Training**")
        optimizer = st.selectbox(
            "Optimizer",
            OPTIMIZERS,
            index=OPTIMIZERS.index(DEFAULTS.optimizer),
            format_func=OPTIMIZER_LABELS.get,
            key="optimizer",
            **BOUND,
        )
        learning_rate = st.select_slider(
            "Learning rate", LEARNING_RATES, DEFAULTS.learning_rate, key="learning_rate", **BOUND
        )
        batch = ui.limit_bound(lambda value: replace(chosen, batch_size=value), 1, BATCH_SIZES[-1])
        batch_sizes = [size for size in BATCH_SIZES if size <= batch.maximum]
        batch_size = st.select_slider(
            "Batch size",
            batch_sizes,
            min(DEFAULTS.batch_size, batch_sizes[-1]),
            key="batch_size",
            help=batch.note,
            **BOUND,
        )
        chosen = replace(chosen, batch_size=batch_size)
        epochs = ui.limit_bound(lambda value: replace(chosen, num_epochs=value), 1, MAX_EPOCHS)
        num_epochs = st.number_input(
            "Epochs",
            1,
            epochs.maximum,
            min(DEFAULTS.num_epochs, epochs.maximum),
            10,
            key="num_epochs",
            help=epochs.note,
            **BOUND,
        )
    try:
        return TrainSpec.binary(
            dataset=dataset,
            noise=noise,
            num_samples=num_samples,
            test_fraction=test_fraction,
            seed=seed,
            hidden_units=hidden_units,
            activation=activation,
            optimizer=optimizer,
            learning_rate=learning_rate,
            batch_size=batch_size,
            num_epochs=num_epochs,
        )
    except ZooError as error:
        st.error(str(error))
        return None


def run_buttons(spec: TrainSpec, run: Run | None, user) -> Run | None:
    """Start, Stop, Reset and Default settings; returns the run the page follows after them."""
    mine = run is not None and ui.may_manage_owner(run.owner)
    start_column, reset_column, defaults_column = st.columns(3)
    if start_column.button("Start training", type="primary", icon=":material/play_arrow:", width="stretch"):
        if mine and run.is_active:
            ui.stop_run(run)
        try:
            ui.follow_run(jobs.submit(spec, ui.run_store(), by=user))
            st.rerun()  # the sidebar, drawn before this page, shows the new live run too
        except ZooError as error:
            st.error(str(error))
    live = run is not None and run.is_active
    if reset_column.button(
        "Reset", icon=":material/restart_alt:", width="stretch", help="Stop the run and clear the plane."
    ):
        if live and mine:
            ui.stop_run(run)
        ui.follow_run(None)
        run = None
    defaults_column.button("Default settings", width="stretch", on_click=restore_defaults)
    return run


def show_training(run: Run | None, spec: TrainSpec) -> None:
    """The plane, the loss curves and the hidden units of the followed run (or the bare data of
    ``spec``): redrawn live while the run trains."""

    def render(live: bool) -> bool:
        current = ui.run_store().get(run.id) if run is not None else None
        shown_spec = current.spec if current is not None else spec
        data = ui.points(shown_spec)
        surface = ui.run_store().surface(current.id) if current is not None else None
        if current is not None and current.is_active:
            if ui.may_manage_owner(current.owner):
                # In the fragment: a click reruns only the fragment, not the whole page.
                ui.stop_button(current, key="playground.stop")
            ui.show_progress(current, "points")
        plane_column, curves_column = st.columns([3, 2])
        plane_column.plotly_chart(
            charts.decision_boundary(surface, data.x_train, data.y_train, data.x_test, data.y_test),
            key="boundary",
        )
        with curves_column:
            if current is None:
                st.info(
                    "Press **Start training** to watch the boundary form. The points are the data it will "
                    "learn."
                )
                return False
            st.plotly_chart(charts.loss_curves(ui.metrics_frame(current.id)), key="loss")
            if surface is not None:
                st.plotly_chart(charts.hidden_unit_maps(surface), key="hidden_units")
                st.caption("What each hidden unit computes: its activation at every point of the plane.")
        return current.is_active

    ui.live_fragment(render, live=run is not None and run.is_active, key="playground-live")()


def show_scores(metrics: dict) -> None:
    positive = metrics["per_class"]["1"]
    columns = st.columns(5)
    for column, (label, value) in zip(
        columns,
        [
            ("Accuracy", metrics["accuracy"]),
            ("Precision", positive["precision"]),
            ("Recall", positive["recall"]),
            ("F1", positive["f1"]),
            ("AUC", metrics.get("auc")),
        ],
        strict=True,
    ):
        column.metric(label, "–" if value is None else f"{value:.3f}")
    st.caption("On the test points; precision, recall and F1 of class 1.")


def show_saved_model(model_name: str, metrics: dict) -> None:
    """The ROC curve and confusion matrix of the run's saved model, and its name in the local zoo."""
    roc_column, matrix_column = st.columns(2)
    with roc_column, st.spinner("Scoring the test points (loads TensorFlow the first time)…"):
        try:
            evaluation, _ = ui.saved_model_evaluation(model_name)
        except ZooError as error:
            st.error(f"The ROC curve cannot be drawn: {error}")
            evaluation = None
        if evaluation is not None and evaluation.roc is not None:
            st.plotly_chart(
                charts.roc_figure(evaluation.roc["fpr"], evaluation.roc["tpr"], evaluation.auc), key="roc"
            )
    matrix_column.plotly_chart(
        charts.confusion_matrix_figure(metrics["confusion_matrix"], [0, 1]), key="confusion"
    )
    ui.keep_model_form(model_name, key="playground-keep-model")


def show_outcome(run: Run, spec: TrainSpec) -> None:
    """How the ended run did on the test points."""
    if run.spec != spec.resolved():  # the run records its backend made concrete
        st.caption("The settings above differ from this run's; press **Start training** to train with them.")
    ui.show_run_outcome(run)
    if run.final_metrics:
        show_scores(run.final_metrics)
    model_name = ui.model_of_run(run)
    if model_name:
        show_saved_model(model_name, run.final_metrics)


def playground_page() -> None:
    """Choose data, network and training; train and watch the boundary form; then the test scores."""
    ui.run_through_app()
    user = ui.require_sign_in("train a model")
    ui.keep_workers_warm()
    st.title("Playground: a binary classifier")
    st.caption(
        "Like TensorFlow Playground, on the article's own Keras network: two inputs, a hidden layer of "
        "three sigmoid units, one sigmoid output. Change anything; the URL keeps your settings."
    )
    spec = settings()
    if spec is None:
        return
    run = run_buttons(spec, ui.followed_run("binary"), user)
    show_training(run, spec)
    if run is not None and not run.is_active:
        show_outcome(ui.run_store().get(run.id), spec)


playground_page()
