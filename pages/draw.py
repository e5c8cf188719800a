"""Draw: a digit on the canvas (or an uploaded image), what the model reads, and a look inside the CNN."""

import functools

import streamlit as st
from streamlit_drawable_canvas import st_canvas

from zoo.app import ui
from zoo.app.charts.draw import (
    feature_maps_figure,
    fine_tuned_digits_table,
    fine_tuning_table,
    probability_bars,
    saliency_figure,
    step_figure,
)
from zoo.app.charts.training import batch_curves, enlarge_digit
from zoo.core.errors import ZooError
from zoo.core.scores import FineTuningReport
from zoo.core.vocabulary import CANVAS_SIDE
from zoo.ml.inference import STEP_TITLES, load_image, preprocess
from zoo.storage.digits import personal_set_name

MODEL_KEY = "draw.model"
QUICK_RUN_KEY = "draw.quick_run"
QUICK_ERROR_KEY = (
    "draw.quick_run_error"  # why the last quick training was refused (a callback cannot show it)
)
QUICK_EPOCHS = 3  # one epoch on 4,000 digits reads drawn digits at ~80%; three do much better
DIGIT_SET_KEY = "draw.digit_set"
MY_DIGIT_KEY = "draw.my_digit"
RELABEL_KEY = "draw.relabel_to"
SHARE_KEY = "draw.share"
FINE_TUNE_EPOCHS = 2
FINE_TUNE_MNIST_DIGITS = 10_000  # MNIST digits mixed with mine: enough not to forget, quick on a CPU
UPLOAD_TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "webp"]
TAUGHT_KEY = "draw.taught"  # what the last click on a digit button did, shown once the page reruns
CANVAS_KEY = "draw.canvas"  # with the canvas's generation: Clear draws a new, blank canvas under a new key
CANVAS_GENERATION_KEY = "draw.canvas_generation"
BRUSH_KEY = "draw.brush"
DEFAULT_BRUSH = 20
CANVAS_TOOLBAR_HEIGHT = 24  # px the canvas's toolbar rises above it, beyond the gap between elements
# The digit buttons, in two rows of five that wrap in a narrow column: each wide enough for its digit
# and for a finger (Streamlit's columns made them 26 px wide on a 1280 px laptop, their digits cut).
TEACH_BUTTON_WIDTH = 48
INSIDE_KEY = "draw.inside"  # the "Inside the CNN" expander: drawn only while it is open


def start_quick_training() -> None:
    from zoo.core.spec import TrainSpec
    from zoo.execution.admission import start

    try:
        spec = TrainSpec.cnn(mnist_source="embedded", num_epochs=QUICK_EPOCHS)
        ui.follow_run(start(spec, by=ui.current_user(), executor=ui.open_executor()))
    except ZooError as error:
        st.session_state[QUICK_ERROR_KEY] = str(error)


def use_model(name: str) -> None:
    st.session_state[MODEL_KEY] = name
    ui.follow_run(None)


def start_fine_tuning(base_model: str, set_name: str) -> None:
    """Fine-tune the chosen CNN on the set in the background and follow the run (see TrainSpec)."""
    from zoo.core.spec import TrainSpec
    from zoo.execution.admission import start

    spec = TrainSpec.cnn(
        base_model=base_model,
        digits_set=set_name,
        num_epochs=FINE_TUNE_EPOCHS,
        max_train_samples=FINE_TUNE_MNIST_DIGITS,
        model_name=f"{base_model}-{set_name}"[:80],
    )
    ui.follow_run(start(spec, by=ui.current_user(), executor=ui.open_executor()))


def add_to_my_digits(pixels, digit, label: int) -> None:
    """Keep the drawing in my digits; the whole page then reruns (see ``drawing_and_reading``)."""
    set_name = st.session_state.get(DIGIT_SET_KEY) or personal_set_name(ui.current_user())
    try:
        ui.digit_store().add(set_name, label, pixels, digit, by=ui.current_user())
        st.session_state[TAUGHT_KEY] = f"Added to {set_name} as a {label}."
    except ZooError as error:
        st.session_state[TAUGHT_KEY] = str(error)


def relabel_digit(set_name: str, digit_ids: list[str]) -> None:
    """Relabel the digit chosen in the gallery's form (read at the click, so no choice is stale)."""
    chosen, label = st.session_state[MY_DIGIT_KEY], st.session_state[RELABEL_KEY]
    try:
        ui.digit_store().relabel(set_name, digit_ids[chosen], label, by=ui.current_user())
    except ZooError as error:
        st.toast(str(error))


def delete_digit(set_name: str, digit_ids: list[str]) -> None:
    try:
        ui.digit_store().delete(set_name, digit_ids[st.session_state[MY_DIGIT_KEY]], by=ui.current_user())
    except ZooError as error:
        st.toast(str(error))
    st.session_state[MY_DIGIT_KEY] = 0


def clear_canvas() -> None:
    """Empty the canvas and the reading: the canvas is drawn anew under the next key, blank."""
    st.session_state[CANVAS_GENERATION_KEY] = st.session_state.get(CANVAS_GENERATION_KEY, 0) + 1


def teach_buttons(pixels, digit, predicted: int) -> None:
    """One click says which digit was really drawn and keeps the drawing in my digits."""
    if not ui.current_user().signed_in:
        st.caption("Sign in to keep the digits this model misreads and fine-tune it on them.")
        return
    st.markdown(f"**Not a {predicted}?** Click the digit you drew: it is kept in *my digits*.")
    for first in (0, 5):
        with st.container(horizontal=True, gap="xsmall"):
            for label in range(first, first + 5):
                st.button(
                    str(label),
                    key=f"draw.teach.{label}",
                    on_click=add_to_my_digits,
                    args=(pixels, digit, label),
                    width=TEACH_BUTTON_WIDTH,
                )


def share_set(set_name: str) -> None:
    """Share the set with everyone, or stop sharing it, as its toggle now says."""
    try:
        ui.digit_store().set_shared(set_name, st.session_state[SHARE_KEY], by=ui.current_user())
    except ZooError as error:
        st.toast(str(error))


def sharing(set_name: str) -> bool:
    """The owner's switch that shares the set; others read whose it is. Returns whether it is theirs."""
    store = ui.digit_store()
    owner, shared = store.owner(set_name), store.is_shared(set_name)
    if not ui.may_manage_owner(owner):
        st.caption(f"{set_name} is {owner}'s, shared with everyone: you can look at it and fine-tune on it.")
        return False
    if ui.hosting().hosted:  # on one's own machine there is nobody to share with
        st.session_state[SHARE_KEY] = shared
        st.toggle(
            "Share this set with everyone",
            key=SHARE_KEY,
            on_change=share_set,
            args=(set_name,),
            help="Shared, everyone signed in can see these digits, download them and fine-tune on them; "
            "only you change them. Not shared, only you and the host's admins can.",
        )
    return True


def my_digits(model_name: str, busy: bool) -> None:
    """The personal set: counts, gallery, relabel/delete/download, and fine-tuning on it."""
    st.subheader("My digits")
    set_name = st.text_input(
        "Digit set", key=DIGIT_SET_KEY, max_chars=64, help="Your labelled drawings are kept under this name."
    )
    store, user = ui.digit_store(), ui.current_user()
    others = [name for name in store.set_names(by=user) if name != set_name]
    if others:
        st.caption(f"Other sets you can use: {', '.join(others)}.")
    try:
        digits = store.digits(set_name, by=user)
    except ZooError as error:
        st.error(str(error))
        return
    if not digits:
        st.info(f"{set_name} holds no digits yet: draw one and click the digit it really is.")
        return
    theirs = not sharing(set_name)  # another person's shared set: read-only
    counts = store.counts(set_name, by=user)
    st.markdown(
        f"**{len(digits)} digits** · " + " · ".join(f"{label}: {count}" for label, count in enumerate(counts))
    )
    st.image(
        [enlarge_digit(digit.digit, 2) for digit in digits],
        caption=[f"#{index + 1} · {digit.label}" for index, digit in enumerate(digits)],
        width=56,
    )
    with st.expander("Relabel, delete or download"):
        if st.session_state.get(MY_DIGIT_KEY, 0) >= len(digits):  # the set shrank meanwhile
            st.session_state[MY_DIGIT_KEY] = 0
        st.selectbox(
            "Digit",
            range(len(digits)),
            format_func=lambda index: f"#{index + 1}, labelled {digits[index].label}",
            key=MY_DIGIT_KEY,
        )
        label_column, relabel_column, delete_column = st.columns(3, vertical_alignment="bottom")
        label_column.selectbox("Relabel as", range(10), key=RELABEL_KEY)
        digit_ids = [digit.id for digit in digits]
        relabel_column.button("Relabel", on_click=relabel_digit, args=(set_name, digit_ids), disabled=theirs)
        delete_column.button("Delete", on_click=delete_digit, args=(set_name, digit_ids), disabled=theirs)
        npz_column, zip_column = st.columns(2)
        npz_column.download_button("Download .npz", store.export_npz(set_name, by=user), f"{set_name}.npz")
        zip_column.download_button(
            "Download .zip of PNGs", store.export_zip(set_name, by=user), f"{set_name}.zip"
        )
    if st.button(
        f"Fine-tune {model_name} on my digits",
        disabled=busy,
        help=f"Continues training {model_name} for {FINE_TUNE_EPOCHS} epochs on your digits mixed with "
        "MNIST's, in the background; of each digit you drew twice or more, one drawing in five is held out "
        "to test it.",
    ):
        try:
            start_fine_tuning(model_name, set_name)
            st.rerun()
        except ZooError as error:
            st.error(str(error))


def fine_tuning_outcome(report: FineTuningReport) -> None:
    """What fine-tuning changed: what it now misreads, accuracy before and after, each of my digits."""
    warning = report.warning()
    if warning:
        st.warning(warning, icon=":material/warning:")
    table = fine_tuning_table(report)
    st.table(
        table.style.format("{:.3f}", subset=["before", "after"]).format("{:+.3f}", subset=["change"]).hide()
    )
    if report.digits:
        with st.expander(
            f"Each of your {len(report.digits)} digits, read before and after",
            expanded=any(digit.regressed for digit in report.digits),
        ):
            st.table(fine_tuned_digits_table(report).style.hide())


def render_quick_run(run_id: str, live: bool) -> bool:
    """Show the quick run or fine-tuning run; return whether it is still active.

    Live (in the fragment), only its progress and batch curves: the outcome and the model's button
    come with the page's rerun when the run ends, outside the fragment, so that no click on them is
    lost to that rerun and choosing the model reruns the whole page."""
    run = ui.run_store().get(run_id)
    if run.is_active or live:
        ui.show_progress(run)
        if run.spec.base_model is not None:
            st.plotly_chart(batch_curves(ui.metrics_frame(run.id)), key="draw.fine_tuning_curves")
        return run.is_active
    ui.show_run_outcome(run)
    if run.final_metrics is not None and run.final_metrics.fine_tuning is not None:
        fine_tuning_outcome(run.final_metrics.fine_tuning)
    name = ui.model_of_run(run)
    if name:
        st.button(f"Draw with {name}", on_click=use_model, args=(name,), type="primary")
    return False


def header() -> None:
    st.title("Draw a digit")
    st.caption(
        "The model reads your digit the way MNIST was made: ink found, cropped, its longer side scaled "
        "to 20 pixels, placed in 28×28 with its centre of mass in the middle."
    )


def quick_training_button(quick_run) -> None:
    signed_in = ui.current_user().signed_in
    st.button(
        f"Quick-train a CNN ({QUICK_EPOCHS} epochs on the embedded digits)",
        on_click=start_quick_training,
        disabled=(quick_run is not None and quick_run.is_active) or not signed_in,
        help=f"Trains the CNN for {QUICK_EPOCHS} epochs on the 4,000 embedded digits, in the background"
        + ("." if signed_in else " (sign in first)."),
    )
    if QUICK_ERROR_KEY in st.session_state:
        st.error(st.session_state.pop(QUICK_ERROR_KEY))


def quick_run_section(quick_run) -> None:
    """The followed quick or fine-tuning run: live while it runs, then its outcome and model."""
    if quick_run is None:
        return
    if not quick_run.is_active:
        render_quick_run(quick_run.id, live=False)
        return
    if ui.may_manage_owner(quick_run.owner):
        ui.stop_button(quick_run, key="draw.stop")
    ui.live_fragment(functools.partial(render_quick_run, quick_run.id), live=True, key=QUICK_RUN_KEY)()


def model_picker():
    """The CNN to read with (the most accurate preselected), or None when the zoo has none."""
    models = {entry.name: entry for entry in ui.cnn_models()}
    if not models:
        st.warning("The local zoo has no CNN yet: quick-train one here, or train one on the Train page.")
        return None
    if st.session_state.get(MODEL_KEY) not in models:
        st.session_state[MODEL_KEY] = next(iter(models))
    name = st.selectbox(
        "Model", list(models), key=MODEL_KEY, format_func=lambda name: ui.describe_model(models[name])
    )
    return models[name]


def digit_input():
    """The drawing on the canvas or an uploaded image, as RGBA/RGB pixels; None before there is one."""
    source = st.segmented_control(
        "Input", ["Draw", "Upload an image"], default="Draw", key="draw.input", label_visibility="collapsed"
    )
    if source == "Upload an image":
        upload = st.file_uploader("A PNG or JPEG of one digit", type=UPLOAD_TYPES, key="draw.upload")
        if upload is None:
            return None
        try:
            return load_image(upload.getvalue(), upload.name)
        except ZooError as error:
            st.error(str(error))
            return None
    # Room above the canvas for its toolbar (undo, redo), which shows there while the pointer is on it.
    st.space(CANVAS_TOOLBAR_HEIGHT)
    canvas = st_canvas(
        stroke_width=st.session_state.get(BRUSH_KEY, DEFAULT_BRUSH),  # the slider under the canvas
        stroke_color="#FFFFFF",
        background_color="#000000",
        height=CANVAS_SIDE,
        width=CANVAS_SIDE,
        return_image_data=True,
        key=f"{CANVAS_KEY}.{st.session_state.get(CANVAS_GENERATION_KEY, 0)}",
    )
    with st.container(horizontal=True, vertical_alignment="bottom"):
        st.button("Clear", icon=":material/ink_eraser:", on_click=clear_canvas, key="draw.clear")
        st.slider("Brush width", 6, 40, DEFAULT_BRUSH, key=BRUSH_KEY)
    return canvas.image_data


def reading(predictor, pixels):
    """Preprocess and read the digit; return (preprocessed, inspection), each None when there is none."""
    if pixels is None:
        st.info("Draw a digit on the canvas, or upload an image of one.")
        return None, None
    preprocessed = preprocess(pixels)
    if preprocessed.is_blank:
        st.info(preprocessed.message)
        return preprocessed, None
    inspection = predictor.inspect(preprocessed.digit)
    with st.container(horizontal=True, vertical_alignment="bottom"):
        st.metric("Predicted digit", str(inspection.digit), help="The most probable digit.", width="content")
        st.write(f"Confidence: **{inspection.confidence:.1%}**")
    st.plotly_chart(probability_bars(inspection.probabilities), key="draw.probabilities")
    teach_buttons(pixels, preprocessed.digit, inspection.digit)
    return preprocessed, inspection


def preprocessing_steps(preprocessed) -> None:
    st.subheader("What the model sees")
    st.caption(f"Ink detected as **{preprocessed.polarity}**; each step of the MNIST procedure:")
    for column, (name, image) in zip(st.columns(len(STEP_TITLES)), preprocessed.steps.items(), strict=False):
        with column:
            st.plotly_chart(step_figure(image, STEP_TITLES[name]), key=f"draw.step.{name}")


def inside_the_cnn(preprocessed, inspection) -> None:
    st.subheader("Inside the CNN")
    saliency_column, maps_column = st.columns([1, 2])
    with saliency_column:
        st.plotly_chart(saliency_figure(preprocessed.digit, inspection.saliency), key="draw.saliency")
        st.caption(
            "Saliency: how strongly each input pixel changes the predicted digit's probability "
            "(the gradient's size, scaled to the largest)."
        )
    with maps_column:
        if not inspection.feature_maps:
            st.info("This model has no convolution layers, so there are no feature maps to show.")
        for name, maps in inspection.feature_maps.items():
            height, width, channels = maps.shape
            title = f"{name}: {channels} feature maps of {height}×{width}"
            st.plotly_chart(feature_maps_figure(maps, title), key=f"draw.maps.{name}")


@st.fragment
def drawing_and_reading(predictor) -> None:
    """The canvas or upload and everything read from it. A fragment: a stroke reruns this part of
    the page only, not the sidebar, the model picker or my digits (``benchmarks/load.py``)."""
    if TAUGHT_KEY in st.session_state:  # a drawing joined my digits: the whole page shows it
        st.rerun(scope="app")
    input_column, result_column = st.columns(2)
    with input_column:
        pixels = digit_input()
    with result_column:
        preprocessed, inspection = reading(predictor, pixels)
    # Closed, the look inside costs a line of the page (my digits come right after the reading) and no
    # work: its figures are made only while it is open. Always drawn, so it stays as the person left it.
    with st.expander("What the model sees, and inside the CNN", key=INSIDE_KEY, on_change="rerun") as inside:
        if not inside.open:
            return
        if preprocessed is None:
            st.caption("Draw a digit, or upload an image of one, to see each step and inside the CNN.")
            return
        preprocessing_steps(preprocessed)
        if inspection is not None:
            inside_the_cnn(preprocessed, inspection)


def draw_page() -> None:
    ui.run_through_app()
    st.session_state.setdefault(DIGIT_SET_KEY, personal_set_name(ui.current_user()))
    if TAUGHT_KEY in st.session_state:
        st.toast(st.session_state.pop(TAUGHT_KEY))
    header()
    quick_run = ui.followed_run("cnn")
    model_column, training_column = st.columns([3, 2], vertical_alignment="bottom")
    with training_column:
        quick_training_button(quick_run)
    # One block whatever it holds (nothing, a live run, an outcome), so that the elements below keep
    # their places in the page across reruns: a shifted canvas or reading would be drawn twice meanwhile.
    with st.container():
        quick_run_section(quick_run)
    with model_column:
        entry = model_picker()
    if entry is None:
        return
    try:
        predictor = ui.predictor(entry)
    except ZooError as error:
        st.error(str(error))
        return
    drawing_and_reading(predictor)
    if ui.current_user().signed_in:  # a visitor who is not signed in keeps no digits
        my_digits(entry.name, busy=quick_run is not None and quick_run.is_active)


draw_page()
