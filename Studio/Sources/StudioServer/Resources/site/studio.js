// ConvNet Studio: the page's logic. No libraries; everything it shows comes from the studio's API.
'use strict';

const $ = (id) => document.getElementById(id);
const studio = { model: null, pixels: null, prediction: null, maps: null, sequence: 0, shown: 0, confusion: null };
window.studio = studio;

async function api(path, body) {
  const init = body === undefined ? {} : { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) };
  const response = await fetch(path, init);
  const data = await response.json();
  if (!response.ok) throw new StudioError(data.error || response.statusText, response.status);
  return data;
}
class StudioError extends Error {
  constructor(message, status) { super(message); this.status = status; }
}

function floats(b64) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Float32Array(bytes.buffer);
}
function bytes(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
function element(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
const percent = (p) => (100 * p).toFixed(1) + '%';

// ---------------------------------------------------------------- model

async function loadModel() {
  const info = await api('/api/model');
  studio.model = info;
  const offer = $('offer');
  if (info.loaded) {
    let text = `${info.name} on ${info.dataset || 'an unknown data set'} · ${info.parameters.toLocaleString('en')} parameters · input ${info.input_shape.join('x')} · ${info.source}`;
    $('model-info').textContent = text;
    if (info.run) {
      const runs = await api('/api/runs');
      const run = runs.find((r) => r.name === info.run);
      if (run && run.has_report) {
        $('model-info').append(' · ', element('a', { href: `/runs/${encodeURIComponent(info.run)}/report.html`, id: 'report-link' }, 'report'));
      }
    }
    offer.hidden = true;
    $('draw-note').textContent = info.can_draw ? '' : `This network takes ${info.input_shape.join('x')} inputs; drawing needs a 1- or 3-channel image network.`;
  } else {
    $('model-info').textContent = 'no model loaded';
    $('offer-text').textContent = info.note;
    offer.hidden = false;
  }
  document.body.dataset.modelLoaded = String(info.loaded);
  fillTrainForm(info);
  showBars(null);
}

// ---------------------------------------------------------------- drawing pad

const SIZE = 28;
const ink = new Float32Array(SIZE * SIZE);
const pad = $('pad');
const padContext = pad.getContext('2d');
let drawing = false;
let last = null;

function paintPad() {
  const image = padContext.createImageData(SIZE, SIZE);
  for (let i = 0; i < SIZE * SIZE; i++) {
    const v = Math.round(ink[i] * 255);
    image.data[4 * i] = v; image.data[4 * i + 1] = v; image.data[4 * i + 2] = v; image.data[4 * i + 3] = 255;
  }
  const small = document.createElement('canvas');
  small.width = SIZE; small.height = SIZE;
  small.getContext('2d').putImageData(image, 0, 0);
  padContext.imageSmoothingEnabled = false;
  padContext.drawImage(small, 0, 0, pad.width, pad.height);
}

// The pen: full ink within 0.9 px of the stroke's centre, fading out by 1.9 px, so a stroke is about
// 3 px wide with soft edges, as MNIST's digits are.
function stamp(x, y) {
  for (let j = Math.max(0, Math.floor(y - 2)); j <= Math.min(SIZE - 1, Math.floor(y + 2)); j++) {
    for (let i = Math.max(0, Math.floor(x - 2)); i <= Math.min(SIZE - 1, Math.floor(x + 2)); i++) {
      const d = Math.hypot(i + 0.5 - x, j + 0.5 - y);
      const v = Math.min(1, Math.max(0, 1.9 - d));
      if (v > ink[j * SIZE + i]) ink[j * SIZE + i] = v;
    }
  }
}
function segment(a, b) {
  const steps = Math.max(1, Math.ceil(Math.hypot(b.x - a.x, b.y - a.y) / 0.2));
  for (let s = 1; s <= steps; s++) stamp(a.x + (b.x - a.x) * s / steps, a.y + (b.y - a.y) * s / steps);
}
function padPoint(e) {
  const r = pad.getBoundingClientRect();
  return { x: (e.clientX - r.left) / r.width * SIZE, y: (e.clientY - r.top) / r.height * SIZE };
}
pad.addEventListener('pointerdown', (e) => {
  e.preventDefault();
  pad.setPointerCapture(e.pointerId);
  drawing = true;
  last = padPoint(e);
  stamp(last.x, last.y);
  paintPad();
});
pad.addEventListener('pointermove', (e) => {
  if (!drawing) return;
  const p = padPoint(e);
  segment(last, p);
  last = p;
  paintPad();
  if (!predictInFlight) predict(false);
});
function strokeEnd() {
  if (!drawing) return;
  drawing = false;
  predict(true);
}
pad.addEventListener('pointerup', strokeEnd);
pad.addEventListener('pointercancel', strokeEnd);
$('clear').addEventListener('click', () => {
  ink.fill(0);
  paintPad();
  studio.pixels = null;
  studio.prediction = null;
  showBars(null);
  $('maps').replaceChildren();
  $('timing').textContent = '';
});

let predictInFlight = false;
async function predict(strokeEnded) {
  if (!studio.model || !studio.model.loaded || !studio.model.can_draw) return;
  const started = performance.now();
  const sequence = ++studio.sequence;
  const pixels = Array.from(ink, (v) => Math.round(v * 255));
  predictInFlight = true;
  try {
    const prediction = await api('/api/predict', { pixels });
    if (sequence < studio.shown) return;
    studio.shown = sequence;
    studio.pixels = pixels;
    studio.prediction = prediction;
    showBars(prediction);
    const ms = performance.now() - started;
    if (strokeEnded) {
      $('timing').textContent = `bars ${ms.toFixed(1)} ms after the stroke (server ${prediction.milliseconds.toFixed(2)} ms)`;
      document.body.dataset.strokeMs = ms.toFixed(2);
      document.body.dataset.predictions = String(sequence);
      await showMaps(pixels, sequence);
    }
  } catch (error) {
    $('draw-note').textContent = error.message;
  } finally {
    predictInFlight = false;
  }
}

function showBars(prediction) {
  const bars = $('bars');
  bars.replaceChildren();
  const labels = prediction ? prediction.labels : (studio.model && studio.model.labels) || [];
  labels.forEach((label, i) => {
    const p = prediction ? prediction.probabilities[i] : 0;
    const row = element('div', { class: 'bar-row', 'data-class': String(i), 'data-probability': String(p) });
    if (prediction && i === prediction.predicted) row.classList.add('best');
    const fill = element('div', { class: 'bar-fill' });
    fill.style.width = (100 * p).toFixed(2) + '%';
    const track = element('div', { class: 'bar-track' });
    track.append(fill);
    row.append(element('span', { class: 'bar-label' }, label), track, element('span', { class: 'bar-value' }, prediction ? percent(p) : ''));
    bars.append(row);
  });
  const shown = $('predicted-class');
  shown.textContent = prediction ? prediction.label : '–';
  shown.dataset.class = prediction ? String(prediction.predicted) : '';
}

// ---------------------------------------------------------------- feature maps

function grayCanvas(values, offset, w, h, lo, hi, scale) {
  const c = element('canvas', { width: String(w), height: String(h) });
  c.style.width = (w * scale) + 'px';
  c.style.height = (h * scale) + 'px';
  const image = c.getContext('2d').createImageData(w, h);
  const range = hi > lo ? hi - lo : 1;
  for (let k = 0; k < w * h; k++) {
    const v = Math.round(255 * (values[offset + k] - lo) / range);
    image.data[4 * k] = v; image.data[4 * k + 1] = v; image.data[4 * k + 2] = v; image.data[4 * k + 3] = 255;
  }
  c.getContext('2d').putImageData(image, 0, 0);
  return c;
}
function divergingCanvas(values, offset, w, h, extent, scale) {
  const c = element('canvas', { width: String(w), height: String(h) });
  c.style.width = (w * scale) + 'px';
  c.style.height = (h * scale) + 'px';
  const image = c.getContext('2d').createImageData(w, h);
  for (let k = 0; k < w * h; k++) {
    const t = extent > 0 ? Math.max(-1, Math.min(1, values[offset + k] / extent)) : 0;
    const [r, g, b] = t >= 0 ? [255, 255 - 120 * t, 255 - 220 * t] : [255 + 200 * t, 255 + 120 * t, 255];
    image.data[4 * k] = r; image.data[4 * k + 1] = g; image.data[4 * k + 2] = b; image.data[4 * k + 3] = 255;
  }
  c.getContext('2d').putImageData(image, 0, 0);
  return c;
}
function hoverable(canvas, layerName, channel, values, offset, w, h) {
  canvas.dataset.layer = layerName;
  canvas.dataset.channel = String(channel);
  canvas.addEventListener('mousemove', (e) => {
    const r = canvas.getBoundingClientRect();
    const x = Math.min(w - 1, Math.max(0, Math.floor((e.clientX - r.left) / r.width * w)));
    const y = Math.min(h - 1, Math.max(0, Math.floor((e.clientY - r.top) / r.height * h)));
    const v = values[offset + y * w + x];
    const box = $('hover-value');
    box.textContent = `${layerName} · channel ${channel} · x ${x}, y ${y} = ${v.toPrecision(6)}`;
    box.dataset.layer = layerName; box.dataset.channel = String(channel);
    box.dataset.x = String(x); box.dataset.y = String(y); box.dataset.value = String(v);
  });
}

async function showMaps(pixels, sequence) {
  const maps = await api('/api/maps', { pixels });
  if (sequence !== studio.shown) return;
  studio.maps = maps;
  const root = $('maps');
  root.replaceChildren();
  for (const layer of [maps.input].concat(maps.layers)) {
    const values = floats(layer.data);
    const box = element('div', { class: 'layer', 'data-layer': layer.name });
    box.append(element('div', { class: 'layer-title' },
      `${layer.name} (${layer.kind}) ${layer.shape.join(' × ')} · min ${layer.min.toPrecision(4)} · max ${layer.max.toPrecision(4)}`));
    const row = element('div', { class: 'layer-maps' });
    if (layer.shape.length === 3) {
      const [c, h, w] = layer.shape;
      const scale = w >= 20 ? 2 : (w >= 10 ? 4 : 8);
      for (let k = 0; k < c; k++) {
        const canvas = grayCanvas(values, k * h * w, w, h, layer.min, layer.max, scale);
        hoverable(canvas, layer.name, k, values, k * h * w, w, h);
        row.append(canvas);
      }
    } else {
      const n = values.length;
      const canvas = grayCanvas(values, 0, n, 1, layer.min, layer.max, n > 200 ? 1 : 12);
      canvas.style.height = '14px';
      hoverable(canvas, layer.name, 0, values, 0, n, 1);
      row.append(canvas);
    }
    box.append(row);
    root.append(box);
  }
  const filters = $('filters');
  filters.replaceChildren();
  if (maps.filters) {
    const f = maps.filters;
    const values = floats(f.data);
    const [out, inC, kh, kw] = f.shape;
    const extent = Math.max(Math.abs(f.min), Math.abs(f.max));
    const box = element('div', { class: 'layer', 'data-layer': 'filters' });
    box.append(element('div', { class: 'layer-title' }, `first layer's filters: ${f.name} ${f.shape.join(' × ')}${inC > 1 ? ' (first input channel)' : ''}`));
    const row = element('div', { class: 'layer-maps' });
    for (let k = 0; k < out; k++) {
      const canvas = divergingCanvas(values, k * inC * kh * kw, kw, kh, extent, kw <= 5 ? 10 : 5);
      hoverable(canvas, f.name, k, values, k * inC * kh * kw, kw, kh);
      row.append(canvas);
    }
    box.append(row);
    filters.append(box);
  }
  document.body.dataset.mapsShown = String(sequence);
}

// ---------------------------------------------------------------- confusion matrix

$('confusion-load').addEventListener('click', async () => {
  const status = $('confusion-status');
  status.textContent = 'classifying the test set…';
  try {
    const data = await api('/api/confusion');
    studio.confusion = data;
    status.textContent = `${data.dataset}: ${data.count} test images, accuracy ${percent(data.accuracy)}. Rows: actual class; columns: predicted. Click a cell.`;
    const table = $('confusion');
    table.replaceChildren();
    const head = element('tr');
    head.append(element('th', { class: 'corner' }, 'actual \\ predicted'));
    data.labels.forEach((l) => head.append(element('th', {}, l)));
    table.append(head);
    const most = Math.max(1, ...data.matrix.flat());
    data.matrix.forEach((row, a) => {
      const tr = element('tr');
      tr.append(element('th', {}, data.labels[a]));
      row.forEach((n, p) => {
        const td = element('td', { 'data-actual': String(a), 'data-predicted': String(p), 'data-count': String(n) }, String(n));
        const t = n === 0 ? 0 : 0.15 + 0.85 * Math.log(1 + n) / Math.log(1 + most);
        td.style.background = a === p ? `rgba(60, 150, 80, ${t})` : `rgba(210, 70, 50, ${t})`;
        td.addEventListener('click', () => showCell(a, p, td));
        tr.append(td);
      });
      table.append(tr);
    });
    document.body.dataset.confusion = 'shown';
  } catch (error) {
    status.textContent = error.message;
  }
});

async function showCell(actual, predicted, td) {
  document.querySelectorAll('#confusion td.selected').forEach((e) => e.classList.remove('selected'));
  td.classList.add('selected');
  const data = await api(`/api/confusion/cell?actual=${actual}&predicted=${predicted}`);
  const labels = data.labels;
  $('cell-title').textContent = `${data.count} test images of ${labels[actual]} classified as ${labels[predicted]}` +
    (data.images.length < data.count ? ` (the first ${data.images.length})` : '');
  const root = $('cell-images');
  root.replaceChildren();
  for (const image of data.images) {
    const [c, h, w] = image.shape.length === 3 ? image.shape : [1, 1, image.shape[0]];
    const levels = bytes(image.levels);
    const canvas = element('canvas', { width: String(w), height: String(h) });
    const ctx = canvas.getContext('2d');
    const img = ctx.createImageData(w, h);
    for (let k = 0; k < w * h; k++) {
      const r = levels[k], g = c === 3 ? levels[h * w + k] : r, b = c === 3 ? levels[2 * h * w + k] : r;
      img.data[4 * k] = r; img.data[4 * k + 1] = g; img.data[4 * k + 2] = b; img.data[4 * k + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    const ranked = image.probabilities.map((p, i) => [p, i]).sort((x, y) => y[0] - x[0]).slice(0, 3);
    const box = element('div', { class: 'cell-image', 'data-index': String(image.index) });
    box.append(canvas, element('div', {}, `#${image.index}`),
      element('div', {}, ranked.map(([p, i]) => `${labels[i]} ${percent(p)}`).join(', ')));
    root.append(box);
  }
  document.body.dataset.cellShown = `${actual},${predicted}`;
}

// ---------------------------------------------------------------- training

function fillTrainForm(info) {
  const model = $('train-model');
  if (model.options.length === 0) {
    for (const name of info.zoo) model.append(element('option', { value: name }, name));
    model.append(element('option', { value: '' }, 'custom spec…'));
    model.value = 'two-conv';
    for (const name of info.datasets) $('train-dataset').append(element('option', { value: name }, name));
    $('train-dataset').value = 'mnist-sample';
    for (const r of info.recipes || []) $('train-recipe').append(element('option', { value: r.name, title: r.summary }, r.name));
  }
}
const defaultRate = (optimizer) => (optimizer === 'adam' || optimizer === 'adamw' ? '0.001' : '0.01');
// The recipe chosen in the form (from /api/model), or null for none.
function chosenRecipe() {
  const name = $('train-recipe').value;
  return (studio.model && studio.model.recipes || []).find((r) => r.name === name) || null;
}
$('train-recipe').addEventListener('change', () => {
  const recipe = chosenRecipe();
  const note = $('recipe-note');
  note.hidden = recipe === null;
  if (recipe === null) return;
  // The recipe's settings fill the form; what is changed after this is sent as an override.
  $('train-model').value = recipe.model;
  $('spec-label').hidden = true;
  $('train-dataset').value = recipe.dataset;
  $('train-optimizer').value = recipe.optimizer;
  $('train-lr').value = String(recipe.learning_rate);
  $('train-batch').value = String(recipe.batch_size);
  $('train-epochs').value = String(recipe.epochs);
  note.textContent = `${recipe.name}: ${recipe.summary}. Its schedule, augmentation and other settings come with it (convnet recipes lists them); a field changed here overrides the recipe's value.`;
});
$('train-model').addEventListener('change', () => { $('spec-label').hidden = $('train-model').value !== ''; });
$('train-optimizer').addEventListener('change', () => {
  const recipe = chosenRecipe(), optimizer = $('train-optimizer').value;
  $('train-lr').value = recipe && recipe.optimizer === optimizer ? String(recipe.learning_rate) : defaultRate(optimizer);
});

async function startTraining(request) {
  try {
    const answer = await api('/api/train', request);
    $('train-status').textContent = `training: run ${answer.run}`;
  } catch (error) {
    $('train-status').textContent = error.message;
    document.body.dataset.trainError = error.message;
  }
}
// The form as a training request: every field, or with a recipe, the recipe and only the fields that
// differ from its values (convnet train --recipe NAME with those options overriding).
function trainRequest() {
  const model = $('train-model').value;
  const fields = {
    dataset: $('train-dataset').value, optimizer: $('train-optimizer').value,
    learning_rate: Number($('train-lr').value), batch_size: Number($('train-batch').value), epochs: Number($('train-epochs').value),
  };
  const recipe = chosenRecipe();
  if (recipe === null) {
    const request = fields;
    if (model === '') request.spec = $('train-spec').value; else request.model = model;
    return request;
  }
  const request = { recipe: recipe.name };
  if (model === '') request.spec = $('train-spec').value; else if (model !== recipe.model) request.model = model;
  for (const [key, value] of Object.entries(fields)) {
    if (value !== recipe[key]) request[key] = value;
  }
  return request;
}
studio.trainRequest = trainRequest;
$('train-form').addEventListener('submit', (e) => {
  e.preventDefault();
  startTraining(trainRequest());
});
$('train-default').addEventListener('click', () => startTraining({ model: 'two-conv', dataset: 'mnist-sample' }));
$('train-stop').addEventListener('click', async () => {
  try { await api('/api/train/stop', {}); $('train-status').textContent = 'stopping…'; } catch (error) { $('train-status').textContent = error.message; }
});

const curves = { loss: [], trainAcc: [], testAcc: [], epochs: 0 };
let redrawPending = false;
function scheduleCharts() {
  if (redrawPending) return;
  redrawPending = true;
  requestAnimationFrame(() => { redrawPending = false; drawCharts(); });
}
function drawChart(svg, series, yMin, yMax, xMax, xLabel) {
  const W = Number(svg.getAttribute('width')), H = Number(svg.getAttribute('height'));
  const L = 46, R = 10, T = 10, B = 28;
  const ns = 'http://www.w3.org/2000/svg';
  svg.replaceChildren();
  const make = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.append(e);
    return e;
  };
  const x = (v) => L + (W - L - R) * (xMax > 0 ? v / xMax : 0);
  const y = (v) => T + (H - T - B) * (1 - (v - yMin) / ((yMax - yMin) || 1));
  make('line', { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: '#888' });
  make('line', { x1: L, y1: T, x2: L, y2: H - B, stroke: '#888' });
  for (let k = 0; k <= 4; k++) {
    const v = yMin + (yMax - yMin) * k / 4;
    make('text', { x: L - 4, y: y(v) + 4, 'text-anchor': 'end', 'font-size': 10, fill: '#555' }, v.toFixed(yMax - yMin < 0.1 ? 3 : 2));
    make('line', { x1: L, y1: y(v), x2: W - R, y2: y(v), stroke: '#eee' });
  }
  make('text', { x: W - R, y: H - 8, 'text-anchor': 'end', 'font-size': 10, fill: '#555' }, `${xLabel} ${xMax}`);
  let points = 0;
  for (const s of series) {
    if (s.points.length === 0) continue;
    points += s.points.length;
    make('polyline', { points: s.points.map(([a, b]) => `${x(a).toFixed(1)},${y(b).toFixed(1)}`).join(' '), fill: 'none', stroke: s.color,
      'stroke-width': 1.5, 'stroke-dasharray': s.dash || '' });
    if (s.points.length < 30) for (const [a, b] of s.points) make('circle', { cx: x(a), cy: y(b), r: 2.5, fill: s.color });
  }
  svg.dataset.points = String(points);
}
function drawCharts() {
  const losses = curves.loss.map((p) => p[1]);
  const maxLoss = losses.length ? Math.max(...losses) : 1;
  const xMax = curves.loss.length ? curves.loss[curves.loss.length - 1][0] : 0;
  drawChart($('loss-chart'), [{ points: curves.loss, color: '#4a7bd0' }], 0, maxLoss, xMax, 'iteration');
  const accs = curves.trainAcc.concat(curves.testAcc).map((p) => p[1]);
  const lo = accs.length ? Math.max(0, Math.floor(Math.min(...accs) * 10) / 10) : 0;
  drawChart($('acc-chart'), [{ points: curves.trainAcc, color: '#e07b24' }, { points: curves.testAcc, color: '#3a9a50', dash: '4 3' }], lo, 1,
    curves.epochs, 'epoch');
}

function onTrainingEvent(event) {
  const status = $('train-status');
  if (event.type === 'started') {
    curves.loss = []; curves.trainAcc = []; curves.testAcc = []; curves.epochs = 0;
    status.textContent = `training run ${event.run}: ${event.arguments}`;
    document.body.dataset.training = 'running';
    document.body.dataset.trainRun = event.run;
    $('train-start').disabled = true; $('train-stop').disabled = false; $('train-default').disabled = true;
  } else if (event.type === 'iteration') {
    curves.loss.push([event.iteration, event.loss]);
    status.textContent = `epoch ${event.epoch} · iteration ${event.iteration} · loss ${event.loss.toFixed(4)}`;
  } else if (event.type === 'epoch') {
    curves.epochs = event.epoch;
    curves.trainAcc.push([event.epoch, event.train_accuracy]);
    if (event.test_accuracy !== null && event.test_accuracy !== undefined) curves.testAcc.push([event.epoch, event.test_accuracy]);
    status.textContent = `epoch ${event.epoch} done: train accuracy ${percent(event.train_accuracy)}` +
      (event.test_accuracy != null ? `, test ${percent(event.test_accuracy)}` : '') + ` in ${event.seconds.toFixed(1)} s`;
  } else if (event.type === 'finished') {
    document.body.dataset.training = event.status;
    $('train-start').disabled = false; $('train-stop').disabled = true; $('train-default').disabled = false;
    status.textContent = `run ${event.run} ${event.status}` + (event.model ? `; drawing now uses ${event.model}` : '') +
      (event.message ? ` — ${event.message}` : '');
    if (event.model) {
      studio.confusion = null;
      $('confusion').replaceChildren(); $('cell-images').replaceChildren(); $('cell-title').textContent = ''; $('confusion-status').textContent = '';
      loadModel().then(() => { if (ink.some((v) => v > 0)) predict(true); });
    }
  }
  scheduleCharts();
}
function listenToTraining() {
  const source = new EventSource('/api/train/events');
  source.onmessage = (m) => onTrainingEvent(JSON.parse(m.data));
  window.addEventListener('beforeunload', () => source.close());
}

// ---------------------------------------------------------------- toy walkthrough

const walk = { steps: [], index: 0 };
async function loadWalkthrough() {
  const w = await api('/api/walkthrough');
  walk.steps = w.steps;
  $('walk-intro').textContent = w.introduction;
  showStep(0);
}
function showStep(index) {
  walk.index = Math.max(0, Math.min(walk.steps.length - 1, index));
  const step = walk.steps[walk.index];
  $('walk-pos').textContent = `step ${walk.index + 1} of ${walk.steps.length} · ${step.phase}`;
  $('walk-pos').dataset.index = String(walk.index);
  $('walk-title').textContent = step.title;
  $('walk-text').textContent = step.explanation;
  $('walk-prev').disabled = walk.index === 0;
  $('walk-next').disabled = walk.index === walk.steps.length - 1;
  const root = $('walk-matrices');
  root.replaceChildren();
  for (const m of step.matrices) {
    const box = element('div', { class: 'matrix' });
    box.append(element('div', {}, `${m.name}: ${m.caption}`));
    const table = element('table');
    const flat = m.values.flat();
    const extent = Math.max(1e-12, ...flat.map(Math.abs));
    const marked = new Set(m.markers.map(([r, c]) => `${r},${c}`));
    m.values.forEach((row, r) => {
      const tr = element('tr');
      row.forEach((v, c) => {
        const td = element('td', {}, Math.abs(v) >= 100 ? v.toPrecision(3) : v.toFixed(2));
        const t = Math.max(-1, Math.min(1, v / extent));
        td.style.background = t >= 0 ? `rgba(224, 123, 36, ${0.7 * t})` : `rgba(74, 123, 208, ${-0.7 * t})`;
        if (marked.has(`${r},${c}`)) td.classList.add('marked');
        tr.append(td);
      });
      table.append(tr);
    });
    box.append(table);
    root.append(box);
  }
}
$('walk-prev').addEventListener('click', () => showStep(walk.index - 1));
$('walk-next').addEventListener('click', () => showStep(walk.index + 1));

// ---------------------------------------------------------------- start

paintPad();
drawCharts();
Promise.all([loadModel(), loadWalkthrough()]).then(() => {
  listenToTraining();
  document.body.dataset.ready = 'true';
}).catch((error) => {
  console.error('the studio page could not start: ' + error.message);
});
