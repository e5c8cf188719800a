// The Playground's canvases, kept in the page while a run trains so that a new surface costs one
// redraw (a Plotly chart is remounted at every new figure: ~6x the browser's time):
// - the plane (data.kind "plane"): P(class 1) over the plane, the 0.5 boundary, the train points
//   (filled) and the test points (open);
// - the hidden units' maps (data.kind "maps"): each unit's activation over the plane, a row per layer.
// The data comes from zoo/app/charts/playground.py (plane_data, unit_maps_data); its keys are there.

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

// A grid's values (row 0 at the bottom) as an image of one pixel per value, coloured on ``scale``
// from ``low`` to ``high``; drawn stretched with smoothing over its cells, as TensorFlow Playground does.
function gridImage(grid, scale, low, high) {
  const rows = grid.length, columns = grid[0].length;
  const cells = document.createElement("canvas");
  cells.width = columns;
  cells.height = rows;
  const cellContext = cells.getContext("2d");
  const image = cellContext.createImageData(columns, rows);
  const span = high - low || 1;
  grid.forEach((row, i) => row.forEach((value, j) => {
    image.data.set([...colorAt(scale, (value - low) / span), 255], 4 * ((rows - 1 - i) * columns + j));
  }));
  cellContext.putImageData(image, 0, 0);
  return cells;
}

// Size ``canvas`` to ``width`` x ``height`` CSS pixels, sharp on this screen; its 2-D context, cleared.
function sizedContext(canvas, width, height) {
  const ratio = window.devicePixelRatio || 1;
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const context = canvas.getContext("2d");
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  return context;
}

// Where the values ``x`` and ``y`` are in the plot box spanning ``xRange`` and ``yRange``.
function scales(box, xRange, yRange) {
  return [
    (x) => box.left + ((x - xRange[0]) / (xRange[1] - xRange[0])) * box.width,
    (y) => box.top + box.height - ((y - yRange[0]) / (yRange[1] - yRange[0])) * box.height,
  ];
}

// A frame around the plot box and the ticks' values of its x range (below) and y range (left).
function drawAxes(context, box, xRange, yRange, color) {
  const { left, top, width, height } = box;
  const [px, py] = scales(box, xRange, yRange);
  context.fillStyle = color;
  context.strokeStyle = color;
  context.lineWidth = 1;
  context.font = "11px sans-serif";
  context.strokeRect(left, top, width, height);
  context.textAlign = "center";
  context.textBaseline = "top";
  for (const x of ticks(...xRange, 6)) context.fillText(String(x), px(x), top + height + 6);
  context.textAlign = "right";
  context.textBaseline = "middle";
  for (const y of ticks(...yRange, 5)) context.fillText(String(y), left - 6, py(y));
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

function buildPlane(root) {
  root.innerHTML = `<div class="zoo-title"></div>
    <div class="zoo-plane-area"><canvas></canvas><div class="zoo-plane-hover" hidden></div></div>
    <div class="zoo-legend"></div>`;
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

function drawPlane(root, data) {
  const canvas = root.querySelector("canvas");
  const width = Math.max(root.clientWidth, 200);
  // The plot keeps the plane's aspect (one unit is as long on both axes), at most HEIGHT tall.
  const [x0, x1] = data.x, [y0, y1] = data.y;
  const roomWidth = width - MARGIN.left - MARGIN.right;
  const unit = Math.min(roomWidth / (x1 - x0), (HEIGHT - MARGIN.top - MARGIN.bottom) / (y1 - y0));
  const plotWidth = unit * (x1 - x0), plotHeight = unit * (y1 - y0);
  const height = plotHeight + MARGIN.top + MARGIN.bottom;
  const left = MARGIN.left + (roomWidth - plotWidth) / 2, top = MARGIN.top;
  const box = { left, top, width: plotWidth, height: plotHeight };
  const [px, py] = scales(box, [x0, x1], [y0, y1]);
  const context = sizedContext(canvas, width, height);
  const textColor = getComputedStyle(root).color;
  const scale = data.colorscale.map(hexToRgb);

  const surface = data.surface;
  if (surface) {
    const rows = surface.probability.length, columns = surface.probability[0].length;
    const cells = gridImage(surface.probability, scale, 0, 1);
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

  drawAxes(context, box, [x0, x1], [y0, y1], textColor);

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
  root.querySelector(".zoo-title").textContent = data.title;
  root.querySelector(".zoo-legend").innerHTML = data.class_colors.map((color, label) =>
    `<span><i style="background:${color}"></i>class ${label}</span>`).join("") +
    "<span>filled: train · open: test</span>";
  canvas.dataset.frame = data.frame;
}

// The maps' elements: a row per layer (its name, then a captioned canvas per unit); made again only
// when the network's shape changes.
function drawMaps(root, data) {
  const shape = data.layers.map((units) => units.length).join(",");
  if (root.dataset.shape !== shape) {
    root.dataset.shape = shape;
    const columns = Math.max(...data.layers.map((units) => units.length));
    root.innerHTML = data.layers.map((units, layer) => `<div class="zoo-maps-layer">
      <div class="zoo-maps-name">layer ${layer + 1}</div>
      <div class="zoo-maps-units" style="grid-template-columns: repeat(${columns}, minmax(0, 1fr))">
        ${units.map((_, unit) => `<figure><figcaption>unit ${unit + 1}</figcaption><canvas></canvas></figure>`).join("")}
      </div></div>`).join("");
  }
  const scale = data.colorscale.map(hexToRgb);
  const canvases = root.querySelectorAll("canvas");
  data.layers.flat().forEach((values, index) => {
    const canvas = canvases[index];
    const size = Math.min(Math.max(canvas.parentElement.clientWidth, 16), 150);
    const context = sizedContext(canvas, size, size);
    context.imageSmoothingEnabled = true;
    context.drawImage(gridImage(values, scale, 0, 255), 0, 0, size, size);
  });
  root.dataset.frame = data.frame;
}

// The loss curves: a line per series against the epoch, the y axis from 0, a legend below.
function drawLoss(root, data) {
  if (!root.querySelector("canvas")) {
    root.innerHTML = `<div class="zoo-title"></div><canvas></canvas><div class="zoo-legend"></div>`;
  }
  const canvas = root.querySelector("canvas");
  const width = Math.max(root.clientWidth, 200), height = 260;
  const context = sizedContext(canvas, width, height);
  const textColor = getComputedStyle(root).color;
  const box = { left: 44, top: 8, width: width - 44 - 16, height: height - 8 - 40 };
  const xs = data.series.flatMap((series) => series.x), ys = data.series.flatMap((series) => series.y);
  const xRange = xs.length ? [Math.min(...xs), Math.max(Math.max(...xs), Math.min(...xs) + 1)] : [0, 1];
  const yRange = [0, ys.length ? Math.max(...ys) * 1.05 || 1 : 1];
  drawAxes(context, box, xRange, yRange, textColor);
  context.textAlign = "center";
  context.textBaseline = "bottom";
  context.fillText(data.x_title, box.left + box.width / 2, height - 2);
  const [px, py] = scales(box, xRange, yRange);
  for (const series of data.series) {
    context.strokeStyle = series.color;
    context.lineWidth = 2;
    context.beginPath();
    series.x.forEach((x, index) => (index ? context.lineTo : context.moveTo).call(context, px(x), py(series.y[index])));
    context.stroke();
  }
  root.querySelector(".zoo-title").textContent = data.title;
  root.querySelector(".zoo-legend").innerHTML = data.series.map((series) =>
    `<span><i style="background:${series.color}"></i>${series.name}</span>`).join("");
  root.dataset.frame = data.frame;
}

const DRAW = { plane: drawPlane, maps: drawMaps, loss: drawLoss };

export default function (component) {
  const { data, parentElement } = component;
  let root = parentElement.querySelector(`.zoo-${data.kind}`);
  if (!root) {
    root = document.createElement("div");
    root.className = `zoo-${data.kind}`;
    parentElement.appendChild(root);
    if (data.kind === "plane") buildPlane(root);
  }
  root.zooData = data;
  DRAW[data.kind](root, data);
  if (!root.zooResize) {
    let width = root.clientWidth;
    root.zooResize = new ResizeObserver(() => {
      if (root.clientWidth !== width) {
        width = root.clientWidth;
        DRAW[root.zooData.kind](root, root.zooData);
      }
    });
    root.zooResize.observe(root);
  }
}
