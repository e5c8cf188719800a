"""Train: the article's MNIST CNN with live curves, then its test accuracy, confusion matrix,
per-class scores and mistakes. The run id lives in the URL, so a reload or a second tab follows it."""

from dataclasses import replace

import numpy as np
import streamlit as st

from zoo.app import ui
from zoo.app.charts import training as charts
from zoo.core.errors import ZooError
from zoo.core.scores import Scores
from zoo.core.spec import TrainSpec
from zoo.core.vocabulary import (
    ACTIVATIONS,
    DEVICES,
    LEARNING_RATE_SCHEDULE_LABELS,
    LEARNING_RATE_SCHEDULES,
    NUM_DIGITS,
    OPTIMIZER_LABELS,
    OPTIMIZERS,
)
from zoo.execution.admission import start
from zoo.ml.data import FULL_MNIST_COUNTS
from zoo.ml.printed import PRINTED_SHARE
from zoo.runs.records import Run

ARTICLE = TrainSpec.cnn()
MAX_EPOCHS = 1000  # beyond a host's limit on epochs, when it has a lower one
GALLERY_SIZE = 24
CELL_KEYS = ("train.true_digit", "train.predicted_digit")


def select_cell() -> None:
    """A click on the confusion matrix chooses the cell whose digits are shown below it."""
    for point in st.session_state["train.confusion"].selection.points:
        if point.get("customdata"):  # the cell markers carry [true, predicted]; the heatmap does not
            st.session_state[CELL_KEYS[0]], st.session_state[CELL_KEYS[1]] = map(int, point["customdata"])
            return


def bounded(value, low, high):
    """``value`` within the widget's range (a run started from the CLI may go beyond it)."""
    return min(max(value, low), high)


def replace_filters(spec: TrainSpec, index: int, filters: int) -> TrainSpec:
    """``spec`` with ``filters`` in its convolution ``index``."""
    conv_filters = list(spec.conv_filters)
    conv_filters[index] = filters
    return replace(spec, conv_filters=tuple(conv_filters))


def show_digits(images: np.ndarray, captions: list[str]) -> None:
    st.image([charts.enlarge_digit(image) for image in images], caption=captions, width=84)


def hyperparameter_form(shown: TrainSpec, user) -> tuple[bool, TrainSpec | None]:
    """The form, filled with ``shown``'s settings: whether it was submitted, and the spec to start.

    Bad settings are said with ``st.error`` and give no spec."""
    sources = ui.mnist_sources()
    source_choice = ui.mnist_source_choice(shown.mnist_source, sources)
    filters_bounds = [
        ui.limit_bound(lambda value, index=index: replace_filters(shown, index, value), 1, 256)
        for index in range(len(shown.conv_filters))
    ]
    units = ui.limit_bound(lambda value: replace(shown, hidden_units=(value,)), 1, 1024)
    batch = ui.limit_bound(lambda value: replace(shown, batch_size=value), 8, 2048)
    epochs = ui.limit_bound(lambda value: replace(shown, num_epochs=value), 1, MAX_EPOCHS)
    images = ui.limit_bound(lambda value: replace(shown, max_train_samples=value), 1, FULL_MNIST_COUNTS.train)
    with st.form("hyperparameters"):
        architecture, optimisation, data_and_device = st.columns(3)
        with architecture:
            st.markdown("**Architecture**")
            filter_columns = st.columns(3)
            conv_filters = tuple(
                filter_columns[index].number_input(
                    f"Conv {index + 1} filters",
                    1,
                    bound.maximum,
                    bounded(filters, 1, bound.maximum),
                    help=bound.note,
                )
                for index, (filters, bound) in enumerate(zip(shown.conv_filters, filters_bounds, strict=True))
            )
            dense_units = st.number_input(
                "Dense units",
                1,
                units.maximum,
                bounded(shown.hidden_units[0], 1, units.maximum),
                help=units.note,
            )
            activation = st.selectbox("Activation", ACTIVATIONS, index=ACTIVATIONS.index(shown.activation))
            seed = st.number_input("Seed", 0, 99_999, bounded(shown.seed, 0, 99_999))
        with optimisation:
            st.markdown("**Optimisation**")
            optimizer = st.selectbox(
                "Optimizer",
                OPTIMIZERS,
                index=OPTIMIZERS.index(shown.optimizer),
                format_func=OPTIMIZER_LABELS.get,
            )
            learning_rate = st.number_input(
                "Learning rate",
                0.00001,
                1.0,
                bounded(shown.learning_rate, 0.00001, 1.0),
                0.0005,
                format="%.5f",
            )
            learning_rate_schedule = st.selectbox(
                "Learning-rate schedule",
                LEARNING_RATE_SCHEDULES,
                index=LEARNING_RATE_SCHEDULES.index(shown.learning_rate_schedule),
                format_func=LEARNING_RATE_SCHEDULE_LABELS.get,
                help="Cosine: big steps first, then smaller and smaller ones that settle the weights.",
            )
            momentum = st.number_input(
                "Momentum μ (the Momentum optimizer only)",
                0.0,
                0.99,
                bounded(shown.momentum, 0.0, 0.99),
                0.05,
            )
            batch_size = st.number_input(
                "Batch size",
                8,
                batch.maximum,
                bounded(shown.batch_size, 8, batch.maximum),
                32,
                help=batch.note,
            )
            num_epochs = st.number_input(
                "Epochs", 1, epochs.maximum, bounded(shown.num_epochs, 1, epochs.maximum), help=epochs.note
            )
            validation_split = st.slider("Validation split", 0.0, 0.5, shown.validation_split, 0.05)
        with data_and_device:
            st.markdown("**Data and device**")
            source = st.radio(
                "MNIST source",
                tuple(sources),
                index=tuple(sources).index(source_choice),
                format_func=sources.get,
            )
            if ui.FILE_SOURCE in sources:
                given = st.text_input(
                    "Path of mnist.npz (for a file source)",
                    value=shown.mnist_source if source_choice == ui.FILE_SOURCE else "",
                    placeholder="/data/mnist.npz",
                )
            else:  # a shared host: no server paths from visitors, an upload instead
                given = st.file_uploader(  # the browser refuses a larger file before it is sent
                    "mnist.npz to upload (for an upload source)",
                    type=["npz"],
                    max_upload_size=ui.hosting().limits.upload_mb,
                )
            max_train_samples = st.number_input(
                "Training images to use (0 = all)",
                0,
                images.maximum,
                bounded(shown.max_train_samples or 0, 0, images.maximum),
                1000,
                help=" ".join(filter(None, ["A few thousand train in seconds.", images.note])),
            )
            device = st.radio(
                "Device",
                DEVICES,
                index=DEVICES.index(shown.device),
                format_func=lambda choice: f"Auto: {ui.device_description()}" if choice == "auto" else "CPU",
            )
            mixed_precision = st.checkbox(
                "Mixed precision (GPU only)",
                shown.mixed_precision,
                help="On a CPU the run uses float32 and says so.",
            )
            augment = st.toggle(
                "Augment the training digits",
                shown.augment,
                help="Each epoch sees the digits freshly rotated (±10°), scaled, shifted, slanted, "
                "thickened, thinned or pixelated, as people draw them; off for the article's recipe.",
            )
            printed = st.toggle(
                "Add printed digits",
                shown.printed,
                help=f"The digits 0-9 typed in this machine's fonts join the training digits (about "
                f"{PRINTED_SHARE:.0%}), "
                "so digits drawn like print (a 1 with a foot, an open 4) are read too.",
            )
            model_name = st.text_input("Model name (optional)", placeholder="mnist-cnn", max_chars=80)
        submitted = st.form_submit_button("Start training", type="primary", icon=":material/play_arrow:")
    if not submitted:
        return False, None
    try:
        mnist_source = ui.chosen_mnist_source(source, given, user)
        return True, TrainSpec.cnn(
            conv_filters=conv_filters,
            hidden_units=(dense_units,),
            activation=activation,
            optimizer=optimizer,
            learning_rate=learning_rate,
            learning_rate_schedule=learning_rate_schedule,
            momentum=momentum,
            batch_size=batch_size,
            num_epochs=num_epochs,
            validation_split=validation_split,
            seed=seed,
            mnist_source=mnist_source,
            max_train_samples=max_train_samples or None,
            device=device,
            mixed_precision=mixed_precision,
            augment=augment,
            printed=printed,
            model_name=model_name.strip() or None,
        )
    except ZooError as error:
        st.error(str(error))
        return True, None


def show_augmentation_examples(shown: TrainSpec) -> None:
    with st.expander("What an augmented run trains on", expanded=shown.augment):
        st.caption(
            "Each row: a training digit as MNIST has it, then five random changes of it like those an "
            "augmented run draws afresh every epoch."
        )
        for row in ui.augmentation_examples(seed=shown.seed):
            show_digits(row, ["as it is"] + ["augmented"] * (len(row) - 1))


def start_run(spec: TrainSpec, user) -> None:
    """Start a run for ``spec`` as ``user`` and follow it (an error is said on the page)."""
    try:
        run_id = start(spec, by=user, executor=ui.executor())
    except ZooError as error:
        st.error(str(error))
        return
    ui.follow_run(run_id)
    for key in CELL_KEYS:
        st.session_state.pop(key, None)
    st.rerun()  # the sidebar, drawn before this page, shows the new live run too


def show_live_run(run: Run) -> None:
    """The followed run's status line, progress bar and curves: redrawn live while it trains."""

    def render(live: bool) -> bool:
        current = ui.run_store().get(run.id)
        st.markdown(
            f"**Run {current.id}** · {current.status} · {current.device.upper()} · "
            f"{current.spec.backend} · "
            f"{current.data_source or 'data loading…'}"
        )
        if current.is_active and ui.may_manage_owner(current.owner):
            # In the fragment: a click reruns only the fragment, not the whole page.
            ui.stop_button(current, key="train.stop")
        if current.is_active or current.progress:
            ui.show_progress(current)
        frame = ui.metrics_frame(current.id)
        st.plotly_chart(charts.batch_curves(frame), key="batch_curves")
        st.plotly_chart(charts.epoch_curves(frame), key="epoch_curves")
        return current.is_active

    ui.live_fragment(render, live=run.is_active, key="train-live")()


def show_test_scores(scores: Scores) -> None:
    """The headline numbers, the confusion matrix (its cells choose the digits shown below) and the
    per-class scores."""
    st.subheader("On the test set")
    misclassified = (
        f"{scores.num_misclassified:,} / {scores.num_examples:,}"
        if scores.num_misclassified is not None and scores.num_examples is not None
        else "–"
    )
    columns = st.columns(5)
    for column, (label, value) in zip(
        columns,
        [
            ("Test accuracy", f"{scores.accuracy:.2%}"),
            ("Macro precision", ui.format_score(scores.macro_precision)),
            ("Macro recall", ui.format_score(scores.macro_recall)),
            ("Macro F1", ui.format_score(scores.macro_f1)),
            ("Misclassified", misclassified),
        ],
        strict=True,
    ):
        column.metric(label, value)
    if not scores.confusion_matrix:
        return  # a record kept without its confusion matrix and per-class scores

    matrix = np.asarray(scores.confusion_matrix)
    if CELL_KEYS[0] not in st.session_state:  # start on the most frequent confusion
        off_diagonal = matrix - np.diag(np.diag(matrix))
        st.session_state[CELL_KEYS[0]], st.session_state[CELL_KEYS[1]] = (
            int(index) for index in np.unravel_index(off_diagonal.argmax(), matrix.shape)
        )
    cell = (st.session_state[CELL_KEYS[0]], st.session_state[CELL_KEYS[1]])
    matrix_column, table_column = st.columns([3, 2])
    matrix_column.plotly_chart(
        charts.confusion_matrix_figure(matrix, range(NUM_DIGITS), selected=cell),
        key="train.confusion",
        on_select=select_cell,
        selection_mode="points",
    )
    with table_column:
        st.markdown("**Per class**")
        st.dataframe(
            charts.per_class_table(scores.per_class),
            hide_index=True,
            column_config={
                name: st.column_config.NumberColumn(format="%.3f") for name in ("precision", "recall", "F1")
            },
        )


def show_test_digits(run: Run, model_name: str) -> None:
    """The test digits of the chosen confusion-matrix cell, then the most confident mistakes."""
    st.subheader("Test digits by cell")
    st.caption("Click a cell of the confusion matrix, or choose one here.")
    true_column, predicted_column = st.columns(2)
    true_digit = true_column.selectbox("True digit", range(NUM_DIGITS), key=CELL_KEYS[0])
    predicted_digit = predicted_column.selectbox("Predicted digit", range(NUM_DIGITS), key=CELL_KEYS[1])
    with st.spinner("Scoring the test digits with the saved model (loads TensorFlow the first time)…"):
        try:
            evaluation, _ = ui.saved_model_evaluation(model_name)
            images, labels = ui.mnist_test_set(run.spec.mnist_source)
        except ZooError as error:
            st.error(f"The test digits cannot be shown: {error}")
            return
    predicted = np.asarray(evaluation.predicted)
    confidence = np.asarray(evaluation.confidence)
    chosen = np.flatnonzero((labels == true_digit) & (predicted == predicted_digit))
    st.write(f"{len(chosen):,} test digits are {true_digit} and were read as {predicted_digit}.")
    if len(chosen):
        shown = chosen[:GALLERY_SIZE]
        show_digits(images[shown], [f"{confidence[index]:.0%}" for index in shown])

    st.subheader("Misclassified digits")
    mistakes = np.asarray(evaluation.misclassified, dtype=int)
    if len(mistakes):
        st.caption(f"The {min(GALLERY_SIZE, len(mistakes))} most confident mistakes of {len(mistakes):,}.")
        shown = mistakes[np.argsort(-confidence[mistakes])][:GALLERY_SIZE]
        show_digits(
            images[shown],
            [f"true {labels[index]} → {predicted[index]} ({confidence[index]:.0%})" for index in shown],
        )
    else:
        st.success("No test digit is misclassified.")


def train_page() -> None:
    """Set the hyperparameters, start a run and follow it live; then its scores and its digits."""
    ui.run_through_app()
    user = ui.require_sign_in("train a model")
    ui.keep_workers_warm()
    st.title("Train the MNIST CNN")
    st.caption(
        "The article's network: three 3x3 convolutions (32, 64, 64 filters) with max-pooling, a dense "
        "layer of 64 and a softmax over the ten digits, trained with Adam. Defaults are the article's."
    )
    run = ui.followed_run("cnn")
    shown = run.spec if run is not None else ARTICLE  # the form shows the followed run's settings
    submitted, spec = hyperparameter_form(shown, user)
    show_augmentation_examples(shown)
    if spec is not None:
        start_run(spec, user)
    if run is None:
        if not submitted:
            st.info(
                "No run yet on this page. Press **Start training**: with the embedded digits and one "
                "epoch it takes a few seconds; the article's 10 epochs on the full MNIST take minutes "
                "on a CPU."
            )
        return
    show_live_run(run)
    if run.is_active:
        return
    ui.show_run_outcome(run)
    if run.final_metrics is None:
        return
    show_test_scores(run.final_metrics)
    model_name = ui.model_of_run(run)
    if model_name is None:
        st.info("This run's model is no longer in the local zoo, so its test digits cannot be shown.")
        return
    show_test_digits(run, model_name)
    ui.keep_model_form(model_name, key="train-keep-model")


train_page()
