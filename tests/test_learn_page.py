"""The Learn page through Streamlit's AppTest: every section renders and follows its controls."""

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from zoo.core.vocabulary import OPTIMIZER_LABELS
from zoo.ml import formulas
from zoo.ml.data import load_embedded_mnist

APP = Path(__file__).resolve().parents[1] / "app.py"
SECTIONS = [
    "1. The neuron",
    "2. Activations and their derivatives",
    "3. Losses",
    "4. Backpropagation on the article's 2-3-1 network",
    "5. Optimizers",
    "6. Convolution and pooling",
    "7. How it fits together",
]
CHARTS = [
    "neuron_chart", "activations_chart", "losses_chart", "backprop_chart", "race_chart", "race_losses_chart",
    "conv_kernel_chart", "conv_products_chart", "conv_digit_chart", "conv_output_chart", "conv_relu_chart",
    "conv_pool_chart", "pipeline_chart",
]  # fmt: skip


@pytest.fixture
def page() -> AppTest:
    app = AppTest.from_file(str(APP), default_timeout=60)
    app.switch_page("pages/learn.py")
    app.run()
    assert not app.exception, [exception.message for exception in app.exception]
    return app


def rerun(app: AppTest, timeout: float = 60) -> AppTest:
    app.run(timeout=timeout)
    assert not app.exception, [exception.message for exception in app.exception]
    return app


def metric(app: AppTest, label: str) -> str:
    matches = [m.value for m in app.metric if m.label == label]
    assert len(matches) == 1, f"{label!r} not among {[m.label for m in app.metric]}"
    return matches[0]


def chart(app: AppTest, key: str) -> dict:
    matches = [c for c in app.get("plotly_chart") if c.proto.id.endswith(f"-{key}")]
    assert len(matches) == 1, key
    return json.loads(matches[0].proto.spec)


def array(value) -> np.ndarray:
    """A Plotly JSON array: a plain list, or plotly's typed-array form {dtype, bdata[, shape]}."""
    if isinstance(value, dict):
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = value.get("shape")
        return (
            flat.reshape([int(n) for n in shape.split(",")])
            if isinstance(shape, str)
            else flat.reshape(shape or -1)
        )
    return np.asarray(value, dtype=float)


def all_latex(app: AppTest) -> str:
    return "\n".join(element.value for element in app.latex)


def test_every_section_renders_its_formulas_pictures_and_numbers(page):
    assert [header.value for header in page.header] == SECTIONS
    latex = all_latex(page)
    for formula in (
        r"z = \sum_j w_j x_j + b",  # neuron
        r"\sigma'(z) = \sigma(z)\,(1-\sigma(z))",  # activations
        r"\mathrm{BCE} = -\big(y \log \hat y",  # losses
        r"\delta^{(1)} &= \big(\delta^{(2)} W^{(2)\top}\big)",  # backprop
        r"\hat m_t = \frac{m_t}{1-\beta_1^t},\quad \hat v_t = \frac{v_t}{1-\beta_2^t}",  # Adam
        r"m_t &= \mu m_{t-1} - \eta g_t \\ \theta_t &= \theta_{t-1} + m_t",  # momentum, Keras' form
        r"\mathrm{out}[i, j] &= \sum_{u=0}^{2}\sum_{v=0}^{2} K[u, v]",  # convolution
    ):
        assert formula in latex
    assert any("Adam formula is garbled" in warning.value for warning in page.warning)
    for key in CHARTS:
        spec = chart(page, key)
        assert spec["data"] or spec["layout"]["annotations"], key
    assert len(page.metric) >= 13


def test_the_neuron_follows_its_sliders(page):
    before = float(metric(page, "output a = sigmoid(z)"))
    page.slider(key="neuron_w1").set_value(2.5)
    page.slider(key="neuron_bias").set_value(-1.0)
    rerun(page)
    expected = formulas.neuron([1.0, -0.5, 0.8], [2.5, 1.2, -0.7], -1.0, "sigmoid")
    assert metric(page, "weighted sum z") == f"{expected.z:.4f}"
    assert metric(page, "output a = sigmoid(z)") == f"{expected.a:.4f}" != f"{before:.4f}"
    marker = chart(page, "neuron_chart")["data"][-1]
    assert marker["x"] == [pytest.approx(expected.z)] and marker["y"] == [pytest.approx(expected.a)]

    page.selectbox(key="neuron_activation").set_value("relu")
    rerun(page)
    assert metric(page, "output a = relu(z)") == f"{max(expected.z, 0.0):.4f}"


def test_activation_saturation_follows_the_threshold(page):
    listing = next(m.value for m in page.markdown if "saturates on" in m.value)
    assert "**relu** saturates on [-6.00, 0.00]" in listing
    page.slider(key="saturation_fraction").set_value(0.3)
    rerun(page)
    wider = next(m.value for m in page.markdown if "saturates on" in m.value)
    (start, end), _ = formulas.saturation_intervals("sigmoid", fraction=0.3)
    assert f"**sigmoid** saturates on [{start:.2f}, {end:.2f}]" in wider and wider != listing
    assert len(chart(page, "activations_chart")["layout"]["shapes"]) == 5  # 2 sigmoid, 1 relu, 2 tanh


def test_losses_follow_the_prediction_and_label(page):
    page.slider(key="loss_prediction").set_value(0.3)
    page.radio(key="loss_label").set_value(0)
    rerun(page)
    assert metric(page, "MSE") == f"{0.09:.4f}"
    assert metric(page, "Binary cross-entropy") == f"{-np.log(0.7):.4f}"
    assert metric(page, "BCE gradient dL/dz") == f"{0.3:.4f}"
    assert metric(page, "MSE gradient dL/dz") == f"{2 * 0.3 * 0.3 * 0.7:.4f}"
    assert "Loss for label y = 0" in json.dumps(chart(page, "losses_chart")["layout"])


def test_backprop_shows_every_number_and_follows_sample_seed_and_rate(page):
    weights = formulas.initial_weights(0)
    point, label = formulas.BACKPROP_SAMPLES[0]
    trace = formulas.backprop(weights, point, label, 0.5)
    assert metric(page, "prediction ŷ") == f"{trace.output_a[0, 0]:.6f}"
    assert metric(page, "loss L") == f"{trace.loss:.6f}"
    latex = all_latex(page)
    assert f"{trace.gradients.hidden_kernel[1, 2]:.5f}" in latex  # a dL/dW1 entry
    assert f"{trace.updated.output_kernel[0, 0]:.3f}" in latex  # an updated W2 entry

    page.selectbox(key="backprop_sample").set_value("Type my own")
    rerun(page)
    page.number_input(key="backprop_x1").set_value(2.0)
    page.number_input(key="backprop_x2").set_value(-3.0)
    page.selectbox(key="backprop_y").set_value(0)
    page.number_input(key="backprop_seed").set_value(5)
    page.select_slider(key="backprop_learning_rate").set_value(0.1)
    rerun(page)
    typed = formulas.backprop(formulas.initial_weights(5), (2.0, -3.0), 0, 0.1)
    assert metric(page, "prediction ŷ") == f"{typed.output_a[0, 0]:.6f}"
    after = formulas.backprop(typed.updated, (2.0, -3.0), 0)
    assert metric(page, "loss after the step") == f"{after.loss:.6f}"


def test_backprop_check_runs_keras_only_when_asked_and_passes(page):
    assert not page.success
    page.button(key="backprop_check").click()
    rerun(page, timeout=120)
    (message,) = [success.value for success in page.success]
    match = re.search(r"Keras' automatic differentiation .*: (\d\.\d+e[+-]\d+) \(within 1e-06\)", message)
    assert match and float(match.group(1)) < 1e-6


def test_optimizer_race_follows_surface_rates_and_steps(page):
    race = chart(page, "race_chart")
    buttons = race["layout"]["updatemenus"][0]["buttons"]
    assert [button["label"] for button in buttons] == ["▶ Play", "Pause"]
    assert buttons[0]["method"] == "animate" and len(buttons[0]["args"][0]) == 60  # plays every frame
    assert len(race["frames"]) == 60 and race["frames"][-1]["name"] == "150"

    page.selectbox(key="race_surface").set_value("rosenbrock")
    rerun(page)
    assert page.select_slider(key="race_learning_rate").value == 0.001  # the surface's stable rate
    assert page.select_slider(key="race_adam_learning_rate").value == 0.05
    page.slider(key="race_steps").set_value(40)
    page.slider(key="race_momentum").set_value(0.5)
    rerun(page)
    expected = formulas.optimizer_race(
        "rosenbrock", formulas.OptimizerSettings(learning_rate=0.001, momentum=0.5), 0.05, 40
    )
    for name, trajectory in expected.items():
        label = f"{OPTIMIZER_LABELS[name]}: final loss"
        assert metric(page, label) == f"{trajectory.losses[-1]:.3g}"
    race = chart(page, "race_chart")
    assert len(race["frames"]) == 41
    np.testing.assert_allclose(array(race["frames"][-1]["data"][1]["x"]), expected["momentum"].points[:, 0])

    page.select_slider(key="race_learning_rate").set_value(0.5)
    rerun(page)
    assert metric(page, "Gradient descent (SGD): final loss") == "diverged"


def test_convolution_steps_through_a_real_digit_and_matches_keras(page):
    digits = load_embedded_mnist().x_test
    page.number_input(key="conv_digit").set_value(7)
    page.selectbox(key="conv_kernel").set_value("horizontal edge")
    page.slider(key="conv_step").set_value(200)
    rerun(page)
    step = formulas.convolution_step(digits[7] / 255.0, formulas.KERNELS["horizontal edge"], 200)
    assert (step.row, step.column) == (7, 17)
    assert metric(page, "out[7, 17]") == f"{step.value:.4f}"
    output = array(chart(page, "conv_output_chart")["data"][0]["z"])
    assert output.shape == (26, 26) and np.count_nonzero(~np.isnan(output)) == 200
    assert chart(page, "conv_digit_chart")["layout"]["shapes"][0]["x0"] == pytest.approx(16.5)

    page.button(key="conv_check").click()
    rerun(page, timeout=120)
    (message,) = [success.value for success in page.success]
    assert "Keras' Conv2D output" in message
    match = re.search(r"output: (\d\.\d+e[+-]\d+) \(within 1e-06\)", message)
    assert match and float(match.group(1)) <= 1e-6


def test_pipeline_links_to_pages_that_the_app_registers(page):
    links = {link.proto.label: link.proto.page for link in page.get("page_link")}
    assert links == {
        "Data": "playground",
        "Preprocessing": "draw",
        "Features": "learn",
        "Training": "train",
        "Evaluation": "runs",
        "Deployment": "hub",
        "Back to Home": links["Back to Home"],
    }
    registered = set(re.findall(r'\("pages/(\w+)\.py"', APP.read_text()))
    assert set(links.values()) - {links["Back to Home"]} <= registered
    diagram = json.dumps(chart(page, "pipeline_chart")["layout"]["annotations"])
    for url_path in ("playground", "draw", "learn", "train", "runs", "hub"):
        assert f'href=\\"{url_path}\\"' in diagram
