// clipsight browser UI: search box with filter chips, an infinite-scrolling result grid,
// search by uploaded image, and a details panel. The state of the page lives in the URL.

const PAGE_SIZE = 60;
const DEBOUNCE_MS = 250;
const COMMIT_MS = 1000;
const DATE_DEBOUNCE_MS = 500;
const STATS_POLL_MS = 3000;
const SKELETON_TILES = 18;
const MODES = ['hybrid', 'vector', 'keyword'];
const FILTERS = ['folder', 'type', 'camera', 'after', 'before'];
const DATE_PATTERN = /^\d{4}-\d{2}-\d{2}$/;
const SKELETON_RATIOS = [1.5, 0.75, 1.33, 1, 1.78, 0.8];

const $ = (selector) => document.querySelector(selector);

const ui = {
  app: $('#app'),
  form: $('#search-form'),
  input: $('#q'),
  mode: $('#mode'),
  uploadButton: $('#upload-button'),
  upload: $('#upload'),
  filters: $('#filters'),
  filterSelects: [...document.querySelectorAll('#filters select[data-filter]')],
  after: $('#filter-after'),
  before: $('#filter-before'),
  indexing: $('#indexing'),
  indexingText: $('#indexing-text'),
  indexingBar: $('#indexing-bar'),
  context: $('#context'),
  contextThumb: $('#context-thumb'),
  contextTitle: $('#context-title'),
  contextClear: $('#context-clear'),
  error: $('#error'),
  status: $('#status'),
  results: $('#results'),
  empty: $('#empty'),
  sentinel: $('#sentinel'),
  dropOverlay: $('#drop-overlay'),
  details: $('#details'),
  detailsPanel: $('#details-panel'),
  detailsBackdrop: $('#details-backdrop'),
  detailsTitle: $('#details-title'),
  stage: $('#details-stage'),
  placeholder: $('#details-placeholder'),
  stageImage: $('#details-image'),
  prev: $('#details-prev'),
  next: $('#details-next'),
  close: $('#details-close'),
  moreLikeThis: $('#more-like-this'),
  describe: $('#describe'),
  original: $('#details-original'),
  meta: $('#details-meta'),
  tags: $('#details-tags'),
  description: $('#description'),
};

/** What the URL describes: the search, and the image open in the details panel (or null). */
const state = {
  q: '',
  mode: 'hybrid',
  folder: '',
  type: '',
  camera: '',
  after: '',
  before: '',
  similar: null,
  image: null,
};

/** What the grid shows; replaced as a whole by each new search (see beginResults). */
let view = {
  key: null,
  params: { ...state },
  upload: null,
  paged: false,
  fetchPage: null,
  hits: [],
  offset: 0,
  done: true,
  loading: false,
  failed: false,
  pending: null,
  controller: null,
};

/** Uploaded images of this session, by token, so that Back/Forward can show their results again. */
const uploads = new Map();
/** Image metadata requests, by id. */
const metaCache = new Map();
/** What the server last said about the library. */
const library = { images: null, indexing: false, polling: false };
const timers = { debounce: 0, commit: 0, dates: 0, stats: 0 };
/** True while the current history entry was created by typing and is still being edited. */
let provisional = false;
/** Nesting depth of dragenter/dragleave pairs, to know when a drag left the window. */
let dragDepth = 0;

const observer = new IntersectionObserver(onSentinel, { rootMargin: '0px 0px 900px 0px' });

/* ───────────────────────────── URL and history ───────────────────────────── */

/** Parses an image id URL parameter; null when absent or malformed. */
function parseId(value) {
  return value && /^\d+$/.test(value) ? Number(value) : null;
}

/** Reads the state described by the current URL. */
function readUrlState() {
  const params = new URLSearchParams(location.search);
  const text = (name) => (params.get(name) ?? '').trim();
  const date = (name) => (DATE_PATTERN.test(text(name)) ? text(name) : '');
  return {
    q: text('q'),
    mode: MODES.includes(text('mode')) ? text('mode') : 'hybrid',
    folder: text('folder'),
    type: text('type'),
    camera: text('camera'),
    after: date('after'),
    before: date('before'),
    similar: parseId(params.get('similar')),
    image: parseId(params.get('image')),
  };
}

/** Builds the query string (with its leading "?") that describes a state. */
function urlFor(s) {
  const params = new URLSearchParams();
  if (s.q) params.set('q', s.q);
  params.set('mode', s.mode);
  for (const key of FILTERS) {
    if (s[key]) params.set(key, s[key]);
  }
  if (s.similar !== null) params.set('similar', String(s.similar));
  if (s.image !== null) params.set('image', String(s.image));
  return `?${params}`;
}

/**
 * Records the state in the session history, as a new entry ('push') or in place ('replace').
 * The entry remembers the upload shown in the grid and whether the details panel was opened by it.
 */
function navigate(how) {
  const url = urlFor(state);
  const opened = state.image !== null && (how === 'push' || Boolean(history.state?.opened));
  const entry = { upload: view.upload, opened };
  const unchanged = url === location.search && view.upload === (history.state?.upload ?? null);
  if (how === 'push' && !unchanged) {
    history.pushState(entry, '', url);
  } else {
    history.replaceState(entry, '', url);
  }
}

/** Brings the page in line with the current URL and history entry (on load, Back and Forward). */
function restoreFromHistory() {
  cancelTyping();
  provisional = false;
  Object.assign(state, readUrlState());
  ui.input.value = state.q;
  syncControls();
  const token = history.state?.upload ?? null;
  if (token !== null && uploads.has(token)) {
    if (view.upload !== token) startUploadSearch(token);
  } else if (view.upload !== null || view.failed || searchKey(state) !== view.key) {
    startSearch();
  }
  syncDetails();
}

/* ───────────────────────────── Typing and controls ───────────────────────────── */

/** Stops a pending debounced search and the pending history commit. */
function cancelTyping() {
  clearTimeout(timers.debounce);
  clearTimeout(timers.commit);
  timers.debounce = 0;
}

/** Schedules the search for the text being typed, and the history commit after a pause. */
function onQueryInput() {
  clearTimeout(timers.debounce);
  timers.debounce = setTimeout(() => submitQuery(false), DEBOUNCE_MS);
  clearTimeout(timers.commit);
  timers.commit = setTimeout(() => {
    provisional = false;
  }, COMMIT_MS);
}

/** Runs the search typed in the box; typing edits one provisional history entry, Enter commits it. */
function submitQuery(commit) {
  clearTimeout(timers.debounce);
  timers.debounce = 0;
  const q = ui.input.value.trim();
  const changed = q !== state.q || state.similar !== null || view.upload !== null || view.failed;
  if (!changed && !commit) return;
  Object.assign(state, { q, similar: null, image: null });
  if (changed) startSearch();
  navigate(provisional ? 'replace' : 'push');
  provisional = !commit;
  if (commit) clearTimeout(timers.commit);
}

/** Handles Enter in the search box. */
function onSubmit(event) {
  event.preventDefault();
  submitQuery(true);
}

/** Reads the search box, mode selector and filter chips. */
function readControls() {
  const controls = { q: ui.input.value.trim(), mode: ui.mode.value, after: ui.after.value, before: ui.before.value };
  for (const select of ui.filterSelects) controls[select.dataset.filter] = select.value;
  return controls;
}

/** Shows the state's mode and filters in the controls, and marks the active chips. */
function syncControls() {
  ui.mode.value = state.mode;
  for (const select of ui.filterSelects) selectValue(select, state[select.dataset.filter]);
  ui.after.value = state.after;
  ui.before.value = state.before;
  for (const chip of ui.filters.querySelectorAll('.chip')) {
    const name = chip.dataset.filter;
    const active = name === 'date' ? Boolean(state.after || state.before) : Boolean(state[name]);
    chip.classList.toggle('active', active);
    chip.querySelector('.chip-remove').hidden = !active;
  }
}

/** Selects a value in a filter menu, adding it as an option when the facets lack it (a shared link). */
function selectValue(select, value) {
  if (value && ![...select.options].some((option) => option.value === value)) {
    select.append(new Option(value, value));
  }
  select.value = value;
}

/** Starts a new search from the controls, as a new history entry. */
function runNewSearch(changes) {
  cancelTyping();
  clearTimeout(timers.dates);
  provisional = false;
  Object.assign(state, changes, { image: null });
  ui.input.value = state.q;
  hideDetails();
  syncControls();
  startSearch();
  navigate('push');
}

/** Applies a changed mode or filter menu. */
function onControlsChange(event) {
  if (event.target === ui.after || event.target === ui.before) {
    clearTimeout(timers.dates);
    timers.dates = setTimeout(() => runNewSearch(readControls()), DATE_DEBOUNCE_MS);
    return;
  }
  runNewSearch(readControls());
}

/** Removes a filter when its pill's × is clicked. */
function onFilterRemove(event) {
  const button = event.target.closest('.chip-remove');
  if (!button) return;
  const name = button.dataset.filter;
  const cleared = name === 'date' ? { after: '', before: '' } : { [name]: '' };
  runNewSearch({ ...readControls(), ...cleared });
}

/* ───────────────────────────── Searching ───────────────────────────── */

/** Identifies a search, so that a history step can tell whether the grid must be reloaded. */
function searchKey(s) {
  return JSON.stringify([s.q, s.mode, s.similar, ...FILTERS.map((key) => s[key])]);
}

/** True when any filter chip is set. */
function hasFilters(s) {
  return FILTERS.some((key) => s[key]);
}

/** Quotes a filter value that contains spaces, so the query language keeps it in one token. */
function quoteValue(value) {
  return /\s/.test(value) ? `"${value.replaceAll('"', '')}"` : value;
}

/** The query sent to the server: the typed text, the "more like" image and the filter tokens. */
function composeQuery(s) {
  const parts = [s.q];
  if (s.similar !== null) parts.push(`+img:${s.similar}`);
  for (const key of FILTERS) {
    if (s[key]) parts.push(`${key}:${quoteValue(s[key])}`);
  }
  return parts.filter(Boolean).join(' ');
}

/** The API URL of one page of results for a state. */
function searchPageUrl(s, offset) {
  if (s.similar !== null && !s.q && !hasFilters(s)) {
    return `/api/images/${s.similar}/similar?${new URLSearchParams({ k: PAGE_SIZE, offset })}`;
  }
  return `/api/search?${new URLSearchParams({ q: composeQuery(s), k: PAGE_SIZE, offset, mode: s.mode })}`;
}

/** Fetches JSON; a non-2xx answer throws an Error carrying the API's message. */
async function fetchJson(url, options = {}) {
  let response;
  try {
    response = await fetch(url, options);
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new Error('Cannot reach the clipsight server — is it running?');
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    throw new Error(body?.error?.message ?? `The server answered ${response.status} ${response.statusText}`.trim());
  }
  if (body === null) throw new Error('The server sent an unreadable answer.');
  return body;
}

/** Starts a text, browse or "more like this" search for the current state. */
function startSearch() {
  const params = { ...state, image: null };
  beginResults({
    key: searchKey(params),
    params,
    upload: null,
    paged: true,
    fetchPage: (offset, signal) => fetchJson(searchPageUrl(params, offset), { signal }),
  });
}

/** Starts a search by the uploaded image stored under a token. */
function startUploadSearch(token) {
  const { file } = uploads.get(token);
  beginResults({
    key: null,
    params: { ...state, image: null },
    upload: token,
    paged: false,
    fetchPage: (offset, signal) => {
      const form = new FormData();
      form.append('image', file, file.name || 'pasted-image.png');
      return fetchJson(`/api/search/image?k=${PAGE_SIZE}`, { method: 'POST', body: form, signal });
    },
  });
}

/** Replaces the grid with a new result set, aborting the previous one, and loads its first page. */
function beginResults(spec) {
  view.controller?.abort();
  view = { ...spec, hits: [], offset: 0, done: false, loading: false, failed: false, pending: null, controller: null };
  document.body.dataset.view = spec.upload === null ? 'search' : 'upload';
  document.title = spec.params.q ? `${spec.params.q} — clipsight` : 'clipsight';
  hideError();
  ui.empty.hidden = true;
  ui.results.removeAttribute('data-q');
  renderSkeletons();
  renderContext();
  setStatus('Searching…');
  window.scrollTo({ top: 0 });
  loadMore();
}

/** Loads the next page of the grid unless one is loading or none is left; resolves when it is in. */
function loadMore() {
  if (!view.loading && !view.done) view.pending = loadPage(view);
  return view.pending ?? Promise.resolve();
}

/** Fetches one page into a result set; the answer is dropped if that set was replaced meanwhile. */
async function loadPage(target) {
  const controller = new AbortController();
  target.controller = controller;
  target.loading = true;
  ui.results.setAttribute('aria-busy', 'true');
  ui.sentinel.classList.toggle('loading', target.offset > 0);
  try {
    const data = await target.fetchPage(target.offset, controller.signal);
    if (target === view) showPage(data);
  } catch (error) {
    if (target === view && error.name !== 'AbortError') showFailure(error.message);
  } finally {
    target.loading = false;
    if (target === view) {
      ui.results.removeAttribute('aria-busy');
      ui.sentinel.classList.remove('loading');
    }
  }
}

/** Adds a page of hits to the grid and updates the status line and empty state. */
function showPage(data) {
  const hits = Array.isArray(data.results) ? data.results : [];
  if (view.offset === 0) ui.results.replaceChildren();
  view.offset += PAGE_SIZE;
  view.done = !view.paged || hits.length < PAGE_SIZE;
  view.hits.push(...hits);
  noteLibrary(data);
  ui.results.append(...hits.map(createTile));
  ui.results.dataset.q = view.params.q;
  setStatus(formatStatus(view.hits.length, data.took_ms));
  renderEmpty();
  updateStepButtons();
  rearmObserver();
}

/** Shows a failed search or page load. */
function showFailure(message) {
  view.failed = true;
  view.done = true;
  if (view.hits.length === 0) ui.results.replaceChildren();
  showError(message);
  setStatus(view.hits.length ? formatStatus(view.hits.length) : '');
}

/** Takes the library size and indexing flag from a search answer. */
function noteLibrary(data) {
  if (typeof data.total_images === 'number') library.images = data.total_images;
  if (data.indexing === true && !library.indexing) pollStats();
}

/** "60 results · 12 ms". */
function formatStatus(count, tookMs) {
  const results = `${count} ${count === 1 ? 'result' : 'results'}`;
  if (typeof tookMs !== 'number') return results;
  return `${results} · ${tookMs < 10 ? tookMs.toFixed(1) : Math.round(tookMs)} ms`;
}

/** Sets the status line (an aria-live region). */
function setStatus(text) {
  ui.status.textContent = text;
}

/** Shows an error banner with a message. */
function showError(message) {
  ui.error.textContent = message;
  ui.error.hidden = false;
}

/** Hides the error banner. */
function hideError() {
  ui.error.hidden = true;
  ui.error.textContent = '';
}

/* ───────────────────────────── Infinite scroll ───────────────────────────── */

/** Loads more when the sentinel below the grid comes near the viewport. */
function onSentinel(entries) {
  if (entries.some((entry) => entry.isIntersecting)) loadMore();
}

/** Re-observes the sentinel, so that a sentinel still in view after a page load triggers again. */
function rearmObserver() {
  observer.unobserve(ui.sentinel);
  if (!view.done) observer.observe(ui.sentinel);
}

/* ───────────────────────────── Rendering the grid ───────────────────────────── */

/** Creates an element with a class name and optional text. */
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** The thumbnail URL of an image id. */
function thumbnailUrl(id) {
  return `/api/images/${id}/thumbnail`;
}

/** The original file URL of an image id. */
function fileUrl(id) {
  return `/api/images/${id}/file`;
}

/** Width/height of a hit for the justified layout, kept within sane bounds for panoramas. */
function aspectRatio(hit) {
  const ratio = hit.width > 0 && hit.height > 0 ? hit.width / hit.height : 1;
  return Math.min(2.4, Math.max(0.6, ratio)).toFixed(4);
}

/** Builds the grid tile of one hit. */
function createTile(hit) {
  const score = Number(hit.score);
  const scoreText = Number.isFinite(score) ? score.toFixed(3) : '';
  const tile = el('a', 'result');
  tile.href = `?image=${hit.id}&${urlFor(view.params).slice(1)}`;
  tile.dataset.id = String(hit.id);
  tile.dataset.score = Number.isFinite(score) ? score.toFixed(4) : '';
  tile.title = scoreText ? `${hit.name} · ${scoreText}` : hit.name;
  tile.style.setProperty('--ar', aspectRatio(hit));

  const img = document.createElement('img');
  img.loading = 'lazy';
  img.decoding = 'async';
  img.draggable = false;
  img.alt = hit.name;
  img.src = hit.thumbnail || thumbnailUrl(hit.id);

  const caption = el('span', 'caption');
  caption.append(el('span', 'caption-name', hit.name));
  if (scoreText) caption.append(el('span', 'caption-score', scoreText));
  tile.append(img, caption);
  return tile;
}

/** Fills the grid with placeholder tiles while the first page loads. */
function renderSkeletons() {
  const tiles = Array.from({ length: SKELETON_TILES }, (_, index) => {
    const tile = el('div', 'skeleton');
    tile.style.setProperty('--ar', String(SKELETON_RATIOS[index % SKELETON_RATIOS.length]));
    tile.setAttribute('aria-hidden', 'true');
    return tile;
  });
  ui.results.replaceChildren(...tiles);
}

/** Shows the empty-library or no-results message when the grid is empty. */
function renderEmpty() {
  ui.empty.hidden = view.hits.length > 0;
  if (ui.empty.hidden) return;
  if (library.images === 0) {
    const title = el('p', 'empty-title', 'No photos indexed yet — run ');
    title.append(el('code', '', 'clipsight index PHOTOS'));
    const hint = library.indexing
      ? 'Indexing is running — your photos appear here as soon as it finishes.'
      : 'Point it at a folder of photos, then reload this page.';
    ui.empty.dataset.kind = 'library';
    ui.empty.replaceChildren(title, el('p', 'empty-hint', hint));
    return;
  }
  const q = view.params.q;
  ui.empty.dataset.kind = 'no-results';
  ui.empty.replaceChildren(
    el('p', 'empty-title', q ? `No results for “${q}”` : 'No matching photos'),
    el('p', 'empty-hint', 'Try other words, remove a filter, or switch the ranking mode.'),
  );
}

/** Shows the "Similar to your image" / "More like <name>" banner, or hides it. */
function renderContext() {
  const similar = view.params.similar;
  if (view.upload !== null) {
    ui.contextThumb.src = uploads.get(view.upload).preview;
    ui.contextTitle.textContent = 'Similar to your image';
  } else if (similar !== null) {
    ui.contextThumb.src = thumbnailUrl(similar);
    ui.contextTitle.textContent = 'More like this photo';
    nameSimilar(similar);
  } else {
    ui.context.hidden = true;
    ui.contextThumb.removeAttribute('src');
    return;
  }
  ui.context.hidden = false;
}

/** Puts the source image's name in the "More like" banner once its metadata is known. */
async function nameSimilar(id) {
  try {
    const meta = await getMeta(id);
    if (view.params.similar === id && view.upload === null) ui.contextTitle.textContent = `More like ${meta.name}`;
  } catch {
    // The banner keeps its generic title; the search itself reports a bad id.
  }
}

/** Leaves the "similar" or upload view for a plain search with the current text and filters. */
function clearContext() {
  runNewSearch({ ...readControls(), similar: null });
}

/* ───────────────────────────── Search by image ───────────────────────────── */

/** The first image among some files, or undefined. */
function firstImage(files) {
  return Array.from(files).find((file) => file.type.startsWith('image/'));
}

/** Shows the images most similar to an uploaded, dropped or pasted file, as a new history entry. */
function searchByFile(file) {
  const token = `${Date.now()}-${uploads.size}`;
  uploads.set(token, { file, preview: URL.createObjectURL(file) });
  cancelTyping();
  provisional = false;
  Object.assign(state, { q: '', similar: null, image: null });
  ui.input.value = '';
  hideDetails();
  startUploadSearch(token);
  navigate('push');
}

/** Handles a file chosen with the upload button. */
function onUploadChosen() {
  const file = firstImage(ui.upload.files);
  ui.upload.value = '';
  if (file) searchByFile(file);
  else showError('Choose an image file (JPEG, PNG, WebP, GIF…) to find similar photos.');
}

/** True when a drag carries files. */
function draggingFiles(event) {
  return Array.from(event.dataTransfer?.types ?? []).includes('Files');
}

/** Shows the drop overlay when files are dragged onto the page. */
function onDragEnter(event) {
  if (!draggingFiles(event)) return;
  event.preventDefault();
  dragDepth += 1;
  ui.dropOverlay.hidden = false;
}

/** Accepts a file drag anywhere on the page. */
function onDragOver(event) {
  if (!draggingFiles(event)) return;
  event.preventDefault();
  event.dataTransfer.dropEffect = 'copy';
}

/** Hides the drop overlay when the drag leaves the window. */
function onDragLeave(event) {
  if (!draggingFiles(event)) return;
  dragDepth = Math.max(0, dragDepth - 1);
  if (dragDepth === 0) ui.dropOverlay.hidden = true;
}

/** Searches by the dropped image. */
function onDrop(event) {
  if (!draggingFiles(event)) return;
  event.preventDefault();
  dragDepth = 0;
  ui.dropOverlay.hidden = true;
  const file = firstImage(event.dataTransfer.files);
  if (file) searchByFile(file);
  else showError('Drop an image file (JPEG, PNG, WebP, GIF…) to find similar photos.');
}

/** Searches by an image pasted from the clipboard; text pastes are left alone. */
function onPaste(event) {
  const file = firstImage(event.clipboardData?.files ?? []);
  if (!file) return;
  event.preventDefault();
  searchByFile(file);
}

/* ───────────────────────────── Details panel ───────────────────────────── */

/** The image metadata for an id, fetched once. */
function getMeta(id) {
  if (!metaCache.has(id)) {
    const request = fetchJson(`/api/images/${id}`);
    request.catch(() => metaCache.delete(id));
    metaCache.set(id, request);
  }
  return metaCache.get(id);
}

/** The id shown in the details panel, or null when it is closed. */
function detailsId() {
  return ui.details.hidden ? null : Number(ui.details.dataset.id);
}

/** Opens the details panel for an image, as a new history entry. */
function openImage(id) {
  if (timers.debounce) submitQuery(true);
  cancelTyping();
  provisional = false;
  state.image = id;
  navigate('push');
  showDetails(id);
}

/** Opens or closes the details panel to match the state. */
function syncDetails() {
  if (state.image === null) hideDetails();
  else showDetails(state.image);
}

/** Shows an image in the details panel (the history is left alone). */
function showDetails(id) {
  if (detailsId() === id) return;
  const opening = ui.details.hidden;
  ui.details.dataset.id = String(id);
  ui.details.hidden = false;
  ui.app.inert = true;
  document.body.classList.add('modal-open');

  const hit = view.hits.find((candidate) => candidate.id === id);
  ui.detailsTitle.textContent = hit?.name ?? 'Loading…';
  ui.detailsTitle.removeAttribute('title');
  ui.meta.replaceChildren();
  ui.tags.hidden = true;
  ui.tags.replaceChildren();
  ui.description.hidden = true;
  ui.description.replaceChildren();
  ui.describe.disabled = false;
  ui.original.href = fileUrl(id);
  showStage(id, hit?.name ?? '');
  updateStepButtons();
  if (opening) ui.detailsPanel.focus();
  fillMeta(id);
}

/** Shows the thumbnail at once and the original file over it when it has loaded. */
function showStage(id, name) {
  ui.stage.dataset.state = 'loading';
  ui.placeholder.src = thumbnailUrl(id);
  ui.stageImage.alt = name;
  ui.stageImage.src = fileUrl(id);
}

/** Reveals the original once it has loaded. */
function onStageLoad() {
  ui.stage.dataset.state = 'loaded';
}

/** Keeps the thumbnail when the browser cannot show the original (e.g. TIFF). */
function onStageError() {
  if (ui.stageImage.getAttribute('src')) ui.stage.dataset.state = 'failed';
}

/** Loads and renders an image's metadata, unless the panel moved on meanwhile. */
async function fillMeta(id) {
  try {
    const meta = await getMeta(id);
    if (detailsId() === id) renderMeta(meta);
  } catch (error) {
    if (detailsId() === id) ui.meta.replaceChildren(el('p', 'meta-error', error.message));
  }
}

/** Renders the name, metadata rows and tag chips of an image. */
function renderMeta(meta) {
  ui.detailsTitle.textContent = meta.name;
  ui.detailsTitle.title = meta.path ?? '';
  ui.stageImage.alt = meta.name;
  const rows = metaRows(meta).flatMap(([label, value]) => [el('dt', '', label), el('dd', '', value)]);
  ui.meta.replaceChildren(...rows);
  const tags = Array.isArray(meta.tags) ? meta.tags : [];
  ui.tags.replaceChildren(...tags.map(createTagChip));
  ui.tags.hidden = tags.length === 0;
}

/** The label/value pairs shown for an image, skipping unknown values. */
function metaRows(meta) {
  const hasSize = meta.width > 0 && meta.height > 0;
  return [
    ['Folder', meta.folder],
    ['Dimensions', hasSize ? `${meta.width} × ${meta.height} · ${((meta.width * meta.height) / 1e6).toFixed(1)} MP` : ''],
    ['Format', meta.format ? String(meta.format).toUpperCase() : ''],
    ['Size', Number.isFinite(meta.size) ? formatBytes(meta.size) : ''],
    ['Taken', meta.date_taken ? formatDate(meta.date_taken) : ''],
    ['Camera', meta.camera],
    ['Lens', meta.lens],
    ['Location', Array.isArray(meta.gps) && meta.gps.length === 2 ? formatGps(meta.gps) : ''],
  ].filter(([, value]) => value);
}

/** A tag chip that searches for its tag. */
function createTagChip(tag) {
  const chip = el('button', 'tag', tag);
  chip.type = 'button';
  chip.title = `Search for “${tag}”`;
  chip.addEventListener('click', () => runNewSearch({ ...readControls(), q: tag, similar: null }));
  return chip;
}

/** "2.4 MB". */
function formatBytes(bytes) {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** A local, readable date for an EXIF "YYYY-MM-DD HH:MM:SS" (or date-only) string. */
function formatDate(text) {
  const dateOnly = text.length <= 10;
  const date = new Date(dateOnly ? `${text}T00:00:00` : text.replace(' ', 'T'));
  if (Number.isNaN(date.getTime())) return text;
  return date.toLocaleString(undefined, dateOnly ? { dateStyle: 'medium' } : { dateStyle: 'medium', timeStyle: 'short' });
}

/** "48.85837° N, 2.29448° E". */
function formatGps([lat, lon]) {
  const part = (value, positive, negative) => `${Math.abs(value).toFixed(5)}° ${value >= 0 ? positive : negative}`;
  return `${part(lat, 'N', 'S')}, ${part(lon, 'E', 'W')}`;
}

/** Hides the details panel (the history is left alone) and gives focus back to the image's tile. */
function hideDetails() {
  if (ui.details.hidden) return;
  const id = ui.details.dataset.id;
  ui.details.hidden = true;
  ui.details.removeAttribute('data-id');
  ui.app.inert = false;
  document.body.classList.remove('modal-open');
  ui.stageImage.removeAttribute('src');
  ui.results.querySelector(`.result[data-id="${id}"]`)?.focus();
}

/** Closes the panel: steps Back when it was opened by a history entry of its own. */
function closeDetails() {
  if (ui.details.hidden) return;
  const opened = Boolean(history.state?.opened);
  state.image = null;
  hideDetails();
  if (opened) history.back();
  else navigate('replace');
}

/** Enables the previous/next buttons according to the image's place in the grid. */
function updateStepButtons() {
  const index = view.hits.findIndex((hit) => hit.id === detailsId());
  ui.prev.disabled = index <= 0;
  ui.next.disabled = index < 0 || (index === view.hits.length - 1 && view.done);
}

/** Shows the previous (-1) or next (+1) result, loading the next page when needed. */
async function stepDetails(delta) {
  const current = view;
  const index = current.hits.findIndex((hit) => hit.id === detailsId());
  if (index < 0) return;
  if (index + delta >= current.hits.length) await loadMore();
  const target = current.hits[index + delta];
  if (!target || current !== view || ui.details.hidden) return;
  state.image = target.id;
  navigate('replace');
  showDetails(target.id);
}

/** Shows the images most like the one in the panel, as a new history entry. */
function showMoreLikeThis() {
  runNewSearch({ ...readControls(), q: '', similar: detailsId() });
}

/** Fills #description with the image's best captions and tag probabilities. */
async function describeImage() {
  const id = detailsId();
  ui.describe.disabled = true;
  ui.description.hidden = false;
  ui.description.replaceChildren(el('p', 'description-loading', 'Describing…'));
  try {
    const data = await fetchJson(`/api/images/${id}/describe?k=5`);
    if (detailsId() === id) renderDescription(data);
  } catch (error) {
    if (detailsId() !== id) return;
    ui.description.replaceChildren(el('p', 'description-error', error.message));
    ui.describe.disabled = false;
  }
}

/** Renders captions (with their cosine) and tags (with probability bars). */
function renderDescription({ captions = [], tags = [] }) {
  const parts = [];
  if (captions.length) {
    const list = el('ol', 'captions');
    for (const caption of captions) {
      const item = el('li', 'caption-row');
      item.append(el('span', 'caption-text', caption.text), el('span', 'caption-cosine', Number(caption.score).toFixed(3)));
      list.append(item);
    }
    parts.push(el('h3', 'description-heading', 'Captions'), list);
  }
  if (tags.length) {
    const list = el('ul', 'probabilities');
    list.append(...tags.map(createProbabilityRow));
    parts.push(el('h3', 'description-heading', 'Tags'), list);
  }
  if (!parts.length) parts.push(el('p', 'description-loading', 'No description available.'));
  ui.description.replaceChildren(...parts);
  ui.description.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
}

/** One tag with its probability as a bar and a percentage. */
function createProbabilityRow(tag) {
  const percent = Math.max(0, Math.min(100, Number(tag.score) * 100));
  const row = el('li', 'probability');
  const bar = el('span', 'probability-bar');
  const fill = el('span', 'probability-fill');
  fill.style.width = `${percent}%`;
  bar.append(fill);
  bar.setAttribute('aria-hidden', 'true');
  row.append(el('span', 'probability-label', tag.text), bar, el('span', 'probability-value', `${percent.toFixed(1)}%`));
  return row;
}

/* ───────────────────────────── Keyboard and clicks ───────────────────────────── */

/** Opens a clicked tile in the panel; modified clicks keep their browser meaning (new tab…). */
function onResultClick(event) {
  const tile = event.target.closest('.result');
  if (!tile || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  openImage(Number(tile.dataset.id));
}

/** True when keys typed into the target are text input. */
function isEditable(target) {
  return Boolean(target.closest?.('input, textarea, select, [contenteditable="true"]'));
}

/** Global keys: Escape and arrows in the panel, "/" for the search box, arrows in the grid. */
function onKeydown(event) {
  if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
  if (!ui.details.hidden) {
    onDetailsKey(event);
    return;
  }
  if (event.key === '/' && !isEditable(event.target)) {
    event.preventDefault();
    ui.input.focus();
    ui.input.select();
    return;
  }
  if (event.target === ui.input && event.key === 'ArrowDown') {
    const first = ui.results.querySelector('.result');
    if (first) {
      event.preventDefault();
      first.focus();
    }
    return;
  }
  const tile = event.target.closest?.('.result');
  if (tile && event.key.startsWith('Arrow')) {
    event.preventDefault();
    moveFocus(tile, event.key);
  }
}

/** Keys while the panel is open. */
function onDetailsKey(event) {
  if (event.key === 'Escape') {
    event.preventDefault();
    closeDetails();
  } else if (event.key === 'ArrowLeft') {
    event.preventDefault();
    stepDetails(-1);
  } else if (event.key === 'ArrowRight') {
    event.preventDefault();
    stepDetails(1);
  }
}

/** Moves the focus from a tile to its neighbour in an arrow's direction (up from the top row: the search box). */
function moveFocus(tile, key) {
  const tiles = [...ui.results.querySelectorAll('.result')];
  const index = tiles.indexOf(tile);
  const neighbours = {
    ArrowLeft: () => tiles[index - 1],
    ArrowRight: () => tiles[index + 1],
    ArrowUp: () => verticalNeighbour(tiles, tile, -1),
    ArrowDown: () => verticalNeighbour(tiles, tile, 1),
  };
  const target = neighbours[key]?.();
  if (target) target.focus();
  else if (key === 'ArrowUp') ui.input.focus();
}

/** The tile in the nearest row above (-1) or below (+1) whose centre is closest horizontally. */
function verticalNeighbour(tiles, from, direction) {
  const origin = from.getBoundingClientRect();
  const centre = origin.left + origin.width / 2;
  let best = null;
  let bestCost = Infinity;
  for (const tile of tiles) {
    const box = tile.getBoundingClientRect();
    const distance = direction > 0 ? box.top - origin.bottom : origin.top - box.bottom;
    if (distance < -1) continue;
    const cost = Math.round(distance) * 10000 + Math.abs(box.left + box.width / 2 - centre);
    if (cost < bestCost) {
      best = tile;
      bestCost = cost;
    }
  }
  return best;
}

/* ───────────────────────────── Facets and indexing ───────────────────────────── */

/** Fills the filter menus and date bounds from /api/facets. */
async function loadFacets() {
  try {
    const facets = await fetchJson('/api/facets');
    const menus = {
      folder: (facets.folders ?? []).map((value) => [value, value]),
      type: (facets.types ?? []).map((value) => [value, String(value).toUpperCase()]),
      camera: (facets.cameras ?? []).map((value) => [value, value]),
    };
    for (const select of ui.filterSelects) {
      select.replaceChildren(select.options[0], ...menus[select.dataset.filter].map(([value, label]) => new Option(label, value)));
    }
    for (const input of [ui.after, ui.before]) {
      input.min = facets.date_min ? facets.date_min.slice(0, 10) : '';
      input.max = facets.date_max ? facets.date_max.slice(0, 10) : '';
    }
    syncControls();
  } catch (error) {
    console.warn('clipsight: filter menus unavailable:', error.message);
  }
}

/** Polls /api/stats every few seconds while the library is being indexed; refreshes when it ends. */
async function pollStats() {
  if (library.polling) return;
  library.polling = true;
  clearTimeout(timers.stats);
  try {
    const stats = await fetchJson('/api/stats');
    library.images = stats.images;
    renderIndexing(stats);
    if (stats.indexing) {
      library.indexing = true;
      timers.stats = setTimeout(pollStats, STATS_POLL_MS);
    } else if (library.indexing) {
      library.indexing = false;
      refreshAfterIndexing();
    }
  } catch {
    if (library.indexing) timers.stats = setTimeout(pollStats, STATS_POLL_MS);
  } finally {
    library.polling = false;
  }
}

/** Shows or hides the "Indexing… 10/50" banner. */
function renderIndexing(stats) {
  ui.indexing.hidden = !stats.indexing;
  if (!stats.indexing) return;
  const total = stats.job?.total ?? 0;
  const done = stats.job?.done ?? 0;
  ui.indexingText.textContent = total > 0 ? `Indexing… ${done}/${total}` : 'Indexing…';
  ui.indexing.classList.toggle('indeterminate', total === 0);
  ui.indexingBar.style.width = total > 0 ? `${Math.min(100, (done / total) * 100)}%` : '';
}

/** Reloads the grid and the filter menus once indexing has finished. */
function refreshAfterIndexing() {
  metaCache.clear();
  loadFacets();
  if (view.upload === null) startSearch();
}

/* ───────────────────────────── Start ───────────────────────────── */

/** Wires up every event handler. */
function bindEvents() {
  ui.form.addEventListener('submit', onSubmit);
  ui.input.addEventListener('input', onQueryInput);
  ui.mode.addEventListener('change', onControlsChange);
  ui.filters.addEventListener('change', onControlsChange);
  ui.filters.addEventListener('click', onFilterRemove);
  ui.uploadButton.addEventListener('click', () => ui.upload.click());
  ui.upload.addEventListener('change', onUploadChosen);
  ui.contextClear.addEventListener('click', clearContext);
  ui.results.addEventListener('click', onResultClick);
  ui.detailsBackdrop.addEventListener('click', closeDetails);
  ui.close.addEventListener('click', closeDetails);
  ui.prev.addEventListener('click', () => stepDetails(-1));
  ui.next.addEventListener('click', () => stepDetails(1));
  ui.moreLikeThis.addEventListener('click', showMoreLikeThis);
  ui.describe.addEventListener('click', describeImage);
  ui.stageImage.addEventListener('load', onStageLoad);
  ui.stageImage.addEventListener('error', onStageError);
  document.addEventListener('keydown', onKeydown);
  document.addEventListener('paste', onPaste);
  window.addEventListener('dragenter', onDragEnter);
  window.addEventListener('dragover', onDragOver);
  window.addEventListener('dragleave', onDragLeave);
  window.addEventListener('drop', onDrop);
  window.addEventListener('popstate', restoreFromHistory);
}

bindEvents();
restoreFromHistory();
loadFacets();
pollStats();
