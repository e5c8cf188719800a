"""Learn: every formula of the articles, live, interactive and checked against Keras.

The numbers come from zoo.ml.formulas (plain numpy); Keras is only imported when a check button is pressed.
"""

import numpy as np
import streamlit as st

from zoo.app import ui
from zoo.app.charts import learn as charts
from zoo.core.errors import ZooError
from zoo.core.vocabulary import OPTIMIZER_LABELS
from zoo.ml import formulas

LEARNING_RATES = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)
PIPELINE = (  # (step, what happens there, the page that does it)
    ("Data", "MNIST digits, 2-D point sets", "pages/playground.py"),
    ("Preprocessing", "canvas → 28×28, scaled to [0, 1]", "pages/draw.py"),
    ("Features", "convolutions, feature maps", "pages/learn.py"),
    ("Training", "fit with live curves", "pages/train.py"),
    ("Evaluation", "accuracy, confusion, ROC", "pages/runs.py"),
    ("Deployment", "share on the Hub, predict", "pages/hub.py"),
)


def matrix(values, digits: int = 3) -> str:
    """A numpy array as a LaTeX bmatrix (a 1-D array is a row)."""
    rows = np.atleast_2d(np.asarray(values, dtype=float))
    body = r" \\ ".join(" & ".join(f"{value:.{digits}f}" for value in row) for row in rows)
    return r"\begin{bmatrix}" + body + r"\end{bmatrix}"


def aligned(*lines: str) -> str:
    """Equations one under the other, aligned at their ``&``: a formula too wide for a narrow column
    is written over several lines (KaTeX never breaks a display formula itself)."""
    return r"\begin{aligned}" + r" \\ ".join(lines) + r"\end{aligned}"


def use_surface_learning_rates() -> None:
    surface = formulas.SURFACES[st.session_state["race_surface"]]
    st.session_state["race_learning_rate"] = surface.learning_rate
    st.session_state["race_adam_learning_rate"] = surface.adam_learning_rate


def neuron_section() -> None:
    """1. The neuron: weighted sum and activation, with its numbers."""
    st.header("1. The neuron", anchor="neuron")
    controls, picture = st.columns([2, 3])
    with controls:
        st.latex(r"z = \sum_j w_j x_j + b")
        st.latex(r"a = \sigma(z) = \frac{1}{1 + e^{-z}}")
        activation_name = st.selectbox("Activation", formulas.ACTIVATION_NAMES, key="neuron_activation")
        inputs, weights = [], []
        for index, (x_default, w_default) in enumerate(((1.0, 0.5), (-0.5, 1.2), (0.8, -0.7))):
            x_column, w_column = st.columns(2)
            inputs.append(
                x_column.slider(f"x{index + 1}", -2.0, 2.0, x_default, 0.1, key=f"neuron_x{index + 1}")
            )
            weights.append(
                w_column.slider(f"w{index + 1}", -3.0, 3.0, w_default, 0.1, key=f"neuron_w{index + 1}")
            )
        bias = st.slider("bias b", -5.0, 5.0, 0.2, 0.1, key="neuron_bias")
        neuron = formulas.neuron(inputs, weights, bias, activation_name)
        z_metric, a_metric = st.columns(2)
        z_metric.metric("weighted sum z", f"{neuron.z:.4f}")
        a_metric.metric(f"output a = {activation_name}(z)", f"{neuron.a:.4f}")
    with picture:
        z_grid, curves = formulas.activation_curves(min(-6.0, neuron.z - 1), max(6.0, neuron.z + 1))
        st.plotly_chart(
            charts.neuron_figure(z_grid, curves[activation_name][0], neuron.z, neuron.a, activation_name),
            key="neuron_chart",
        )
    weighted = [f"({w:g})({x:g})" for w, x in zip(weights, inputs, strict=True)]
    st.latex(
        aligned(
            rf"z &= {weighted[0]} + {weighted[1]}",
            rf"&\quad + {weighted[2]} + ({bias:g}) = {neuron.z:.4f}",
            rf"a &= \mathrm{{{activation_name}}}(z) = {neuron.a:.4f}",
        )
    )


def activations_section() -> None:
    """2. The activations, their derivatives and where they saturate."""
    st.header("2. Activations and their derivatives", anchor="activations")
    sigmoid_column, relu_column, tanh_column = st.columns(3)
    sigmoid_column.latex(r"\sigma(z) = \frac{1}{1+e^{-z}}")
    sigmoid_column.latex(r"\sigma'(z) = \sigma(z)\,(1-\sigma(z))")
    relu_column.latex(r"\mathrm{ReLU}(z) = \max(0, z)")
    relu_column.latex(r"\mathrm{ReLU}'(z) = \begin{cases}1 & z > 0\\ 0 & z \le 0\end{cases}")
    tanh_column.latex(r"\tanh(z) = \frac{e^z - e^{-z}}{e^z + e^{-z}}")
    tanh_column.latex(r"\tanh'(z) = 1 - \tanh^2(z)")
    threshold = st.slider(
        "Call a function saturated where its slope is below this fraction of its peak slope",
        0.01,
        0.5,
        0.1,
        0.01,
        key="saturation_fraction",
    )
    z_grid, curves = formulas.activation_curves()
    saturation = {name: formulas.saturation_intervals(name, fraction=threshold) for name in curves}
    st.plotly_chart(charts.activations_figure(z_grid, curves, saturation), key="activations_chart")
    st.markdown(
        "\n".join(
            f"- **{name}** saturates on "
            + (", ".join(f"[{start:.2f}, {end:.2f}]" for start, end in intervals) or "no part of [-6, 6]")
            for name, intervals in saturation.items()
        )
        + "\n\nWhere a function saturates its derivative is (almost) zero, so backpropagation passes "
        "(almost) no gradient through it: the neuron stops learning. Sigmoid's slope is at most 0.25, "
        "which is why deep sigmoid stacks learn slowly; ReLU never saturates for z > 0 but is flat "
        "(dead) for z ≤ 0."
    )


def losses_section() -> None:
    """3. MSE and cross-entropy, and why cross-entropy learns faster from a confident mistake."""
    st.header("3. Losses", anchor="losses")
    mse_column, bce_column, cce_column = st.columns(3)
    mse_column.latex(r"\mathrm{MSE} = \frac{1}{n}\sum_i (y_i - \hat y_i)^2")
    mse_column.latex(r"\frac{\partial \mathrm{MSE}}{\partial \hat y} = 2(\hat y - y)")
    bce_column.latex(aligned(r"\mathrm{BCE} = -\big(y \log \hat y", r"\quad + (1-y)\log(1-\hat y)\big)"))
    bce_column.latex(r"\frac{\partial \mathrm{BCE}}{\partial \hat y} = \frac{\hat y - y}{\hat y(1-\hat y)}")
    cce_column.latex(r"\mathrm{CCE} = -\sum_k y_k \log \hat y_k")
    cce_column.latex(r"\frac{\partial \mathrm{CCE}}{\partial \hat y_k} = -\frac{y_k}{\hat y_k}")
    controls, picture = st.columns([2, 3])
    with controls:
        label = st.radio("True label y", (1, 0), horizontal=True, key="loss_label")
        prediction = st.slider(
            "Prediction ŷ (probability of class 1)", 0.01, 0.99, 0.05, 0.01, key="loss_prediction"
        )
        mse_metric, bce_metric = st.columns(2)
        mse_metric.metric("MSE", f"{formulas.loss('mse', [prediction], [label]):.4f}")
        bce_metric.metric(
            "Binary cross-entropy", f"{formulas.loss('binary_crossentropy', [prediction], [label]):.4f}"
        )
        mse_push = formulas.loss_gradient_wrt_logit("mse", prediction, label)
        bce_push = formulas.loss_gradient_wrt_logit("binary_crossentropy", prediction, label)
        st.latex(
            aligned(
                r"\text{MSE: }\frac{\partial L}{\partial z} &= 2(\hat y - y)\,\hat y(1-\hat y)",
                rf"&= {mse_push:.4f}",
            )
        )
        st.latex(rf"\text{{BCE: }}\frac{{\partial L}}{{\partial z}} = \hat y - y = {bce_push:.4f}")
        mse_grad_metric, bce_grad_metric = st.columns(2)
        mse_grad_metric.metric("MSE gradient dL/dz", f"{mse_push:.4f}")
        bce_grad_metric.metric("BCE gradient dL/dz", f"{bce_push:.4f}")
        st.markdown(
            "**Why cross-entropy learns faster from a confident mistake.** With a sigmoid output a = σ(z), "
            "the gradient that reaches z is the loss gradient times σ′(z) = ŷ(1−ŷ). For MSE that factor "
            "stays, so a confidently wrong ŷ (near 0 when y = 1) gets almost no push. Cross-entropy's "
            f"1/(ŷ(1−ŷ)) cancels it: the push is the whole error ŷ − y. Here BCE pushes "
            f"**{abs(bce_push) / max(abs(mse_push), 1e-12):.1f}×** harder than MSE. With ten classes, "
            "categorical cross-entropy is −log of the true class's probability: for two classes it is "
            "exactly binary cross-entropy (the curves coincide)."
        )
    with picture:
        predictions = np.linspace(0.005, 0.995, 199)
        st.plotly_chart(
            charts.losses_figure(predictions, formulas.loss_curves(label, predictions), label, prediction),
            key="losses_chart",
        )


def backprop_section() -> None:
    """4. One backpropagation step on the 2-3-1 network, every number shown, checkable against Keras."""
    st.header("4. Backpropagation on the article's 2-3-1 network", anchor="backprop")
    forward_formulas, backward_formulas = st.columns(2)
    forward_formulas.latex(
        aligned(
            r"z^{(1)} &= x W^{(1)} + b^{(1)},\quad a^{(1)} = \sigma(z^{(1)})",
            r"z^{(2)} &= a^{(1)} W^{(2)} + b^{(2)},\quad \hat y = \sigma(z^{(2)})",
        )
    )
    forward_formulas.latex(r"L = -\big(y\log\hat y + (1-y)\log(1-\hat y)\big)")
    backward_formulas.latex(
        aligned(
            r"\delta^{(2)} &= \frac{\partial L}{\partial z^{(2)}} = \hat y - y",
            r"\delta^{(1)} &= \big(\delta^{(2)} W^{(2)\top}\big) \odot a^{(1)}(1 - a^{(1)})",
        )
    )
    backward_formulas.latex(
        aligned(
            r"\frac{\partial L}{\partial W^{(l)}} &= a^{(l-1)\top}\delta^{(l)},\quad "
            r"\frac{\partial L}{\partial b^{(l)}} = \delta^{(l)}",
            r"W &\leftarrow W - \eta\,\frac{\partial L}{\partial W}",
        )
    )
    sample_names = [f"x = {point}, y = {label}" for point, label in formulas.BACKPROP_SAMPLES]
    controls, picture = st.columns([2, 3])
    with controls:
        choice = st.selectbox("Sample", [*sample_names, "Type my own"], key="backprop_sample")
        if choice == "Type my own":
            first, second, third = st.columns(3)
            point = (
                first.number_input("x1", -5.0, 5.0, 1.0, 0.1, key="backprop_x1"),
                second.number_input("x2", -5.0, 5.0, -0.5, 0.1, key="backprop_x2"),
            )
            sample_label = third.selectbox("y", (0, 1), index=1, key="backprop_y")
        else:
            point, sample_label = formulas.BACKPROP_SAMPLES[sample_names.index(choice)]
        seed = st.number_input("Initial weights: random seed", 0, 9999, 0, key="backprop_seed")
        learning_rate = st.select_slider("Learning rate η", LEARNING_RATES, 0.5, key="backprop_learning_rate")
        network = formulas.initial_weights(int(seed))
        trace = formulas.backprop(network, point, sample_label, learning_rate)
        prediction_metric, loss_metric = st.columns(2)
        prediction_metric.metric("prediction ŷ", f"{trace.output_a[0, 0]:.6f}")
        loss_metric.metric("loss L", f"{trace.loss:.6f}")
    with picture:
        st.plotly_chart(charts.backprop_network_figure(network, trace), key="backprop_chart")
    backprop_numbers(network, trace, sample_label, learning_rate)
    after = formulas.backprop(trace.updated, point, sample_label, learning_rate)
    st.metric(
        "loss after the step",
        f"{after.loss:.6f}",
        delta=f"{after.loss - trace.loss:.6f}",
        delta_color="inverse",
    )
    backprop_check(network, point, sample_label)


def backprop_numbers(
    network: formulas.NetworkWeights, trace: formulas.BackpropTrace, sample_label: int, learning_rate: float
) -> None:
    """Every number of the forward pass, the backward pass and the step (two columns, so the matrices
    fit on a laptop; one under the other on a phone)."""
    forward, backward = st.columns(2)
    with forward:
        st.markdown("**Forward pass**")
        st.latex(rf"x = {matrix(trace.inputs)},\ y = {sample_label}")
        st.latex(rf"W^{{(1)}} = {matrix(network.hidden_kernel)}")
        st.latex(rf"b^{{(1)}} = {matrix(network.hidden_bias)}")
        st.latex(rf"z^{{(1)}} = {matrix(trace.hidden_z)}")
        st.latex(rf"a^{{(1)}} = {matrix(trace.hidden_a)}")
        st.latex(
            rf"W^{{(2)}} = {matrix(network.output_kernel)},\quad b^{{(2)}} = {network.output_bias[0]:.4f}"
        )
        st.latex(rf"z^{{(2)}} = {trace.output_z[0, 0]:.4f},\quad \hat y = {trace.output_a[0, 0]:.6f}")
        st.latex(rf"L = {trace.loss:.6f}")
    with backward:
        st.markdown("**Backward pass**")
        st.latex(rf"\delta^{{(2)}} = {trace.output_delta[0, 0]:.6f}")
        st.latex(rf"\delta^{{(1)}} = {matrix(trace.hidden_delta, 5)}")
        # \tfrac: the smaller label leaves the 2x3 matrix room on a phone.
        st.latex(rf"\tfrac{{\partial L}}{{\partial W^{{(1)}}}} = {matrix(trace.gradients.hidden_kernel, 5)}")
        st.latex(rf"\tfrac{{\partial L}}{{\partial b^{{(1)}}}} = {matrix(trace.gradients.hidden_bias, 5)}")
        st.latex(rf"\tfrac{{\partial L}}{{\partial W^{{(2)}}}} = {matrix(trace.gradients.output_kernel, 6)}")
        st.latex(rf"\tfrac{{\partial L}}{{\partial b^{{(2)}}}} = {trace.gradients.output_bias[0]:.6f}")
    st.markdown(f"**After one step, η = {learning_rate:g}**")
    first_layer, second_layer = st.columns(2)
    first_layer.latex(rf"W^{{(1)}} = {matrix(trace.updated.hidden_kernel)}")
    first_layer.latex(rf"b^{{(1)}} = {matrix(trace.updated.hidden_bias)}")
    second_layer.latex(rf"W^{{(2)}} = {matrix(trace.updated.output_kernel)}")
    second_layer.latex(rf"b^{{(2)}} = {trace.updated.output_bias[0]:.4f}")


def backprop_check(network: formulas.NetworkWeights, point, sample_label: int) -> None:
    """The same step by Keras' automatic differentiation, on request."""

    if st.button("Check against Keras autodiff", key="backprop_check"):
        with st.spinner("Building the same network in Keras (the first check also imports Keras' backend)…"):
            try:
                check = formulas.check_backprop_against_keras(network, point, sample_label)
            except ZooError as error:
                st.error(str(error))
            else:
                verdict = st.success if check.passed else st.error
                verdict(
                    f"Largest difference between these numbers and Keras' automatic differentiation "
                    f"(loss and all 13 gradients): {check.max_abs_difference:.2e} "
                    f"({'within' if check.passed else 'beyond'} {check.tolerance:g}). "
                    f"Keras took {check.seconds:.2f} s."
                )


def optimizers_section() -> None:
    """5. Gradient descent, momentum and Adam as formulas, then raced on a loss surface."""
    st.header("5. Optimizers", anchor="optimizers")
    gd_column, momentum_column, adam_column = st.columns([1, 1, 1.3])
    with gd_column:
        st.markdown("**Gradient descent**")
        st.latex(r"g_t = \nabla L(\theta_{t-1})")
        st.latex(r"\theta_t = \theta_{t-1} - \eta\, g_t")
    with momentum_column:
        st.markdown("**Momentum** (Polyak; Keras' SGD form below, the same updates)")
        st.latex(aligned(r"v_t &= \mu v_{t-1} + \eta g_t", r"\theta_t &= \theta_{t-1} - v_t"))
        st.latex(aligned(r"m_t &= \mu m_{t-1} - \eta g_t", r"\theta_t &= \theta_{t-1} + m_t"))
    with adam_column:
        st.markdown("**Adam** (Kingma & Ba, 2015, Algorithm 1)")
        st.latex(r"m_t = \beta_1 m_{t-1} + (1-\beta_1)\, g_t")
        st.latex(r"v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2")
        st.latex(r"\hat m_t = \frac{m_t}{1-\beta_1^t},\quad \hat v_t = \frac{v_t}{1-\beta_2^t}")
        st.latex(r"\theta_t = \theta_{t-1} - \eta\,\frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}")
    st.warning(
        "The article's Adam formula is garbled. Above is Adam as Kingma & Ba define it: two moving averages "
        "(of the gradient and of its square), each divided by 1 − βᵗ to undo their bias towards zero in the "
        "first steps, then a step of η · m̂ / (√v̂ + ε). Keras computes the same update in the order the paper "
        "recommends for efficiency, with its small guard ε̂ in place of ε·√(1 − β₂ᵗ); that is what runs here:"
    )
    st.latex(
        aligned(
            r"\eta_t &= \eta\,\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}",
            r"\theta_t &= \theta_{t-1} - \eta_t\,\frac{m_t}{\sqrt{v_t} + \hat\epsilon}",
            r"\hat\epsilon &= 10^{-7}",
        )
    )
    st.caption(
        "These numpy updates match keras.optimizers.SGD (momentum 0 and 0.9) and keras.optimizers.Adam "
        "step for step over 100 steps on each surface below (tests/test_formulas.py). One detail matters "
        "at that precision: Keras turns each hyper-parameter into a float32 tensor, so β₂ = 0.999 is "
        "really 0.99900001."
    )

    st.subheader("The optimizer race")
    controls, picture = st.columns([1, 3])
    with controls:
        surface_name = st.selectbox(
            "Loss surface",
            list(formulas.SURFACES),
            format_func=lambda name: formulas.SURFACES[name].title,
            key="race_surface",
            on_change=use_surface_learning_rates,
        )
        surface = formulas.SURFACES[surface_name]
        st.latex(surface.latex)
        st.session_state.setdefault("race_learning_rate", surface.learning_rate)
        st.session_state.setdefault("race_adam_learning_rate", surface.adam_learning_rate)
        race_learning_rate = st.select_slider(
            "Learning rate η (gradient descent, momentum)", LEARNING_RATES, key="race_learning_rate"
        )
        adam_learning_rate = st.select_slider(
            "Adam learning rate η", LEARNING_RATES, key="race_adam_learning_rate"
        )
        momentum = st.slider("Momentum μ", 0.0, 0.99, 0.9, 0.01, key="race_momentum")
        beta_1 = st.slider("Adam β₁", 0.0, 0.99, 0.9, 0.01, key="race_beta_1")
        beta_2 = st.select_slider("Adam β₂", (0.9, 0.99, 0.999, 0.9999), 0.999, key="race_beta_2")
        num_steps = st.slider("Steps", 10, 500, 150, 10, key="race_steps")
    settings = formulas.OptimizerSettings(
        learning_rate=race_learning_rate, momentum=momentum, beta_1=beta_1, beta_2=beta_2
    )
    race = formulas.optimizer_race(surface_name, settings, adam_learning_rate, num_steps)
    with picture:
        xs, ys, values = formulas.surface_grid(surface_name)
        st.plotly_chart(
            charts.optimizer_race_figure(
                xs, ys, values, race, surface.minimum, f"{surface.title}: press ▶ Play below"
            ),
            key="race_chart",
        )
        for column, (name, trajectory) in zip(st.columns(len(race)), race.items(), strict=True):
            column.metric(
                f"{OPTIMIZER_LABELS[name]}: final loss",
                "diverged" if trajectory.diverged else f"{trajectory.losses[-1]:.3g}",
                help=f"after {len(trajectory.points) - 1} steps, at ({trajectory.points[-1][0]:.3f}, "
                f"{trajectory.points[-1][1]:.3f})",
            )
        st.plotly_chart(charts.loss_over_steps_figure(race), key="race_losses_chart")


def convolution_section() -> None:
    """6. A 3x3 kernel sliding over a digit, then ReLU and max pooling; checkable against Keras."""
    st.header("6. Convolution and pooling", anchor="convolution")
    convolution_formula, pooling_formula = st.columns(2)
    convolution_formula.latex(
        aligned(r"\mathrm{out}[i, j] &= \sum_{u=0}^{2}\sum_{v=0}^{2} K[u, v]\; X[i+u,\, j+v]", r"&\quad + b")
    )
    pooling_formula.latex(
        aligned(
            r"\mathrm{pool}[i, j] &= \max_{u, v \in \{0, 1\}}",
            r"&\quad \mathrm{ReLU}(\mathrm{out})[2i+u,\, 2j+v]",
        )
    )
    test_digits, test_labels = ui.mnist_test_set("embedded")
    controls, kernel_column = st.columns([2, 1])
    with controls:
        digit_index = st.number_input(
            f"Digit (index in the embedded MNIST test set, 0–{len(test_digits) - 1})",
            0,
            len(test_digits) - 1,
            0,
            key="conv_digit",
        )
        kernel_name = st.selectbox("Kernel", list(formulas.KERNELS), key="conv_kernel")
        st.caption(
            f"This digit is a {test_labels[int(digit_index)]}; pixels scaled to [0, 1] as for training."
        )
        image = test_digits[int(digit_index)] / 255.0
        kernel = formulas.KERNELS[kernel_name]
        feature_map = formulas.convolve2d(image, kernel)
        step_number = st.slider("Kernel position (step)", 1, feature_map.size, 300, key="conv_step")
        step = formulas.convolution_step(image, kernel, int(step_number))
        st.latex(
            aligned(
                rf"\mathrm{{out}}[{step.row}, {step.column}] &= \textstyle\sum X_\mathrm{{window}} \odot K "
                rf"= {step.value:.4f}",
                rf"X_\mathrm{{window}} &= {matrix(step.window, 2)}",
                rf"K &= {matrix(kernel, 2)}",
            )
        )
        st.metric(f"out[{step.row}, {step.column}]", f"{step.value:.4f}")
    with kernel_column:
        st.plotly_chart(charts.kernel_figure(kernel, f"kernel: {kernel_name}"), key="conv_kernel_chart")
        st.plotly_chart(charts.kernel_figure(step.products, "window ⊙ kernel"), key="conv_products_chart")
    digit_column, output_column = st.columns(2)
    digit_figure, output_figure = charts.convolution_figures(image, step, feature_map)
    digit_column.plotly_chart(digit_figure, key="conv_digit_chart")
    output_column.plotly_chart(output_figure, key="conv_output_chart")

    st.markdown(
        f"**Pooling.** A ReLU, then 2×2 max pooling, halves the "
        f"{feature_map.shape[0]}×{feature_map.shape[1]} feature map: each output keeps the strongest "
        "response of its 2×2 block, so the next layer sees the "
        "same feature even if it moves by a pixel."
    )
    rectified = formulas.activation("relu", feature_map)
    pooled = formulas.max_pool(rectified)
    relu_column, pool_column = st.columns(2)
    relu_column.plotly_chart(
        charts.digit_heatmap(
            rectified, f"ReLU(feature map), {rectified.shape[0]}×{rectified.shape[1]}", size=320
        ),
        key="conv_relu_chart",
    )
    pool_column.plotly_chart(
        charts.digit_heatmap(pooled, f"2×2 max pool, {pooled.shape[0]}×{pooled.shape[1]}", size=320),
        key="conv_pool_chart",
    )
    if st.button("Check against keras.layers.Conv2D with the same kernel", key="conv_check"):
        with st.spinner(
            "Running the same kernel through Keras (the first check also imports Keras' backend)…"
        ):
            check = formulas.check_convolution_against_keras(image, kernel)
        verdict = st.success if check.passed else st.error
        verdict(
            "Largest difference between this feature map and Keras' Conv2D output: "
            f"{check.max_abs_difference:.2e} "
            f"({'within' if check.passed else 'beyond'} {check.tolerance:g}). "
            f"Keras took {check.seconds:.2f} s."
        )


def pipeline_section() -> None:
    """7. The article's pipeline, each step linked to the page that does it."""
    st.header("7. How it fits together", anchor="pipeline")
    st.write("The article's pipeline. Each box links to the page of Zoo Studio that does that step.")
    # A page's URL path is its file name without .py (st.Page's default), relative to this page's URL.
    st.plotly_chart(
        charts.pipeline_figure(
            [(title, caption, path.removeprefix("pages/")[:-3]) for title, caption, path in PIPELINE]
        ),
        key="pipeline_chart",
    )
    user = ui.current_user()
    for column, (title, _, path) in zip(st.columns(len(PIPELINE)), PIPELINE, strict=True):
        if ui.page_is_open(path, user):  # a visitor who is not signed in has no Train, Runs or Hub page
            column.page_link(path, label=title)
        else:
            column.caption(f"{title} (sign in)")
    st.page_link("pages/home.py", label="Back to Home", icon="🏠")


def learn_page() -> None:
    """Every formula of the articles, in their order, each next to a live picture."""
    ui.run_through_app()
    st.title("Learn: the maths behind the models")
    st.write(
        "Every formula of the articles, in their order, computed live in plain numpy next to a picture. "
        "Move a control and every number follows. The buttons marked *check* run the same computation "
        "in Keras and show the difference."
    )
    neuron_section()
    activations_section()
    losses_section()
    backprop_section()
    optimizers_section()
    convolution_section()
    pipeline_section()


learn_page()
