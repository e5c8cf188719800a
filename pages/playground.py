"""Playground: the article's binary classifier on 2-D points, with its decision boundary and
every hidden unit drawn live. Every setting is bound to the URL, so a link reproduces the experiment."""

from dataclasses import replace

import streamlit as st

from zoo.app import ui
from zoo.app.charts import playground
from zoo.app.charts import training as charts
from zoo.core.errors import ZooError
from zoo.core.scores import Scores
from zoo.core.spec import TrainSpec
from zoo.core.vocabulary import ACTIVATIONS, OPTIMIZER_LABELS, OPTIMIZERS, POINT_DATASETS
from zoo.execution.admission import start
from zoo.ml.training import DecisionSurface, LimitBound
from zoo.runs.records import Run

# The article's 2-3-1 sigmoid network and Adam; a learning rate of 0.01 (the article's 0.001
# needs ~10x the epochs) lets the boundary visibly form within the default 100 epochs.
# Its model stays out of the zoo's lists until kept ("Keep this model").
DEFAULTS = TrainSpec.binary(learning_rate=0.01, keep_model=False)
MAX_LAYERS, MAX_UNITS = 4, 8
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
# What each setting may be: the widgets' choices and ranges, and the reasons a link's value is ignored.
CHOICES = {
    "dataset": POINT_DATASETS,
    "activation": ACTIVATIONS,
    "optimizer": OPTIMIZERS,
    "learning_rate": LEARNING_RATES,
    "batch_size": BATCH_SIZES,
}
RANGES = {
    "noise": (0.0, 1.0),
    "num_samples": (50, 2000),
    "test_fraction": (0.1, 0.9),
    "seed": (0, 99_999),
    "hidden_layers": (1, MAX_LAYERS),
    **{f"units_{layer}": (1, MAX_UNITS) for layer in range(1, MAX_LAYERS + 1)},
    "num_epochs": (1, 1000),
}
LABELS = {"optimizer": OPTIMIZER_LABELS}  # choices shown (and written in the URL) by these names
BOUND = {"bind": "query-params"}
NOTICE_KEY = "playground.notice"  # what Start or Reset did to someone else's run, said after the rerun
STARTED_KEY = "playground.started"  # Start's callback started the run: "", or why it could not
IGNORED_KEY = "playground.ignored_link_values"
LINK_READ_KEY = "playground.link_read"  # the session's first run of the page has read its link
# Right after Start, the plane waits this long at most for the run's first surface, so that the
# click's own rerun shows the first boundary (a warm worker's comes ~0.1-0.2 s after the run is
# created); the next refresh would come only after the browser has drawn the whole page again.
FIRST_SURFACE_SECONDS = 1.0
AWAITED_KEY = "playground.first_surface"  # the run Start just started here, whose first surface is awaited


def restore_defaults() -> None:
    st.session_state.update(SETTING_DEFAULTS)
    # A number field has no bounds of its own (number_setting) to start it within the host's limits.
    epochs = ui.limit_bound(lambda value: replace(DEFAULTS, num_epochs=value), *RANGES["num_epochs"])
    st.session_state["num_epochs"] = min(DEFAULTS.num_epochs, epochs.maximum)
    st.session_state.pop(IGNORED_KEY, None)


def settings() -> tuple[TrainSpec | None, list[str], dict[str, tuple]]:
    """The data, network and training settings (bound to the URL) as a spec, what is wrong with them
    (each also said with ``st.error`` under its field; no spec when something is), and what each
    field allowed: its choices, or its lowest and highest value. A field that feeds a limit of the
    host stops at it, the settings above it as chosen (``ui.limit_bound``), and says so."""
    problems: list[str] = []
    allowed: dict[str, tuple] = {**CHOICES, **RANGES}
    data_tab, network_tab, training_tab = st.tabs(["Data", "Network", "Training"])
    with data_tab:
        dataset = st.selectbox("Dataset", CHOICES["dataset"], key="dataset", **BOUND)
        noise = st.slider("Noise", *RANGES["noise"], DEFAULTS.noise, 0.05, key="noise", **BOUND)
        points = ui.limit_bound(lambda value: replace(DEFAULTS, num_samples=value), *RANGES["num_samples"])
        allowed["num_samples"] = (RANGES["num_samples"][0], points.maximum)
        num_samples = st.slider(
            "Number of points",
            *allowed["num_samples"],
            min(DEFAULTS.num_samples, points.maximum),
            50,
            key="num_samples",
            help=points.note,
            **BOUND,
        )
        test_fraction = st.slider(
            "Share of points held out for testing",
            *RANGES["test_fraction"],
            DEFAULTS.test_fraction,
            0.05,
            key="test_fraction",
            **BOUND,
        )
        seed = number_setting("Seed", "seed", problems, allowed)
    with network_tab:
        hidden_layers = number_setting("Hidden layers", "hidden_layers", problems, allowed)
        unit_columns = st.columns(2)
        chosen = replace(DEFAULTS, num_samples=num_samples, hidden_units=())
        for layer in range(1, min(max(hidden_layers or 1, 1), MAX_LAYERS) + 1):
            key = f"units_{layer}"
            units = ui.limit_bound(
                lambda value, chosen=chosen: replace(chosen, hidden_units=(*chosen.hidden_units, value)),
                *RANGES[key],
            )
            value = number_setting(
                f"Units in layer {layer}", key, problems, allowed, unit_columns[(layer - 1) % 2], bound=units
            )
            chosen = replace(chosen, hidden_units=(*chosen.hidden_units, value or RANGES[key][0]))
        activation = st.selectbox("Activation", CHOICES["activation"], key="activation", **BOUND)
    with training_tab:
        optimizer = st.selectbox(
            "Optimizer",
            CHOICES["optimizer"],
            index=OPTIMIZERS.index(DEFAULTS.optimizer),
            format_func=OPTIMIZER_LABELS.get,
            key="optimizer",
            **BOUND,
        )
        learning_rate = st.select_slider(
            "Learning rate", CHOICES["learning_rate"], DEFAULTS.learning_rate, key="learning_rate", **BOUND
        )
        batch = ui.limit_bound(lambda value: replace(chosen, batch_size=value), 1, BATCH_SIZES[-1])
        allowed["batch_size"] = tuple(size for size in BATCH_SIZES if size <= batch.maximum)
        batch_size = st.select_slider(
            "Batch size",
            allowed["batch_size"],
            min(DEFAULTS.batch_size, allowed["batch_size"][-1]),
            key="batch_size",
            help=batch.note,
            **BOUND,
        )
        chosen = replace(chosen, batch_size=batch_size)
        epochs = ui.limit_bound(lambda value: replace(chosen, num_epochs=value), *RANGES["num_epochs"])
        num_epochs = number_setting("Epochs", "num_epochs", problems, allowed, step=10, bound=epochs)
    if problems:
        return None, problems, allowed
    try:
        return (
            TrainSpec.from_dict(
                {
                    **DEFAULTS.to_dict(),
                    "dataset": dataset,
                    "noise": noise,
                    "num_samples": num_samples,
                    "test_fraction": test_fraction,
                    "seed": seed,
                    "hidden_units": chosen.hidden_units,
                    "activation": activation,
                    "optimizer": optimizer,
                    "learning_rate": learning_rate,
                    "batch_size": batch_size,
                    "num_epochs": num_epochs,
                }
            ),
            [],
            allowed,
        )
    except ZooError as error:
        st.error(str(error))
        return None, [str(error)], allowed


def number_setting(
    label: str,
    key: str,
    problems: list[str],
    allowed: dict[str, tuple],
    container=st,
    step: int = 1,
    bound: LimitBound | None = None,
) -> int | None:
    """A whole-number setting within ``RANGES[key]``, or up to ``bound``, where a limit of the host
    stops it (its note next to the field); a value outside is said under the field and added to
    ``problems``. The field has no bounds of its own: Streamlit's would keep a rejected value on
    screen, in red, while the page went on with the last one it accepted."""
    low, high = RANGES[key][0], bound.maximum if bound is not None else RANGES[key][1]
    allowed[key] = (low, high)
    note = bound.note if bound is not None else None
    value = container.number_input(
        label, value=min(SETTING_DEFAULTS[key], high), step=step, key=key, help=note, **BOUND
    )
    if value is None or not low <= value <= high:
        shown = "nothing" if value is None else value
        problem = f"{label}: {shown} is not allowed; choose {low} to {high}." + (f" {note}" if note else "")
        container.error(problem)
        problems.append(problem)
        return None
    return value


def link_values() -> dict[str, str]:
    """The settings this page's link names, as written there (read before the widgets take them)."""
    return {key: st.query_params[key] for key in SETTING_DEFAULTS if key in st.query_params}


def say_ignored_link_values(given: dict[str, str], allowed: dict[str, tuple]) -> None:
    """Say which of the link's settings the page could not take, and why (Streamlit drops them from
    the URL without a word); the note stays until Start, Reset or Default settings."""
    if not st.session_state.get(LINK_READ_KEY):  # later runs' URLs are the widgets' own
        st.session_state[LINK_READ_KEY] = True
        ignored = [
            f"{key}={value!r} ({reason_ignored(key, allowed[key])})"
            for key, value in given.items()
            if key in st.session_state and not taken(key, value, st.session_state[key])
        ]
    else:
        ignored = []
    if ignored:
        st.session_state[IGNORED_KEY] = (
            f"The link's {', '.join(ignored)} could not be used; those settings are at their defaults."
        )
    if IGNORED_KEY in st.session_state:
        st.warning(st.session_state[IGNORED_KEY], icon=":material/link_off:")


def taken(key: str, written: str, value) -> bool:
    """Whether the widget of ``key`` holds what the link wrote for it."""
    shown = LABELS.get(key, {}).get(value, value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return float(written) == float(value)
        except ValueError:
            return False
    return written == str(shown)


def reason_ignored(key: str, allowed: tuple) -> str:
    if key in CHOICES:
        names = [str(LABELS.get(key, {}).get(choice, choice)) for choice in allowed]
        return "choose one of " + ", ".join(names)
    low, high = allowed
    return f"choose a number from {low} to {high}"


def settings_of_run(spec: TrainSpec) -> tuple[dict, list[str]]:
    """The page's settings that reproduce ``spec``, and the ones its widgets cannot show (a run started
    from the command line may use a learning rate or batch size the sliders do not offer)."""
    values = {
        "dataset": spec.dataset,
        "noise": spec.noise,
        "num_samples": spec.num_samples,
        "test_fraction": spec.test_fraction,
        "seed": spec.seed,
        "hidden_layers": len(spec.hidden_units),
        **{f"units_{layer}": units for layer, units in enumerate(spec.hidden_units, start=1)},
        "activation": spec.activation,
        "optimizer": spec.optimizer,
        "learning_rate": spec.learning_rate,
        "batch_size": spec.batch_size,
        "num_epochs": spec.num_epochs,
    }
    not_offered = [
        f"{key.replace('_', ' ')} {values.pop(key)}"
        for key in list(values)
        if key in CHOICES and values[key] not in CHOICES[key]
    ]
    return values, not_offered


def load_run_settings(spec: TrainSpec) -> None:
    values, not_offered = settings_of_run(spec)
    st.session_state.update(values)
    st.session_state.pop(IGNORED_KEY, None)
    if not_offered:
        st.session_state[NOTICE_KEY] = (
            f"The page does not offer the run's {', '.join(not_offered)}: those settings stay as they were."
        )


def followed_run_note(run: Run | None, spec: TrainSpec | None, user) -> None:
    """Whose run the page follows and its settings, with a button that loads them into the page."""
    if NOTICE_KEY in st.session_state:
        st.info(st.session_state.pop(NOTICE_KEY), icon=":material/info:")
    if run is None:
        return
    if run.owner != user.name:
        st.info(
            f"**{run.owner}'s run {run.id}** ({run.status}), trained with: {run.spec.describe()}. "
            f"**Start training** starts a run of your own with the settings below; {run.owner}'s "
            + ("goes on training." if run.is_active else "stays as it is."),
            icon=":material/person:",
        )
    if spec is None or not spec.trains_like(run.spec):
        st.button(
            "Load this run's settings",
            icon=":material/download:",
            on_click=load_run_settings,
            args=(run.spec,),
            help=f"Its settings: {run.spec.describe()}.",
        )


def start_run(spec: TrainSpec, run: Run | None, user) -> str:
    """Start a run of ``spec`` and follow it, stopping the followed ``run`` first when it is the
    person's own (someone else's goes on, and the page says so); returns why it could not start, or ""."""
    own_live_run = run is not None and run.is_active and run.owner == user.name
    if own_live_run:
        ui.stop_run(run)
    try:
        new_run = start(spec, by=user, executor=ui.executor())
    except ZooError as error:
        return str(error)
    if run is not None and run.is_active and not own_live_run:
        st.session_state[NOTICE_KEY] = (
            f"Started run {new_run} of your own. {run.owner}'s run {run.id} goes on training: "
            f"only {run.owner} or an admin can stop it."
        )
    st.session_state.pop(IGNORED_KEY, None)
    st.session_state[AWAITED_KEY] = new_run
    ui.follow_run(new_run)
    return ""


def start_clicked(spec: TrainSpec | None, run: Run | None, user) -> None:
    """Start's callback: Streamlit runs it before the page's script, so the run started here is in
    the one rerun the click makes, in the sidebar (drawn before this page) too; started by the script,
    it needed a second full rerun on the way to the first boundary. Settings changed in the same
    interaction as the click (a number typed, then Start at once) are not in ``spec`` yet: the script
    starts that run, with them."""
    shown = st.session_state
    if spec is not None and all(shown.get(key) == value for key, value in settings_of_run(spec)[0].items()):
        st.session_state[STARTED_KEY] = start_run(spec, run, user)


def run_buttons(spec: TrainSpec | None, problems: list[str], run: Run | None, user) -> Run | None:
    """Start, Reset and Default settings; returns the run the page follows after them. Start and
    Reset stop the followed run only when it is the person's own; someone else's goes on."""
    own_live_run = run is not None and run.is_active and run.owner == user.name
    if st.button(
        "Start training",
        type="primary",
        icon=":material/play_arrow:",
        width="stretch",
        on_click=start_clicked,
        args=(spec, run, user),
    ):
        problem = st.session_state.pop(STARTED_KEY, None)
        if problem is None:  # not started by the callback
            if spec is None:
                st.error("Not started: " + " ".join(problems))
                return run
            problem = start_run(spec, run, user)
            if not problem:
                st.rerun()  # the sidebar, drawn before this page, shows the new live run too
        if problem:
            st.error(problem)
    reset_column, defaults_column = st.columns(2)
    if reset_column.button(
        "Reset",
        icon=":material/restart_alt:",
        width="stretch",
        help="Stop your run and clear the plane (someone else's run goes on).",
    ):
        if own_live_run:
            ui.stop_run(run)
        elif run is not None and run.is_active:
            st.session_state[NOTICE_KEY] = (
                f"You left {run.owner}'s run {run.id}; it goes on training (only {run.owner} or an admin "
                "can stop it)."
            )
        st.session_state.pop(IGNORED_KEY, None)
        ui.follow_run(None)
        st.rerun()
    defaults_column.button("Default settings", width="stretch", on_click=restore_defaults)
    return run


def show_training(run: Run | None, spec: TrainSpec | None) -> None:
    """The plane, the loss curves and the hidden units of the followed run (or the bare data of
    ``spec``), on ``charts.playground``'s canvases: redrawn live while the run trains, the plane every
    ``ui.BOUNDARY_REFRESH_SECONDS`` and the curves and unit maps every ``ui.UNIT_MAPS_REFRESH_SECONDS``."""

    def followed() -> Run | None:
        return ui.run_store().get(run.id) if run is not None else None

    def latest_surface(current: Run) -> DecisionSurface | None:
        """The run's newest surface; in the rerun right after Start, its first one, waited for up to
        ``FIRST_SURFACE_SECONDS``."""
        awaited = st.session_state.pop(AWAITED_KEY, None) == current.id
        return ui.surface(current.id, wait_seconds=FIRST_SURFACE_SECONDS if awaited else 0.0)

    def plane(live: bool) -> bool:
        current = followed()
        shown_spec = current.spec if current is not None else spec
        if shown_spec is None:
            st.info("The plane shows the points once the settings are fixed.")
            return False
        if current is not None and current.is_active:
            if ui.may_manage_owner(current.owner):
                # In the fragment: a click reruns only the fragment, not the whole page.
                ui.stop_button(current, key="playground.stop")
            ui.show_progress(current, "points", pace=True)
        surface = latest_surface(current) if current is not None else None
        data = ui.points(shown_spec)
        plane = playground.plane_data(surface, data.x_train, data.y_train, data.x_test, data.y_test)
        ui.playground_canvas(plane, key="boundary")
        if current is None:
            st.info(
                "Press **Start training** to watch the boundary form. The points are the data it will learn."
            )
            return False
        return current.is_active

    def curves(live: bool) -> bool:
        current = followed()
        if current is None:
            return False
        ui.playground_canvas(playground.loss_data(ui.metrics_frame(current.id)), key="loss")
        surface = ui.surface(current.id)
        if surface is not None:
            ui.playground_canvas(playground.unit_maps_data(surface), key="hidden_units")
            st.caption("What each hidden unit computes: its activation at every point of the plane.")
        return current.is_active

    live = run is not None and run.is_active
    ui.live_fragment(plane, live=live, key="playground-live", every=ui.BOUNDARY_REFRESH_SECONDS)()
    ui.live_fragment(curves, live=live, key="playground-curves", every=ui.UNIT_MAPS_REFRESH_SECONDS)()


def show_scores(scores: Scores) -> None:
    positive = scores.of_class(1)
    columns = st.columns(5)
    for column, (label, value) in zip(
        columns,
        [
            ("Accuracy", scores.accuracy),
            ("Precision", positive.precision if positive is not None else None),
            ("Recall", positive.recall if positive is not None else None),
            ("F1", positive.f1 if positive is not None else None),
            ("AUC", scores.auc),
        ],
        strict=True,
    ):
        column.metric(label, ui.format_score(value))
    st.caption("On the test points; precision, recall and F1 of class 1.")


def show_saved_model(model_name: str, scores: Scores | None) -> None:
    """The ROC curve and confusion matrix of the run's saved model, and keeping it in the local zoo."""
    roc_column, matrix_column = st.columns(2)
    with roc_column, st.spinner("Scoring the test points (loads TensorFlow the first time)…"):
        try:
            evaluation, _ = ui.saved_model_evaluation(model_name)
        except ZooError as error:
            st.error(f"The ROC curve cannot be drawn: {error}")
            evaluation = None
        if evaluation is not None and evaluation.roc is not None and evaluation.auc is not None:
            roc = evaluation.roc
            st.plotly_chart(
                charts.roc_figure(roc.false_positive_rate, roc.true_positive_rate, evaluation.auc), key="roc"
            )
    if scores is not None and scores.confusion_matrix:
        matrix_column.plotly_chart(
            charts.confusion_matrix_figure(scores.confusion_matrix, [0, 1]), key="confusion"
        )
    ui.keep_model_form(model_name, key="playground-keep-model")


def show_outcome(run: Run, spec: TrainSpec | None) -> None:
    """How the ended run did on the test points."""
    if spec is None or not spec.trains_like(run.spec):
        st.caption("The settings above differ from this run's; press **Start training** to train with them.")
    ui.show_run_outcome(run)
    if run.final_metrics is not None:
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
    given = link_values()
    run = ui.followed_run("binary")
    # The plane beside the settings, not under them, and the buttons above them: in sight on a
    # laptop's screen (1366x900).
    settings_column, plane_column = st.columns([2, 3])
    with settings_column:
        buttons_area, notes_area = st.container(), st.container()
        spec, problems, allowed = settings()
        with notes_area:
            say_ignored_link_values(given, allowed)
        with buttons_area:
            run = run_buttons(spec, problems, run, user)
        with notes_area:
            followed_run_note(run, spec, user)
    with plane_column:
        show_training(run, spec)
    if run is not None and not run.is_active:
        show_outcome(ui.run_store().get(run.id), spec)


playground_page()
