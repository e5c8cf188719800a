"""Figures and links on a phone (390x844) and a laptop (1280x800): no text of a Plotly figure (title,
legend, subplot titles and other annotations, axis titles, play buttons and slider) overlaps another
or is cut at the figure's edge, and no page link's label is cut short (Learn, Train with a finished
run, Home)."""

import time

import pytest
from playwright.sync_api import expect

from zoo.core.hosting import LOCAL_USER
from zoo.core.spec import TrainSpec
from zoo.execution.admission import start
from zoo.execution.executor import open_executor, wait

pytestmark = pytest.mark.browser
PAGE_LOAD_TIMEOUT_MS = 90_000
RUN_TIMEOUT_S = 150
VIEWPORTS = {"phone": (390, 844), "laptop": (1280, 800)}
GLYPH_OVERHANG_PX = 3  # a glyph's box may reach this far past the figure's edge (ascenders), unseen
SETTLE_TIMEOUT_S, SETTLED_S, POLL_S = 30, 2, 0.25

# Every figure's drawn size: a figure still being laid out changes it.
FIGURE_SIZES = """() => [...document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot .main-svg')]
    .map((svg) => [svg.getBoundingClientRect().width, svg.getBoundingClientRect().height])"""

# Per figure of the page, the texts that overlap one another or reach past the figure's edges.
FIGURE_TEXT_PROBLEMS = """(overhang) => {
    const problems = [];
    for (const figure of document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot')) {
        const edges = figure.querySelector('.main-svg').getBoundingClientRect();
        const keyClass = [...(figure.closest('[class*="st-key-"]') || figure).classList]
            .find((name) => name.startsWith('st-key-'));
        const name = keyClass ? keyClass.slice('st-key-'.length) : 'a figure';
        const texts = [];
        for (const title of figure.querySelectorAll('.infolayer text[class*="title"]')) {
            if (!title.closest('.legend')) texts.push([title.textContent, title.getBoundingClientRect()]);
        }
        for (const [selector, what] of [
            ['.legend', 'the legend'],
            ['.updatemenu-container', 'the buttons'],
            ['.slider-container', 'the slider'],
        ]) {
            for (const element of figure.querySelectorAll(selector)) {
                texts.push([what, element.getBoundingClientRect()]);
            }
        }
        for (const annotation of figure.querySelectorAll('.annotation-text-g')) {
            texts.push([annotation.textContent, annotation.getBoundingClientRect()]);
        }
        const shown = texts.filter(([text, box]) => text.trim() && box.width > 0 && box.height > 0);
        for (const [text, box] of shown) {
            if (box.left < edges.left - overhang || box.right > edges.right + overhang
                || box.top < edges.top - overhang || box.bottom > edges.bottom + overhang) {
                problems.push(`${name}: "${text}" is cut at the figure's edge`);
            }
        }
        shown.forEach(([text, box], index) => shown.slice(index + 1).forEach(([other, otherBox]) => {
            if (box.left < otherBox.right - 1 && otherBox.left < box.right - 1
                && box.top < otherBox.bottom - 1 && otherBox.top < box.bottom - 1) {
                problems.push(`${name}: "${text}" overlaps "${other}"`);
            }
        }));
    }
    return problems;
}"""

# The page links of the main area whose label is cut short (an ellipsis, or cut off).
CUT_LINK_LABELS = """() => [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stPageLink"]')]
    .filter((link) => [...link.querySelectorAll('*')].some(
        (element) => element.clientWidth > 0 && element.scrollWidth > element.clientWidth + 1))
    .map((link) => link.innerText)"""


def settled(page, ready) -> None:
    expect(ready).to_be_visible(timeout=PAGE_LOAD_TIMEOUT_MS)
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=PAGE_LOAD_TIMEOUT_MS)
    page.wait_for_function("document.fonts.status === 'loaded'")
    for figure in page.locator('[data-testid="stMain"] .js-plotly-plot').all():
        figure.scroll_into_view_if_needed()


def layout_problems(page) -> list[str]:
    """The problems once the figures have settled: Streamlit draws a figure, then redraws it at its
    column's width, a second or two later on a busy machine; measured until nothing moved for 2 s."""
    deadline, last, unchanged_since = time.monotonic() + SETTLE_TIMEOUT_S, None, time.monotonic()
    while time.monotonic() < deadline:
        found = page.evaluate(FIGURE_SIZES), page.evaluate(FIGURE_TEXT_PROBLEMS, GLYPH_OVERHANG_PX)
        if found != last:
            last, unchanged_since = found, time.monotonic()
        elif time.monotonic() - unchanged_since >= SETTLED_S:
            break
        time.sleep(POLL_S)
    return last[1] + [f'the link "{label}" is cut short' for label in page.evaluate(CUT_LINK_LABELS)]


def assert_none(found: dict[str, list[str]]) -> None:
    problems = [f"{where}: {problem}" for where, problems in found.items() for problem in problems]
    assert problems == [], "\n".join(problems)


def test_the_learn_page_figures_fit_a_phone_and_a_laptop(streamlit_app, chromium, screenshot):
    """On a phone Learn's legends covered the subplot titles, the backprop title was cut, and the
    pipeline's boxes ran into each other ("Deploymen")."""
    base_url = streamlit_app()
    found = {}
    for device, (width, height) in VIEWPORTS.items():
        context = chromium.new_context(viewport={"width": width, "height": height})
        try:
            page = context.new_page()
            page.goto(f"{base_url}/learn")
            settled(page, page.locator("h2").filter(has_text="7. How it fits together"))
            found[device] = layout_problems(page)
            screenshot(page, f"learn-layout-{device}")
        finally:
            context.close()
    assert_none(found)


def test_train_curves_and_home_run_links_fit_a_phone_and_a_laptop(
    streamlit_app, chromium, screenshot, zoo_home
):
    """On a phone Train's subplot titles overlapped and Home's run links were cut off."""
    spec = TrainSpec.cnn(mnist_source="embedded", max_train_samples=300, num_epochs=2, batch_size=50)
    run_id = start(spec, by=LOCAL_USER, executor=open_executor())
    assert wait(run_id, RUN_TIMEOUT_S).status == "completed"
    binary_id = start(TrainSpec.binary(num_epochs=3), by=LOCAL_USER, executor=open_executor())
    assert wait(binary_id, RUN_TIMEOUT_S).status == "completed"
    base_url = streamlit_app(env={"ZOO_HOME": str(zoo_home)})
    found = {}
    for device, (width, height) in VIEWPORTS.items():
        context = chromium.new_context(viewport={"width": width, "height": height})
        try:
            page = context.new_page()
            page.goto(f"{base_url}/train?run={run_id}")
            settled(page, page.locator(".js-plotly-plot").filter(has_text="Confusion matrix"))
            found[f"Train, {device}"] = layout_problems(page)
            screenshot(page, f"train-layout-{device}")
            page.goto(base_url)
            settled(page, page.get_by_role("link", name=f"binary run {binary_id}"))
            found[f"Home, {device}"] = layout_problems(page)
            screenshot(page, f"home-layout-{device}")
        finally:
            context.close()
    assert_none(found)
