"""The Learn page in a real browser: every formula fits its column, on a laptop and on a phone."""

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser
PAGE_LOAD_TIMEOUT_MS = 60_000
WIDTHS = {"laptop": 1280, "phone": 390}
SECTIONS = 7

# Every rendered formula (KaTeX) whose drawing is wider than the column (Streamlit's vertical block)
# that holds it, or starts or ends outside it: the part beyond is cut off or hidden in a scroll.
# (A formula's own box shrinks to fit it; KaTeX's last glyph may poke a pixel or two past that box,
# which no one sees, so the width is compared with the column, not with that box.)
OVERFLOWING_FORMULAS = """() => {
    const found = [];
    for (const formula of document.querySelectorAll('.katex')) {
        const column = formula.closest('[data-testid="stVerticalBlock"]').getBoundingClientRect();
        const left = formula.getBoundingClientRect().left;
        const width = Math.max(formula.scrollWidth, formula.getBoundingClientRect().width);
        if (left < column.left - 1 || left + width > column.right + 1) {
            const annotation = formula.querySelector('annotation');
            found.push({
                formula: annotation ? annotation.textContent : formula.textContent,
                width: Math.round(width),
                column: Math.round(column.width),
            });
        }
    }
    return found;
}"""


@pytest.mark.parametrize("device", list(WIDTHS))
def test_every_formula_is_fully_visible_in_its_column(streamlit_app, chromium, screenshot, device):
    base_url = streamlit_app()
    context = chromium.new_context(viewport={"width": WIDTHS[device], "height": 1000})
    try:
        page = context.new_page()
        page.goto(f"{base_url}/learn")
        headers = page.locator("h2")
        expect(headers.filter(has_text="7. How it fits together")).to_be_visible(timeout=PAGE_LOAD_TIMEOUT_MS)
        expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=PAGE_LOAD_TIMEOUT_MS)
        formulas = page.locator(".katex")
        assert formulas.count() > 40, "the page's formulas are rendered"
        page.wait_for_function("document.fonts.status === 'loaded'")  # KaTeX's fonts set the widths
        overflowing = page.evaluate(OVERFLOWING_FORMULAS)
        screenshot(page, f"learn-formulas-{device}")
        assert overflowing == [], f"formulas wider than their column at {WIDTHS[device]} px: {overflowing}"
    finally:
        context.close()
