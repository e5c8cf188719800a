"""The Draw page in a real browser: mouse strokes on the canvas are read as digits, uploads too."""

import math
import re

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from zoo.core.hosting import LOCAL_USER
from zoo.storage.models import ModelConfig, ModelStore, load_keras_file

pytestmark = pytest.mark.browser
PAGE_LOAD_TIMEOUT_MS = 90_000  # a cold server imports TensorFlow and compiles the model first
READ_TIMEOUT_MS = 30_000
TRAINING_TIMEOUT_MS = 150_000
VIEWPORTS = {"laptop": (1280, 800), "wide laptop": (1366, 900), "phone": (390, 844)}
STROKE_TRIES, STROKE_SHOWN_TIMEOUT_MS = 5, 3_000  # a stroke on a canvas not ready yet is drawn again
MIN_TOUCH_TARGET_PX = 40  # a finger's width: the size of Streamlit's own buttons' height

# Each digit button's size, whether its digit shows in full (its text box wide enough for the digit, the
# glyphs inside the button) and whether the button lies inside the window.
DIGIT_BUTTONS = """() => [...Array(10).keys()].map((digit) => {
    const button = [...document.querySelectorAll('[data-testid="stMain"] button')]
        .find((candidate) => candidate.innerText.trim() === String(digit));
    if (!button) return {digit, found: false};
    const box = button.getBoundingClientRect();
    const text = button.querySelector('[data-testid="stMarkdownContainer"]');
    const glyphs = document.createRange();
    glyphs.selectNodeContents(text);
    const drawn = glyphs.getBoundingClientRect();
    return {
        digit, found: true, width: Math.round(box.width), height: Math.round(box.height),
        shown: text.clientWidth > 0 && text.scrollWidth <= text.clientWidth && drawn.width > 0
            && drawn.left >= box.left && drawn.right <= box.right,
        inWindow: box.left >= 0 && box.right <= window.innerWidth,
    };
})"""


# The brightest red value of the canvas's drawing layer: 255 with white ink on it, 0 when it is black.
BRIGHTEST_RED = """(canvas) => {
    const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let brightest = 0;
    for (let index = 0; index < pixels.length; index += 4) brightest = Math.max(brightest, pixels[index]);
    return brightest;
}"""


def stroke(page, points) -> None:
    """One brush stroke through ``points`` (canvas pixels) with real mouse events, drawn again until the
    canvas shows its ink: a canvas just mounted (the page's first, or a new one after Clear) takes strokes
    only once it has loaded its initial drawing, a moment after it appears (longer on a busy machine)."""
    canvas, drawing = page.locator("canvas.upper-canvas"), page.locator("canvas.dc-canvas.lower-canvas")
    for _ in range(STROKE_TRIES):
        expect(canvas).to_have_count(1, timeout=READ_TIMEOUT_MS)  # Clear's old canvas is gone
        expect(canvas).to_be_visible(timeout=READ_TIMEOUT_MS)
        box = canvas.bounding_box()
        (x, y), *rest = points
        page.mouse.move(box["x"] + x, box["y"] + y)
        page.mouse.down()
        for x, y in rest:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=2)
        page.mouse.up()
        try:
            page.wait_for_function(
                f"(canvas) => ({BRIGHTEST_RED})(canvas) === 255",
                arg=drawing.element_handle(),
                timeout=STROKE_SHOWN_TIMEOUT_MS,
            )
            return
        except PlaywrightTimeoutError:
            continue
    raise AssertionError(f"the canvas showed no ink after {STROKE_TRIES} strokes")


def open_draw_page(page, base_url: str) -> None:
    page.goto(f"{base_url}/draw")
    expect(page.locator("canvas.upper-canvas")).to_be_visible(timeout=PAGE_LOAD_TIMEOUT_MS)
    expect(page.get_by_text("Draw a digit on the canvas")).to_be_visible(timeout=READ_TIMEOUT_MS)


def draw_a_one(page) -> None:
    stroke(page, [(140, 45 + 10 * step) for step in range(20)])  # one vertical stroke
    expect(page.get_by_test_id("stMetricValue")).to_have_text("1", timeout=READ_TIMEOUT_MS)


def open_inside(page) -> None:
    """Open "What the model sees, and inside the CNN" once the page has settled (a click while the
    stroke's rerun is still drawing may be undone by that rerun's own, closed, expander)."""
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=READ_TIMEOUT_MS)
    page.get_by_text("What the model sees, and inside the CNN").click()


def test_the_digit_buttons_show_their_digits_and_are_big_enough_to_tap_at_every_width(
    streamlit_app, chromium, screenshot
):
    """The buttons that correct a reading were 26 px wide and blank at 1280x800, cut at 1366x900."""
    base_url = streamlit_app()
    for device, (width, height) in VIEWPORTS.items():
        context = chromium.new_context(viewport={"width": width, "height": height})
        try:
            page = context.new_page()
            open_draw_page(page, base_url)
            draw_a_one(page)
            expect(page.get_by_role("button", name="9", exact=True)).to_be_visible()
            buttons = page.evaluate(DIGIT_BUTTONS)
            screenshot(page, f"draw-digit-buttons-{width}x{height}")
            unfit = [
                button
                for button in buttons
                if not button["found"]
                or not button["shown"]
                or not button["inWindow"]
                or min(button["width"], button["height"]) < MIN_TOUCH_TARGET_PX
            ]
            assert unfit == [], (
                f"digit buttons unreadable or too small on a {device} ({width}x{height}): {unfit}"
            )
        finally:
            context.close()


def test_a_visible_clear_button_empties_the_canvas_and_my_digits_start_on_the_first_screen(
    streamlit_app, chromium, screenshot
):
    """At 1366x900 my digits sat under ~3,900 px of feature maps, and clear hid in a toolbar that shows on
    hover, over the brush slider."""
    context = chromium.new_context(viewport={"width": 1366, "height": 900})
    try:
        page = context.new_page()
        open_draw_page(page, streamlit_app())
        draw_a_one(page)
        my_digits = page.get_by_role("heading", name="My digits")
        expect(my_digits).to_be_visible()
        assert my_digits.bounding_box()["y"] < 900, "my digits start below the first screen"
        inside = page.get_by_text("What the model sees, and inside the CNN")
        expect(inside).to_be_visible()  # closed: one click away
        expect(page.get_by_text("5 · centred, 28×28")).to_have_count(0)
        page.locator("canvas.upper-canvas").hover()  # the canvas's own toolbar shows above it
        toolbar = page.get_by_role("button", name="Reset canvas & history").bounding_box()
        brush = page.get_by_test_id("stSlider").bounding_box()
        assert toolbar["y"] + toolbar["height"] <= brush["y"] or brush["y"] + brush["height"] <= toolbar["y"]
        screenshot(page, "draw-first-screen")

        open_inside(page)
        expect(page.get_by_text("5 · centred, 28×28")).to_be_visible(timeout=READ_TIMEOUT_MS)
        assert page.locator("canvas.dc-canvas.lower-canvas").evaluate(BRIGHTEST_RED) == 255, (
            "the stroke is on the canvas"
        )
        page.get_by_role("button", name="Clear").click()
        expect(page.get_by_text("Draw a digit on the canvas")).to_be_visible(timeout=READ_TIMEOUT_MS)
        expect(page.get_by_test_id("stMetricValue")).to_have_count(0)
        expect(page.get_by_text("5 · centred, 28×28")).to_have_count(0)
        assert page.locator("canvas.dc-canvas.lower-canvas").evaluate(BRIGHTEST_RED) == 0, (
            "the canvas still shows ink"
        )
        draw_a_one(page)  # the new canvas draws and reads as the first did
    finally:
        context.close()


def test_drawn_and_uploaded_digits_are_read_and_quick_training_offers_its_model(
    streamlit_app, browser_page, screenshot, starter_cnn_file, a_seven, zoo_home, tmp_path
):
    ModelStore().save(load_keras_file(starter_cnn_file), "test-cnn", config=ModelConfig("cnn"))
    base_url = streamlit_app(env={"ZOO_HOME": str(zoo_home)})
    page = browser_page
    page.goto(f"{base_url}/draw")
    expect(page.locator("canvas.upper-canvas")).to_be_visible(timeout=PAGE_LOAD_TIMEOUT_MS)
    expect(page.get_by_text("Draw a digit on the canvas")).to_be_visible(timeout=READ_TIMEOUT_MS)
    # The most accurate CNN is preselected (the shipped starter), not the newest (test-cnn, unscored).
    expect(page.get_by_role("combobox", name="Model")).to_have_value(
        "mnist-cnn · test accuracy 99.5% · full MNIST"
    )
    predicted = page.get_by_test_id("stMetricValue")

    stroke(page, [(140, 45 + 10 * step) for step in range(20)])  # a "1": one vertical stroke
    expect(predicted).to_have_text("1", timeout=READ_TIMEOUT_MS)
    open_inside(page)  # it stays open from here on
    expect(page.get_by_text("5 · centred, 28×28")).to_be_visible(timeout=READ_TIMEOUT_MS)
    screenshot(page, "draw-one")

    page.get_by_role("button", name="Reset canvas & history").click()
    expect(page.get_by_text("Draw a digit: there is too little ink")).to_be_visible(timeout=READ_TIMEOUT_MS)
    expect(predicted).to_have_count(0)

    loop = [(140 + 55 * math.sin(t), 140 - 85 * math.cos(t)) for t in np.linspace(0, 2.1 * math.pi, 48)]
    stroke(page, loop)  # a "0": one closed loop
    expect(predicted).to_have_text("0", timeout=READ_TIMEOUT_MS)
    screenshot(page, "draw-zero")

    digit_path, text_path = tmp_path / "seven.png", tmp_path / "notes.png"
    Image.fromarray(255 - a_seven).resize((140, 140)).save(digit_path)  # black on white
    text_path.write_text("not an image at all")
    page.get_by_text("Upload an image").click()
    uploader = page.get_by_test_id("stFileUploaderDropzoneInput")
    uploader.set_input_files(str(text_path))
    expect(page.get_by_text("cannot be read as an image")).to_be_visible(timeout=READ_TIMEOUT_MS)
    uploader.set_input_files(str(digit_path))
    expect(predicted).to_have_text("7", timeout=READ_TIMEOUT_MS)
    expect(page.get_by_text("cannot be read as an image")).to_have_count(0, timeout=READ_TIMEOUT_MS)
    expect(page.get_by_text("dark-on-light")).to_be_visible()
    screenshot(page, "draw-upload")

    page.get_by_role("button", name="Quick-train a CNN").click()  # a few epochs on the embedded digits
    use_new_model = page.get_by_role("button", name=re.compile(r"^Draw with cnn-"))
    expect(use_new_model).to_be_visible(timeout=TRAINING_TIMEOUT_MS)
    new_model = use_new_model.inner_text().removeprefix("Draw with ")
    use_new_model.click()
    model_choice = page.get_by_role("combobox", name="Model")
    expect(model_choice).to_have_value(re.compile(f"^{new_model} · test accuracy"))
    expect(use_new_model).to_have_count(0, timeout=READ_TIMEOUT_MS)  # the page stopped following the run
    expect(predicted).to_have_count(1, timeout=READ_TIMEOUT_MS)  # the upload, read by the new model
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=READ_TIMEOUT_MS)
    screenshot(page, "draw-quick-trained")


def test_a_corrected_drawing_joins_my_digits_and_a_fine_tuned_model_reads_it(
    streamlit_app, browser_page, screenshot, zoo_home
):
    """Teach the starter that a flat dash is a 4: correct its reading with one click, see the drawing
    in my digits, fine-tune on the set, and read the same drawing with the new model."""
    from zoo.core.names import DEFAULT_SET
    from zoo.ml.inference import preprocess
    from zoo.storage.digits import DigitStore

    store = DigitStore()
    for index, (label, horizontal) in enumerate([(4, True)] * 4 + [(1, False)] * 3):
        pixels = np.zeros((280, 280, 4), np.uint8)
        start = 100 + 12 * (index % 4)
        if horizontal:
            pixels[start : start + 20, 45 : 235 - 10 * index, 3] = 255
        else:
            pixels[45:235, start : start + 20, 3] = 255
        store.add(DEFAULT_SET, label, pixels, preprocess(pixels).digit, by=LOCAL_USER)
    base_url = streamlit_app(env={"ZOO_HOME": str(zoo_home)})
    page = browser_page
    page.goto(f"{base_url}/draw")
    expect(page.locator("canvas.upper-canvas")).to_be_visible(timeout=PAGE_LOAD_TIMEOUT_MS)
    expect(page.get_by_role("combobox", name="Model")).to_have_value(re.compile("^mnist-cnn"))
    expect(page.get_by_text("**7 digits**".strip("*"))).to_be_visible(timeout=READ_TIMEOUT_MS)

    stroke(page, [(40 + 10 * step, 140) for step in range(21)])  # a flat dash across the canvas
    predicted = page.get_by_test_id("stMetricValue")
    expect(predicted).to_have_count(1, timeout=READ_TIMEOUT_MS)
    first_reading = predicted.inner_text()
    assert first_reading != "4", "the starter should not read a dash as a 4"
    page.get_by_role("button", name="4", exact=True).click()
    expect(page.get_by_text("Added to my-digits as a 4.")).to_be_visible(timeout=READ_TIMEOUT_MS)
    expect(page.get_by_text("8 digits")).to_be_visible(timeout=READ_TIMEOUT_MS)
    expect(page.get_by_text("4: 5")).to_be_visible()
    expect(page.get_by_text("#8 · 4")).to_be_visible()  # the drawing, in the gallery with its label
    assert [digit.label for digit in store.digits(DEFAULT_SET, by=LOCAL_USER)][-1] == 4
    screenshot(page, "draw-my-digits")

    page.get_by_role("button", name="Fine-tune mnist-cnn on my digits").click()
    use_new_model = page.get_by_role("button", name="Draw with mnist-cnn-my-digits")
    expect(use_new_model).to_be_visible(timeout=TRAINING_TIMEOUT_MS)
    expect(page.get_by_text("my held-out digits (2)")).to_be_visible()  # a 4 and a 1, not "every fifth"
    page.get_by_text("Each of your 8 digits, read before and after").click()
    drawn = page.get_by_role("row").filter(has_text="#8")  # the dash, as each model read it
    expect(drawn).to_contain_text(f"{first_reading} (")
    expect(drawn.get_by_role("cell").nth(4)).to_have_text(re.compile(r"^4 \(\d+%\)$"))
    use_new_model.click()
    expect(page.get_by_role("combobox", name="Model")).to_have_value(re.compile("^mnist-cnn-my-digits"))
    expect(predicted).to_have_text("4", timeout=READ_TIMEOUT_MS)  # the same drawing, read by the new model
    screenshot(page, "draw-fine-tuned")
