// The Playground's plane: P(class 1) over the plane, the 0.5 boundary, the train points (filled) and
// the test points (open), drawn on a canvas that stays in the page while the run trains, so a new
// surface costs one redraw (a Plotly chart is remounted at every new figure: ~6x the browser's time).
// The data comes from zoo/app/charts/plane.py (plane_data); its keys are documented there.

const MARGIN = { left: 40, right: 64, top: 8, bottom: 30 };
const HEIGHT = 440;

function hexToRgb(hex) {
  const value = parseInt(hex.slice(1), 16);
  return [(value >> 16) & 255, (value >> 8) & 255, value & 255];
}

// The colour of probability p on the scale [[0, c0], [0.5, c1], [1, c2]].
function colorAt(scale, p) {
  const [low, high, t] = p < 0.5 ? [scale[0], scale[1], p * 2] : [scale[1], scale[2], (p - 0.5) * 2];
  return low.map((channel, index) => Math.round(channel + (high[index] - channel) * t));
}

function ticks(low, high, count) {
  const step = Math.pow(10, Math.floor(Math.log10((high - low) / count)));
  const nice = [1, 2, 5, 10].map((factor) => factor * step).find((size) => (high - low) / size <= count);
  const values = [];
  for (let value = Math.ceil(low / nice) * nice; value <= high + 1e-9; value += nice) values.push(value);
  return values.map((value) => Number(value.toFixed(6)));
}

// The segments where the grid crosses 0.5 (marching squares, linear between grid points).
function halfSegments(probability, xs, ys) {
  const segments = [];
  const at = (i, j) => probability[i][j] - 0.5;
  const cross = (x0, y0, v0, x1, y1, v1) => {
    const t = v0 / (v0 - v1);
    return [x0 + (x1 - x0) * t, y0 + (y1 - y0) * t];
  };
  for (let i = 0; i + 1 < ys.length; i++) {
    for (let j = 0; j + 1 < xs.length; j++) {
      const corners = [
        [xs[j], ys[i], at(i, j)], [xs[j + 1], ys[i], at(i, j + 1)],
        [xs[j + 1], ys[i + 1], at(i + 1, j + 1)], [xs[j], ys[i + 1], at(i + 1, j)],
      ];
      const points = [];
      for (let k = 0; k < 4; k++) {
        const [a, b] = [corners[k], corners[(k + 1) % 4]];
        if ((a[2] < 0) !== (b[2] < 0)) points.push(cross(...a, ...b));
      }
      if (points.length >= 2) segments.push(points.slice(0, 2));
      if (points.length === 4) segments.push(points.slice(2, 4));
    }
  }
  return segments;
}

function build(root) {
  root.innerHTML = `<div class="zoo-plane-title"></div>
    <div class="zoo-plane-area"><canvas></canvas><div class="zoo-plane-hover" hidden></div></div>
    <div class="zoo-plane-legend"></div>`;
  const canvas = root.querySelector("canvas");
  const hover = root.querySelector(".zoo-plane-hover");
  canvas.addEventListener("mousemove", (event) => {
    const view = root.zooView;
    const box = canvas.getBoundingClientRect();
    const [x, y] = view ? view.toData(event.clientX - box.left, event.clientY - box.top) : [NaN, NaN];
    const inside = view && x >= view.x[0] && x <= view.x[1] && y >= view.y[0] && y <= view.y[1];
    hover.hidden = !inside;
    if (!inside) return;
    let text = `x=${x.toFixed(2)}, y=${y.toFixed(2)}`;
    const p = view.probabilityAt(x, y);
    if (p !== null) text += `, P(1)=${p.toFixed(2)}`;
    hover.textContent = text;
    hover.style.left = `${event.clientX - box.left + 12}px`;
    hover.style.top = `${event.clientY - box.top + 12}px`;
  });
  canvas.addEventListener("mouseleave", () => { hover.hidden = true; });
}

function draw(root, data) {
  const canvas = root.querySelector("canvas");
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(root.clientWidth, 200);
  // The plot keeps the plane's aspect (one unit is as long on both axes), at most HEIGHT tall.
  const [x0, x1] = data.x, [y0, y1] = data.y;
  const roomWidth = width - MARGIN.left - MARGIN.right;
  const unit = Math.min(roomWidth / (x1 - x0), (HEIGHT - MARGIN.top - MARGIN.bottom) / (y1 - y0));
  const plotWidth = unit * (x1 - x0), plotHeight = unit * (y1 - y0);
  const height = plotHeight + MARGIN.top + MARGIN.bottom;
  const left = MARGIN.left + (roomWidth - plotWidth) / 2, top = MARGIN.top;
  const px = (x) => left + (x - x0) * unit, py = (y) => top + (y1 - y) * unit;
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const context = canvas.getContext("2d");
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  const textColor = getComputedStyle(root).color;
  const scale = data.colorscale.map(hexToRgb);
  context.clearRect(0, 0, width, height);

  const surface = data.surface;
  if (surface) {
    // One pixel per grid point, stretched over its cells with smoothing, as TensorFlow Playground does.
    const rows = surface.probability.length, columns = surface.probability[0].length;
    const cells = document.createElement("canvas");
    cells.width = columns;
    cells.height = rows;
    const cellContext = cells.getContext("2d");
    const image = cellContext.createImageData(columns, rows);
    surface.probability.forEach((row, i) => row.forEach((p, j) => {
      const offset = 4 * ((rows - 1 - i) * columns + j);
      image.data.set([...colorAt(scale, p), 255], offset);
    }));
    cellContext.putImageData(image, 0, 0);
    context.imageSmoothingEnabled = true;
    const dx = (surface.x[columns - 1] - surface.x[0]) / Math.max(columns - 1, 1);
    const dy = (surface.y[rows - 1] - surface.y[0]) / Math.max(rows - 1, 1);
    context.save();
    context.beginPath();
    context.rect(left, top, plotWidth, plotHeight);
    context.clip();
    context.drawImage(cells, px(surface.x[0] - dx / 2), py(surface.y[rows - 1] + dy / 2),
      columns * dx * unit, rows * dy * unit);
    context.strokeStyle = "black";
    context.lineWidth = 2;
    context.beginPath();
    for (const [[ax, ay], [bx, by]] of halfSegments(surface.probability, surface.x, surface.y)) {
      context.moveTo(px(ax), py(ay));
      context.lineTo(px(bx), py(by));
    }
    context.stroke();
    context.restore();
    // The colour bar: P(1) from 0 (bottom) to 1 (top).
    const barLeft = width - MARGIN.right + 14, barHeight = Math.min(plotHeight, 200);
    for (let k = 0; k < barHeight; k++) {
      context.fillStyle = `rgb(${colorAt(scale, 1 - k / barHeight).join(",")})`;
      context.fillRect(barLeft, top + k, 12, 1);
    }
    context.fillStyle = textColor;
    context.font = "11px sans-serif";
    context.textAlign = "left";
    context.textBaseline = "middle";
    [[1, "1"], [0.5, "0.5"], [0, "0"]].forEach(([p, label]) => context.fillText(label, barLeft + 16, top + (1 - p) * barHeight));
    context.fillText("P(1)", barLeft - 2, top + barHeight + 12);
  }

  // The points: train filled (white rim), test open, in their class's colour.
  for (const [split, filled] of [["train", true], ["test", false]]) {
    for (const [x, y, label] of data.points[split]) {
      context.beginPath();
      context.arc(px(x), py(y), 3.5, 0, 2 * Math.PI);
      if (filled) {
        context.fillStyle = data.class_colors[label];
        context.fill();
        context.strokeStyle = "white";
        context.lineWidth = 0.5;
      } else {
        context.strokeStyle = data.class_colors[label];
        context.lineWidth = 1.5;
      }
      context.stroke();
    }
  }

  // The axes' ticks.
  context.fillStyle = textColor;
  context.strokeStyle = textColor;
  context.lineWidth = 1;
  context.font = "11px sans-serif";
  context.strokeRect(left, top, plotWidth, plotHeight);
  context.textAlign = "center";
  context.textBaseline = "top";
  for (const x of ticks(x0, x1, 6)) context.fillText(String(x), px(x), top + plotHeight + 6);
  context.textAlign = "right";
  context.textBaseline = "middle";
  for (const y of ticks(y0, y1, 6)) context.fillText(String(y), left - 6, py(y));

  root.zooView = {
    x: [x0, x1],
    y: [y0, y1],
    toData: (cx, cy) => [x0 + (cx - left) / unit, y1 - (cy - top) / unit],
    probabilityAt: (x, y) => {
      if (!surface) return null;
      const nearest = (values, value) => values.reduce((best, v, k) => (Math.abs(v - value) < Math.abs(values[best] - value) ? k : best), 0);
      return surface.probability[nearest(surface.y, y)][nearest(surface.x, x)];
    },
  };
  root.querySelector(".zoo-plane-title").textContent = data.title;
  root.querySelector(".zoo-plane-legend").innerHTML = data.class_colors.map((color, label) =>
    `<span><i style="background:${color}"></i>class ${label}</span>`).join("") +
    "<span>filled: train · open: test</span>";
  canvas.dataset.frame = data.frame;
}

export default function (component) {
  const { data, parentElement } = component;
  let root = parentElement.querySelector(".zoo-plane");
  if (!root) {
    root = document.createElement("div");
    root.className = "zoo-plane";
    parentElement.appendChild(root);
    build(root);
  }
  root.zooData = data;
  draw(root, data);
  if (!root.zooResize) {
    let width = root.clientWidth;
    root.zooResize = new ResizeObserver(() => {
      if (root.clientWidth !== width) {
        width = root.clientWidth;
        draw(root, root.zooData);
      }
    });
    root.zooResize.observe(root);
  }
}
