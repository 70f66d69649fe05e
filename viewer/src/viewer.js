// The SlidePlugin viewer: plain JavaScript over the sidecar's HTTP/JSON routes (the same address served this page).
// State the tests read is kept on <body> as data-* attributes: data-state, data-tile-count, data-streamed-tiles,
// data-painted-tiles, data-final-tiles, data-first-tile-ms, data-segmentation (running, done, error), data-seg-region
// (the level-0 x,y,width,height segmented) and data-view-centre (level-0 x,y where a pan to a top tile ended).
'use strict';

const TOKEN_KEY = 'slideplugin.token';
const $ = (id) => document.getElementById(id);
const body = document.body;

class AuthError extends Error {
    constructor(refused, message) { super(message); this.refused = refused; }
}

class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
}

// ---- calls -------------------------------------------------------------------------------------------------

function authHeaders() {
    const token = sessionStorage.getItem(TOKEN_KEY);
    return token ? { authorization: `Bearer ${token}` } : {};
}

async function call(path, options = {}) {
    const response = await fetch(path, { ...options, headers: { ...(options.headers || {}), ...authHeaders() } });
    if (response.ok) return response;
    let message = response.statusText;
    try { message = (await response.json()).message || message; } catch { /* not JSON */ }
    if (response.status === 401) throw new AuthError(sessionStorage.getItem(TOKEN_KEY) !== null, message);
    throw new ApiError(response.status, message);
}

const getJson = async (path) => (await call(path)).json();
const query = (values) => new URLSearchParams(Object.entries(values).filter(([, v]) => v !== undefined && v !== null && v !== '')).toString();

// ---- colours -----------------------------------------------------------------------------------------------

// Matplotlib's jet, as the sidecar's heatmap export (AnalysisExports.Jet): final tiles by attention percentile.
function jet(value) {
    const v = Math.min(1, Math.max(0, value));
    const channel = (x) => Math.round(255 * Math.min(1, Math.max(0, 1.5 - Math.abs(x))));
    return [channel(4 * v - 3), channel(4 * v - 2), channel(4 * v - 1)];
}

// While streaming only raw scores exist (the softmax needs every tile): a logistic of the score on a
// purple-to-yellow ramp, distinct from jet so a partial map is not read as percentiles.
function ramp(t) {
    return [Math.round(68 + 185 * t), Math.round(1 + 230 * t), Math.round(84 - 48 * t)];
}

const raw = (score) => ramp(1 / (1 + Math.exp(-score)));

const css = ([r, g, b]) => `rgb(${r},${g},${b})`;

// ---- state -------------------------------------------------------------------------------------------------

const state = {
    slides: [],          // {path, sizeBytes, info, error, mppOverride}
    models: [],
    encoders: [],
    slide: null,         // the open one
    tissue: [],          // rings of level-0 points
    run: null,           // the analysis running or shown
    segmentationModels: [], // ListModels' fcn-mil checkpoints
    segmentation: null,  // the label map shown: {slide, canvas, x, y, width, height (level 0), classes, summary}
};

let viewer = null;
const overlay = $('overlay');
let heat = null;         // offscreen canvas: the heatmap in level-0 pixels times heat.scale
let redrawQueued = false;

function setState(name) { body.dataset.state = name; }

function showMessage(element, text, error = false) {
    element.textContent = text;
    element.classList.toggle('error', error);
    element.hidden = !text;
}

// ---- token -------------------------------------------------------------------------------------------------

function askToken(error) {
    const dialog = $('token-dialog');
    if (error.refused) {
        // A stored token that the server refuses is of no use: forget it, say so plainly.
        sessionStorage.removeItem(TOKEN_KEY);
        showMessage($('token-message'), `The sidecar refused this token (HTTP 401: ${error.message}). Check the value it was started with (--auth-token) and try again.`, true);
        setState('token-refused');
    } else {
        showMessage($('token-message'), '');
        setState('token');
    }
    if (!dialog.open) dialog.showModal();
    $('token').focus();
}

$('token-form').addEventListener('submit', () => {
    sessionStorage.setItem(TOKEN_KEY, $('token').value.trim());
    $('token').value = '';
    start();
});

// ---- slides ------------------------------------------------------------------------------------------------

async function start() {
    setState('starting');
    try {
        const list = await getJson('/v1/slides');
        $('token-dialog').close();
        $('server-state').textContent = sessionStorage.getItem(TOKEN_KEY) ? 'connected (token)' : 'connected';
        state.models = list.models || [];
        state.encoders = list.encoders || [];
        state.slides = (list.slides || []).map((s) => ({ path: s.path, sizeBytes: Number(s.sizeBytes || 0) }));
        fillModels();
        showMessage($('slides-message'), state.slides.length ? (list.truncated ? 'Only the first 10,000 files are listed.' : '') : 'No slides under the slide roots.');
        renderSlides();
        setState('slides');
        loadSegmentationModels();
        await Promise.all(state.slides.map(loadSlideInfo));
    } catch (e) {
        if (e instanceof AuthError) askToken(e);
        else { showMessage($('slides-message'), `Cannot list slides: ${e.message}`, true); setState('error'); }
    }
}

function fillModels() {
    const model = $('model');
    model.replaceChildren(new Option('Bundled default model', ''), ...state.models.map((m) => new Option(m, m)));
    const encoder = $('encoder');
    encoder.replaceChildren(new Option('None (a model of RGB patches)', ''), ...state.encoders.map((e) => new Option(e, e)));
    $('encoder-label').hidden = state.encoders.length === 0;
}

// Segmentation checkpoints are listed by ListModels (architecture fcn-mil); one can also be typed, as a path under a
// model root, for a server that lists none.
async function loadSegmentationModels() {
    try {
        const list = await getJson('/v1/models');
        state.segmentationModels = (list.models || []).filter((m) => m.architecture === 'fcn-mil' && !m.error);
    } catch { state.segmentationModels = []; }
    $('seg-models').replaceChildren(...state.segmentationModels.map((m) => {
        const option = new Option(m.name ? `${m.name} (${(m.classes || []).join(', ')})` : m.path, m.path);
        return option;
    }));
    if (!$('seg-model').value && state.segmentationModels.length) $('seg-model').value = state.segmentationModels[0].path;
}

function renderSlides() {
    $('slides').replaceChildren(...state.slides.map((slide) => {
        const item = document.createElement('li');
        item.className = 'slide';
        item.dataset.path = slide.path;
        item.innerHTML = '<img alt=""><div><div class="name"></div><div class="meta">…</div><div class="reason" hidden></div></div>';
        item.querySelector('.name').textContent = slide.path;
        item.addEventListener('click', (event) => { if (!event.target.closest('.mpp')) openSlide(slide); });
        slide.element = item;
        return item;
    }));
}

async function loadSlideInfo(slide) {
    const meta = slide.element.querySelector('.meta');
    const reason = slide.element.querySelector('.reason');
    try {
        slide.info = await getJson(`/v1/slides/info?${query({ path: slide.path, mpp_override: slide.mppOverride })}`);
    } catch (e) {
        slide.error = e.message;
        meta.textContent = 'cannot be opened';
        reason.textContent = e.message;
        reason.hidden = false;
        slide.element.classList.add('unreadable');
        return;
    }
    const info = slide.info;
    const mpp = info.resolution?.mppX;
    meta.textContent = [info.vendor || 'unknown vendor', `${Number(info.width).toLocaleString()} × ${Number(info.height).toLocaleString()} px`,
        mpp ? `${mpp.toFixed(3)} µm/px` : 'no mpp'].join(' · ');
    slide.element.dataset.vendor = info.vendor || '';
    slide.element.dataset.mpp = mpp ?? '';
    if (!mpp || slide.mppOverride) {
        // Without a resolution the slide cannot be analysed nor measured: say why, and take one from the user.
        reason.hidden = false;
        reason.innerHTML = '<span></span> <label class="mpp">µm/px <input type="number" step="0.001" min="0.01"> <button type="button">Set</button></label>';
        reason.querySelector('span').textContent = info.resolution?.explanation || 'No resolution in the file.';
        const input = reason.querySelector('input');
        input.value = slide.mppOverride ?? '';
        reason.querySelector('button').addEventListener('click', async () => {
            const value = Number(input.value);
            slide.mppOverride = value > 0 ? value : undefined;
            await loadSlideInfo(slide);
            if (state.slide === slide) updateScaleBar();
        });
    }
    // Asked for with the list, so that opening the slide goes straight to its tiles.
    slide.deepZoom = getJson(`/v1/slides/deepzoom?${query({ path: slide.path })}`);
    slide.deepZoom.catch(() => { slide.deepZoom = undefined; });
    loadThumbnail(slide);
}

async function loadThumbnail(slide) {
    try {
        const thumbnail = await getJson(`/v1/slides/thumbnail?${query({ path: slide.path, max_size: 144 })}`);
        const type = thumbnail.image.format === 'IMAGE_FORMAT_PNG' ? 'image/png' : 'image/jpeg';
        slide.element.querySelector('img').src = `data:${type};base64,${thumbnail.image.data}`;
    } catch { /* the list still names the slide */ }
}

// ---- the view ----------------------------------------------------------------------------------------------

function createViewer() {
    viewer = OpenSeadragon({
        element: $('osd'),
        prefixUrl: 'viewer/openseadragon/images/',
        drawer: 'canvas',                  // predictable in every browser, WebGL or not
        showNavigator: true,
        navigatorPosition: 'TOP_LEFT',
        maxZoomPixelRatio: 2,
        visibilityRatio: 0.5,
        gestureSettingsMouse: { clickToZoom: false, dblClickToZoom: true },
    });
    viewer.addHandler('update-viewport', () => { drawOverlay(); updateScaleBar(); });
    viewer.addHandler('resize', queueRedraw);
    viewer.addHandler('canvas-click', (event) => { if (event.quick) showTileAt(event.position); });
    new ResizeObserver(queueRedraw).observe($('main'));
}

async function openSlide(slide) {
    if (!slide.info) return;
    const opened = performance.now();
    cancelAnalysis();
    clearAnalysis();
    clearSegmentation();
    state.slide = slide;
    state.tissue = [];
    delete body.dataset.firstTileMs;
    delete body.dataset.firstTileLoadedMs;
    body.dataset.openedAt = opened; // the click, on the page's clock: tests time the calls after it
    document.querySelectorAll('.slide.open').forEach((e) => e.classList.remove('open'));
    slide.element.classList.add('open');
    setState('opening');
    showMessage($('view-message'), '');
    try {
        const deepZoom = await (slide.deepZoom || getJson(`/v1/slides/deepzoom?${query({ path: slide.path })}`));
        const image = new DOMParser().parseFromString(deepZoom.dzi, 'application/xml').documentElement;
        const size = image.getElementsByTagName('Size')[0];
        const path = encodeURIComponent(slide.path);
        const headers = authHeaders();
        viewer.addOnceHandler('tile-loaded', () => { body.dataset.firstTileLoadedMs = Math.round(performance.now() - opened); });
        viewer.addOnceHandler('tile-drawn', () => {
            body.dataset.firstTileMs = Math.round(performance.now() - opened);
            // Tissue detection reads the whole slide: started once the first tile is on screen, it does not compete
            // with the tiles for the server's cores.
            if (state.slide === slide) loadTissue(slide);
        });
        viewer.open({
            tileSource: {
                width: Number(size.getAttribute('Width')),
                height: Number(size.getAttribute('Height')),
                tileSize: Number(image.getAttribute('TileSize')),
                tileOverlap: Number(image.getAttribute('Overlap')),
                getTileUrl: (level, x, y) => `/v1/slides/deepzoom/tile/image?path=${path}&level=${level}&column=${x}&row=${y}`,
            },
            // An <img> cannot send the token: with one, tiles are fetched with it.
            loadTilesWithAjax: 'authorization' in headers,
            ajaxHeaders: headers,
        });
        $('analysis-section').hidden = false;
        $('segmentation-section').hidden = false;
        $('scalebar').hidden = false;
        setState('open');
        updateScaleBar();
    } catch (e) {
        if (e instanceof AuthError) askToken(e);
        else { showMessage($('view-message'), `Cannot open ${slide.path}: ${e.message}`, true); setState('error'); }
    }
}

async function loadTissue(slide) {
    try {
        const tissue = await getJson(`/v1/slides/tissue?${query({ path: slide.path, mpp_override: slide.mppOverride })}`);
        if (state.slide !== slide) return;
        // The GeoJSON is in QuPath's frame (shifted by openslide.bounds); the view is in level-0 pixels.
        const dx = Number(slide.info.bounds?.x || 0), dy = Number(slide.info.bounds?.y || 0);
        const rings = [];
        for (const feature of JSON.parse(tissue.geojson).features || []) {
            const g = feature.geometry;
            const polygons = g.type === 'Polygon' ? [g.coordinates] : g.type === 'MultiPolygon' ? g.coordinates : [];
            for (const polygon of polygons) for (const ring of polygon) rings.push(ring.map(([x, y]) => [x + dx, y + dy]));
        }
        state.tissue = rings;
        $('tissue-toggle').hidden = rings.length === 0;
        queueRedraw();
    } catch { /* no tissue outline (e.g. no mpp): the slide is still shown */ }
}

function updateScaleBar() {
    const slide = state.slide;
    const mpp = slide?.mppOverride ?? slide?.info?.resolution?.mppX;
    if (!viewer || !viewer.world.getItemAt(0) || !mpp) { $('scalebar').hidden = true; return; }
    $('scalebar').hidden = false;
    const screenPerImage = viewer.world.getItemAt(0).viewportToImageZoom(viewer.viewport.getZoom(true));
    const micronsPerScreenPixel = mpp / screenPerImage;
    // The longest 1, 2 or 5 times a power of ten that fits in 150 px.
    const target = 150 * micronsPerScreenPixel;
    const power = 10 ** Math.floor(Math.log10(target));
    const length = [5, 2, 1].map((m) => m * power).find((l) => l <= target) ?? power;
    $('scalebar-bar').style.width = `${length / micronsPerScreenPixel}px`;
    $('scalebar-label').textContent = length >= 1000 ? `${length / 1000} mm` : `${length} µm`;
    $('scalebar').dataset.microns = length;
}

// ---- overlay: heatmap and tissue ---------------------------------------------------------------------------

function queueRedraw() {
    if (redrawQueued) return;
    redrawQueued = true;
    requestAnimationFrame(() => { redrawQueued = false; drawOverlay(); });
}

// Level-0 pixel -> position in the overlay (CSS pixels); the view is not rotated, so two points give the map.
function imageToOverlay(x, y) {
    const p = viewer.viewport.imageToViewerElementCoordinates(new OpenSeadragon.Point(x, y));
    return [p.x, p.y];
}

function drawOverlay() {
    const ratio = window.devicePixelRatio || 1;
    const width = overlay.clientWidth, height = overlay.clientHeight;
    if (overlay.width !== Math.round(width * ratio) || overlay.height !== Math.round(height * ratio)) {
        overlay.width = Math.round(width * ratio);
        overlay.height = Math.round(height * ratio);
    }
    const ctx = overlay.getContext('2d');
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, overlay.width, overlay.height);
    if (!viewer || !viewer.world.getItemAt(0)) return;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    if (heat) {
        // One scaled copy of the offscreen heatmap a frame, however many tiles it holds.
        const [x0, y0] = imageToOverlay(0, 0);
        const [x1, y1] = imageToOverlay(heat.width / heat.scale, heat.height / heat.scale);
        ctx.imageSmoothingEnabled = false;
        ctx.globalAlpha = Number($('opacity').value);
        ctx.drawImage(heat, x0, y0, x1 - x0, y1 - y0);
        ctx.globalAlpha = 1;
    }
    const seg = state.segmentation;
    if (seg && seg.slide === state.slide) {
        const [x0, y0] = imageToOverlay(seg.x, seg.y);
        const [x1, y1] = imageToOverlay(seg.x + seg.width, seg.y + seg.height);
        ctx.imageSmoothingEnabled = false; // label colours stay the card's colours, never blends of two
        ctx.globalAlpha = Number($('seg-opacity').value);
        ctx.drawImage(seg.canvas, x0, y0, x1 - x0, y1 - y0);
        ctx.globalAlpha = 1;
    }
    if ($('tissue').checked && state.tissue.length) {
        const [ox, oy] = imageToOverlay(0, 0);
        const [ux] = imageToOverlay(1, 0);
        const k = ux - ox;
        ctx.strokeStyle = '#00c853';
        ctx.lineWidth = 2;
        ctx.beginPath();
        for (const ring of state.tissue) {
            ring.forEach(([x, y], i) => (i ? ctx.lineTo : ctx.moveTo).call(ctx, ox + x * k, oy + y * k));
            ctx.closePath();
        }
        ctx.stroke();
    }
}

$('tissue').addEventListener('change', queueRedraw);
$('opacity').addEventListener('input', queueRedraw);
$('seg-opacity').addEventListener('input', queueRedraw);

// ---- analysis ----------------------------------------------------------------------------------------------

function clearAnalysis() {
    heat = null;
    state.run = null;
    for (const key of ['tileCount', 'streamedTiles', 'paintedTiles', 'finalTiles', 'analysisKey']) delete body.dataset[key];
    $('result').hidden = true;
    $('final').hidden = true;
    $('tile-details').hidden = true;
    $('progress').value = 0;
    $('progress-text').textContent = '';
    showMessage($('analysis-message'), '');
    queueRedraw();
}

function newHeat(width, height) {
    // At most 4096 px a side: a tile of a 40000 px slide still covers a few pixels, and memory stays small.
    const scale = Math.min(1, 4096 / Math.max(width, height));
    const canvas = document.createElement('canvas');
    canvas.width = Math.ceil(width * scale);
    canvas.height = Math.ceil(height * scale);
    canvas.scale = scale;
    canvas.ctx = canvas.getContext('2d');
    return canvas;
}

function paint(run, tile, colour) {
    const s = heat.scale;
    const x0 = Math.round(tile.x * s), y0 = Math.round(tile.y * s);
    const x1 = Math.round((tile.x + tile.width) * s), y1 = Math.round((tile.y + tile.height) * s);
    heat.ctx.fillStyle = css(colour);
    heat.ctx.fillRect(x0, y0, Math.max(1, x1 - x0), Math.max(1, y1 - y0));
    run.painted.add(tile.index);
}

function tileOf(message) {
    const r = message.level0 || {};
    return {
        index: message.index || 0, x: Number(r.x || 0), y: Number(r.y || 0), width: Number(r.width || 0), height: Number(r.height || 0),
        score: message.score || 0, probabilities: message.probabilities || [],
        attention: message.attention, percentile: message.attentionPercentile,
    };
}

async function analyze() {
    const slide = state.slide;
    if (!slide) return;
    cancelAnalysis();
    clearAnalysis();
    const run = {
        slide, controller: new AbortController(), header: null, tiles: new Map(), painted: new Set(), streamed: new Set(), final: new Set(),
        started: performance.now(), cancelled: false, result: null,
    };
    state.run = run;
    setState('streaming');
    $('analyze').disabled = true;
    $('cancel').disabled = false;
    $('progress-text').textContent = 'Starting…';
    const request = { path: slide.path, modelPath: $('model').value, encoderPath: $('encoder').value };
    if (slide.mppOverride) request.mppOverride = slide.mppOverride;
    try {
        const response = await call('/v1/analyses', {
            method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request), signal: run.controller.signal,
        });
        // Server streaming over HTTP/JSON: one message a line, read as it arrives.
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffered = '';
        for (;;) {
            const { done, value } = await reader.read();
            if (run.cancelled) return;
            if (value) {
                buffered += value;
                let end;
                while ((end = buffered.indexOf('\n')) >= 0) {
                    const line = buffered.slice(0, end);
                    buffered = buffered.slice(end + 1);
                    if (line.trim()) onMessage(run, JSON.parse(line));
                }
            }
            if (done) break;
        }
        if (buffered.trim()) onMessage(run, JSON.parse(buffered));
        if (!run.result) throw new Error('the stream ended without a result');
        setState('done');
    } catch (e) {
        if (run.cancelled) return;
        if (e instanceof AuthError) { askToken(e); return; }
        showMessage($('analysis-message'), `Analysis failed: ${e.message}`, true);
        setState('error');
    } finally {
        if (state.run === run) { $('analyze').disabled = false; $('cancel').disabled = true; }
    }
}

function onMessage(run, message) {
    if (message.header) onHeader(run, message.header);
    else if (message.progress) onProgress(run, message.progress);
    else if (message.finalTiles) onFinalTiles(run, message.finalTiles);
    else if (message.result) onResult(run, message.result);
    else if (message.code !== undefined) throw new ApiError(message.code, message.message);
    updateCounts(run);
    queueRedraw();
}

function onHeader(run, header) {
    run.header = header;
    run.alreadyScored = header.tilesAlreadyScored || 0;
    heat = newHeat(Number(header.slideWidth), Number(header.slideHeight));
    body.dataset.tileCount = header.tileCount || 0;
    body.dataset.analysisKey = header.key;
    drawColorBar(ramp, 'Raw attention score (logistic), while the analysis streams', 'low', 'high');
    $('result').hidden = false;
    $('prediction').textContent = `${header.modelName}: scoring ${header.tileCount || 0} tiles…`;
}

function onProgress(run, progress) {
    for (const t of progress.tiles || []) {
        const tile = tileOf(t);
        run.tiles.set(tile.index, tile);
        run.streamed.add(tile.index);
        if (!run.final.has(tile.index)) paint(run, tile, raw(tile.score));
    }
    const done = progress.tilesDone || 0, count = progress.tileCount || 0;
    const seconds = (performance.now() - run.started) / 1000;
    const rate = (done - run.alreadyScored) / seconds;
    const eta = rate > 0 ? (count - done) / rate : Infinity;
    $('progress').max = Math.max(1, count);
    $('progress').value = done;
    $('progress-text').textContent = `${done.toLocaleString()} / ${count.toLocaleString()} tiles · ${rate.toFixed(1)} tiles/s · ETA ${Number.isFinite(eta) ? `${Math.ceil(eta)} s` : '…'}`;
}

function onFinalTiles(run, chunk) {
    if (run.final.size === 0) drawColorBar(jet, 'Attention percentile', '0', '100');
    for (const t of chunk.tiles || []) {
        const tile = tileOf(t);
        tile.attention ??= 0;
        tile.percentile ??= 0;
        run.tiles.set(tile.index, tile);
        run.final.add(tile.index);
        paint(run, tile, jet(tile.percentile / 100));
    }
}

function onResult(run, result) {
    run.result = result;
    const header = run.header;
    const probabilities = (result.probabilities || []).map((p, i) => `${header.classes?.[i] ?? i} ${(p * 100).toFixed(1)}%`).join(', ');
    $('prediction').textContent = `${result.predictedClassName} (${probabilities})${result.fromStore ? ' · from the store' : ` · ${result.seconds?.toFixed(1)} s`}`;
    $('progress').max = 1;
    $('progress').value = 1;
    $('progress-text').textContent = `${(header.tileCount || 0).toLocaleString()} tiles`;
    $('final').hidden = false; // exports and top tiles exist for a finished (stored) analysis only
    const top = [...run.tiles.values()].sort((a, b) => b.attention - a.attention).slice(0, TOP_TILES);
    $('top-tiles').replaceChildren(...top.map((tile) => {
        const item = document.createElement('li');
        item.dataset.index = tile.index;
        const button = document.createElement('button');
        button.type = 'button';
        button.title = `tile ${tile.index} at ${tile.x}, ${tile.y}: attention percentile ${tile.percentile.toFixed(1)}`;
        const image = document.createElement('img');
        image.alt = `tile ${tile.index}`;
        const caption = document.createElement('span');
        caption.textContent = `${tile.percentile.toFixed(1)} pct`;
        button.append(image, caption);
        button.addEventListener('click', () => panToTile(tile));
        item.append(button);
        loadTileCrop(run.slide, tile, image);
        return item;
    }));
}

const TOP_TILES = 8;
const CROP_SIZE = 96; // px of the gallery's crops: the slide level that gives at least this many across is read

// A top tile's pixels, read from the slide (GET /v1/slides/region) at the coarsest level that still gives the crop its
// size: fetched with the token, shown as a data: URL.
async function loadTileCrop(slide, tile, image) {
    const levels = slide.info?.levels || [];
    let level = 0, downsample = 1;
    levels.forEach((l, i) => {
        const d = Number(l.downsample || 1);
        if (tile.width / d >= CROP_SIZE && d > downsample) { level = i; downsample = d; }
    });
    try {
        const region = await getJson(`/v1/slides/region?${query({
            path: slide.path, x: tile.x, y: tile.y, level,
            width: Math.max(1, Math.round(tile.width / downsample)), height: Math.max(1, Math.round(tile.height / downsample)),
        })}`);
        const type = region.image.format === 'IMAGE_FORMAT_PNG' ? 'image/png' : 'image/jpeg';
        image.src = `data:${type};base64,${region.image.data}`;
    } catch { /* the caption still names the tile */ }
}

// Pans and zooms to the tile (three tiles across, or as close as the view allows), and records where the view's centre ended, in level-0 pixels.
function panToTile(tile) {
    delete body.dataset.viewCentre;
    viewer.addOnceHandler('animation-finish', () => {
        const centre = viewer.viewport.viewportToImageCoordinates(viewer.viewport.getCenter(true));
        body.dataset.viewCentre = `${Math.round(centre.x)},${Math.round(centre.y)}`;
    });
    // With constraints: a small tile is not blown up past maxZoomPixelRatio, and the view stays centred on it.
    viewer.viewport.fitBoundsWithConstraints(viewer.viewport.imageToViewportRectangle(tile.x - tile.width, tile.y - tile.height, 3 * tile.width, 3 * tile.height));
    showTile(tile);
}

function updateCounts(run) {
    body.dataset.streamedTiles = run.streamed.size;
    body.dataset.paintedTiles = run.painted.size;
    body.dataset.finalTiles = run.final.size;
}

function cancelAnalysis() {
    const run = state.run;
    if (!run || run.result || run.cancelled) return;
    // Set before aborting: a read already resolved is then dropped, so nothing is painted after Cancel.
    run.cancelled = true;
    run.controller.abort();
    $('analyze').disabled = false;
    $('cancel').disabled = true;
    $('progress-text').textContent += ' · cancelled';
    setState('cancelled');
}

function drawColorBar(map, caption, low, high) {
    const canvas = $('colorbar-canvas');
    const ctx = canvas.getContext('2d');
    for (let x = 0; x < canvas.width; x++) {
        ctx.fillStyle = css(map(x / (canvas.width - 1)));
        ctx.fillRect(x, 0, 1, canvas.height);
    }
    $('colorbar-low').textContent = low;
    $('colorbar-high').textContent = high;
    $('colorbar-caption').textContent = caption;
}

// ---- segmentation ------------------------------------------------------------------------------------------

function clearSegmentation() {
    state.segmentation = null;
    delete body.dataset.segmentation;
    delete body.dataset.segRegion;
    $('seg-result').hidden = true;
    $('seg-text').textContent = '';
    showMessage($('seg-message'), '');
    queueRedraw();
}

// The level-0 rectangle in view, within the slide.
function visibleRegion() {
    const item = viewer.world.getItemAt(0);
    const r = item.viewportToImageRectangle(viewer.viewport.getBounds(true));
    const size = item.getContentSize();
    const x0 = Math.max(0, Math.floor(r.x)), y0 = Math.max(0, Math.floor(r.y));
    const x1 = Math.min(size.x, Math.ceil(r.x + r.width)), y1 = Math.min(size.y, Math.ceil(r.y + r.height));
    return { x: x0, y: y0, width: Math.max(0, x1 - x0), height: Math.max(0, y1 - y0) };
}

const base64Bytes = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

// Segments the region in view (POST /v1/segmentations, one message a line) and paints its label map: the label PNG's
// palette is the card's class colours; the background class (index 0) is left clear so the tissue shows.
async function segmentVisible() {
    const slide = state.slide;
    const modelPath = $('seg-model').value.trim();
    if (!slide || !viewer?.world.getItemAt(0)) return;
    if (!modelPath) { showMessage($('seg-message'), 'Choose a segmentation model (a checkpoint under a model root).', true); return; }
    clearSegmentation();
    const region = visibleRegion();
    body.dataset.segmentation = 'running';
    body.dataset.segRegion = [region.x, region.y, region.width, region.height].join(',');
    $('segment').disabled = true;
    $('seg-text').textContent = `Segmenting ${region.width.toLocaleString()} × ${region.height.toLocaleString()} px…`;
    const request = { modelPath, slideRegion: { path: slide.path, region } };
    if (slide.mppOverride) request.mppOverride = slide.mppOverride;
    try {
        const response = await call('/v1/segmentations', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request) });
        let header = null, summary = null, label = null;
        const text = await response.text();
        for (const line of text.split('\n')) {
            if (!line.trim()) continue;
            const message = JSON.parse(line);
            if (message.header) header = message.header;
            else if (message.summary) summary = message.summary;
            else if (message.chunk?.output === 'SEGMENT_OUTPUT_LABEL_PNG') {
                label ??= new Uint8Array(Number(message.chunk.totalBytes));
                label.set(base64Bytes(message.chunk.data || ''), Number(message.chunk.offset || 0));
            } else if (message.code !== undefined) throw new ApiError(message.code, message.message);
        }
        if (!header || !label || !summary) throw new Error('the stream ended before the label map and summary');
        if (state.slide !== slide) return;
        const canvas = await labelCanvas(label, header);
        state.segmentation = {
            slide, canvas, classes: header.classes || [], summary,
            x: Number(header.level0X || 0), y: Number(header.level0Y || 0),
            width: header.width * Number(header.downsampleX || 1), height: header.height * Number(header.downsampleY || 1),
        };
        showLegend(header, summary);
        $('seg-text').textContent = `${header.modelName}: ${header.width} × ${header.height} px at ${header.mpp ? `${(header.mpp * Number(header.downsampleX || 1)).toFixed(2)} µm/px` : 'the model\'s resolution'} · ${Number(summary.elapsedSeconds || 0).toFixed(1)} s`;
        body.dataset.segmentation = 'done';
        queueRedraw();
    } catch (e) {
        if (e instanceof AuthError) { askToken(e); return; }
        showMessage($('seg-message'), `Segmentation failed: ${e.message}`, true);
        body.dataset.segmentation = 'error';
    } finally {
        $('segment').disabled = false;
    }
}

// The label PNG as a canvas of its size, background pixels (class 0's colour) made transparent.
async function labelCanvas(png, header) {
    const bitmap = await createImageBitmap(new Blob([png], { type: 'image/png' }), { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
    const canvas = document.createElement('canvas');
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(bitmap, 0, 0);
    const background = (header.classes || []).find((c) => (c.index || 0) === 0);
    if (background) {
        const [r, g, b] = hexRgb(background.color);
        const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height);
        const data = pixels.data;
        for (let i = 0; i < data.length; i += 4) {
            if (data[i] === r && data[i + 1] === g && data[i + 2] === b) data[i + 3] = 0;
        }
        ctx.putImageData(pixels, 0, 0);
    }
    return canvas;
}

const hexRgb = (hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));

function showLegend(header, summary) {
    const fractions = new Map((summary.classes || []).map((c) => [c.index || 0, c]));
    $('seg-legend').replaceChildren(...(header.classes || []).map((c) => {
        const index = c.index || 0;
        const item = document.createElement('li');
        item.dataset.name = c.name;
        item.dataset.color = c.color;
        item.classList.toggle('unpainted', index === 0);
        const swatch = document.createElement('span');
        swatch.className = 'swatch';
        swatch.style.background = c.color;
        const name = document.createElement('span');
        const share = fractions.get(index)?.fraction ?? 0;
        name.textContent = `${c.name} · ${(share * 100).toFixed(1)}%${index === 0 ? ' (not painted)' : ''}`;
        item.append(swatch, name);
        return item;
    }));
    $('seg-result').hidden = false;
}

$('segment').addEventListener('click', segmentVisible);

// ---- tile details ------------------------------------------------------------------------------------------

function showTileAt(position) {
    const run = state.run;
    if (!run || !viewer) return;
    const p = viewer.viewport.viewerElementToImageCoordinates(position);
    let found = null;
    for (const tile of run.tiles.values()) {
        if (p.x >= tile.x && p.x < tile.x + tile.width && p.y >= tile.y && p.y < tile.y + tile.height) { found = tile; break; }
    }
    if (found) showTile(found);
}

function showTile(tile) {
    const classes = state.run?.header?.classes || [];
    $('tile-details').hidden = false;
    $('tile-details').dataset.index = tile.index;
    $('tile-index').textContent = tile.index;
    const rows = [
        ['Position', `${tile.x}, ${tile.y} (${tile.width} × ${tile.height} px)`],
        ['Raw score', tile.score.toFixed(4)],
        ['Attention', tile.attention === undefined ? 'after the analysis' : tile.attention.toExponential(3)],
        ['Percentile', tile.percentile === undefined ? 'after the analysis' : tile.percentile.toFixed(1)],
        ...tile.probabilities.map((p, i) => [`P(${classes[i] ?? i})`, p.toFixed(4)]),
    ];
    $('tile-values').replaceChildren(...rows.flatMap(([name, value]) => {
        const dt = document.createElement('dt'), dd = document.createElement('dd');
        dt.textContent = name;
        dd.textContent = value;
        dd.dataset.name = name;
        return [dt, dd];
    }));
}

// ---- exports -----------------------------------------------------------------------------------------------

for (const button of document.querySelectorAll('#exports button')) {
    button.addEventListener('click', async () => {
        const key = state.run?.result?.header?.key ?? state.run?.header?.key;
        if (!key) return;
        try {
            // Fetched rather than linked: a link cannot carry the token.
            const response = await call(`/v1/analyses/${encodeURIComponent(key)}/export?format=${button.dataset.format}`);
            const link = document.createElement('a');
            link.href = URL.createObjectURL(await response.blob());
            const name = state.run.slide.path.split('/').pop().replace(/\.[^.]*$/, '');
            link.download = `${name}.${{ geojson: 'geojson', csv: 'csv', heatmap: 'heatmap.png' }[button.dataset.format]}`;
            link.click();
            setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
        } catch (e) {
            showMessage($('analysis-message'), `Export failed: ${e.message}`, true);
        }
    });
}

$('analyze').addEventListener('click', analyze);
$('cancel').addEventListener('click', cancelAnalysis);

// For scripts and tests driving the page: the viewer, and where a level-0 point is in the page.
window.slidePlugin = {
    get viewer() { return viewer; },
    imageToPage(x, y) {
        const [ox, oy] = imageToOverlay(x, y);
        const rect = overlay.getBoundingClientRect();
        return { x: rect.left + ox, y: rect.top + oy };
    },
};

// The viewer is made before any slide is opened: its set-up is not on the path from the click to the first tile.
createViewer();
start();
