// The result grid: loads a result set page by page (infinite scroll) and renders it, with its status and banners.

import { ui, el } from './dom.js';
import { state, uploads, urlFor, searchKey } from './state.js';
import { PAGE_SIZE, fetchSearchPage, thumbnailUrl, getMeta, formatClock } from './api.js';
import { library, noteLibrary } from './indexing.js';

const SKELETON_TILES = 18;
const SKELETON_RATIOS = [1.5, 0.75, 1.33, 1, 1.78, 0.8];

/** What the grid shows, as `grid.view`; replaced as a whole by each new search (see beginResults). */
export const grid = {
  view: {
    key: null,
    params: { ...state },
    upload: null,
    paged: false,
    fetchPage: null,
    hits: [],
    relevant: null,
    divided: false,
    offset: 0,
    done: true,
    loading: false,
    failed: false,
    pending: null,
    controller: null,
  },
};

/** What to do after a page is shown (given by initGrid). */
const hooks = { pageShown: () => {} };

const observer = new IntersectionObserver(onSentinel, { rootMargin: '0px 0px 900px 0px' });

/** Sets what to do after each page is shown (update the details panel's previous/next buttons). */
export function initGrid({ pageShown }) {
  hooks.pageShown = pageShown;
}

/* ───────────────────────────── Searching ───────────────────────────── */

/** Starts a text, browse or "more like this" search for the current state. */
export function startSearch() {
  const params = { ...state, image: null };
  beginResults({
    key: searchKey(params),
    params,
    upload: null,
    paged: true,
    fetchPage: (offset, signal) => fetchSearchPage(params, offset, signal),
  });
}

/** Replaces the grid with a new result set, aborting the previous one, and loads its first page. */
export function beginResults(spec) {
  grid.view.controller?.abort();
  grid.view = { ...spec, hits: [], relevant: null, divided: false, offset: 0, done: false, loading: false, failed: false, pending: null, controller: null };
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
export function loadMore() {
  const view = grid.view;
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
    if (target === grid.view) showPage(data);
  } catch (error) {
    if (target === grid.view && error.name !== 'AbortError') showFailure(error.message);
  } finally {
    target.loading = false;
    if (target === grid.view) {
      ui.results.removeAttribute('aria-busy');
      ui.sentinel.classList.remove('loading');
    }
  }
}

/** Adds a page of hits to the grid and updates the status line and empty state. */
function showPage(data) {
  const view = grid.view;
  const hits = Array.isArray(data.results) ? data.results : [];
  if (view.offset === 0) ui.results.replaceChildren();
  view.offset += PAGE_SIZE;
  view.done = !view.paged || hits.length < PAGE_SIZE;
  view.hits.push(...hits);
  noteLibrary(data);
  if (typeof data.relevant_count === 'number') view.relevant = { count: data.relevant_count, more: Boolean(data.relevant_more) };
  for (const hit of hits) {
    if (hit.relevant === false && !view.divided) {
      view.divided = true;
      ui.results.append(createDivider(view.hits.indexOf(hit) > 0));
    }
    ui.results.append(createTile(hit));
  }
  ui.results.dataset.q = view.params.q;
  setStatus(formatStatus(view.hits.length, data.took_ms));
  renderEmpty();
  hooks.pageShown();
  rearmObserver();
}

/** Shows a failed search or page load. */
function showFailure(message) {
  const view = grid.view;
  view.failed = true;
  view.done = true;
  if (view.hits.length === 0) ui.results.replaceChildren();
  showError(message);
  setStatus(view.hits.length ? formatStatus(view.hits.length) : '');
}

/** "3 relevant · 60 results · 12 ms" (the relevant count when the query has one). */
function formatStatus(count, tookMs) {
  const relevant = grid.view.relevant;
  const parts = [];
  if (relevant) parts.push(`${relevant.count}${relevant.more ? '+' : ''} relevant`);
  parts.push(`${count} ${count === 1 ? 'result' : 'results'}`);
  if (typeof tookMs === 'number') parts.push(`${tookMs < 10 ? tookMs.toFixed(1) : Math.round(tookMs)} ms`);
  return parts.join(' · ');
}

/** Sets the status line (an aria-live region). */
function setStatus(text) {
  ui.status.textContent = text;
}

/** Shows an error banner with a message. */
export function showError(message) {
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
  if (!grid.view.done) observer.observe(ui.sentinel);
}

/* ───────────────────────────── Rendering the grid ───────────────────────────── */

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
  tile.href = `?image=${hit.id}&${urlFor(grid.view.params).slice(1)}`;
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
  if (hit.kind === 'video' && hit.frame) {
    // The moment that matched, falling back to the poster.
    img.src = hit.frame;
    img.addEventListener('error', () => { img.src = thumbnailUrl(hit.id); }, { once: true });
  }

  const caption = el('span', 'caption');
  caption.append(el('span', 'caption-name', hit.name));
  if (scoreText) caption.append(el('span', 'caption-score', scoreText));
  tile.append(img, caption);
  if (hit.kind === 'video') {
    const badge = el('span', 'video-badge', `▶ ${formatClock(hit.moment_s ?? 0)}`);
    badge.title = `Best moment at ${formatClock(hit.moment_s ?? 0)} of ${formatClock(hit.duration_s ?? 0)}`;
    tile.append(badge);
  }
  const companions = Array.isArray(hit.companions) ? hit.companions : [];
  if (companions.length) {
    // A RAW+JPEG pair or a Live Photo: one tile, its other files named on a badge.
    const label = [...new Set(companions.map((c) => (c.role === 'motion' ? 'LIVE' : 'RAW')))].join(' · ');
    const badge = el('span', 'video-badge', label);
    badge.title = companions.map((c) => c.name).join(', ');
    tile.append(badge);
  }
  return tile;
}

/** The line above the first less relevant result ("No relevant results" when none are). */
function createDivider(afterRelevant) {
  const divider = el('div', 'relevance-divider');
  divider.setAttribute('role', 'separator');
  divider.append(el('span', '', afterRelevant ? 'Less relevant' : 'No relevant results — the closest ones'));
  return divider;
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
  ui.empty.hidden = grid.view.hits.length > 0;
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
  const q = grid.view.params.q;
  ui.empty.dataset.kind = 'no-results';
  ui.empty.replaceChildren(
    el('p', 'empty-title', q ? `No results for “${q}”` : 'No matching photos'),
    el('p', 'empty-hint', 'Try other words, remove a filter, or switch the ranking mode.'),
  );
}

/** Shows the "Similar to your image" / "More like <name>" banner, or hides it. */
function renderContext() {
  const similar = grid.view.params.similar;
  if (grid.view.upload !== null) {
    ui.contextThumb.src = uploads.get(grid.view.upload).preview;
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
    if (grid.view.params.similar === id && grid.view.upload === null) ui.contextTitle.textContent = `More like ${meta.name}`;
  } catch {
    // The banner keeps its generic title; the search itself reports a bad id.
  }
}

/* ───────────────────────────── Keyboard focus in the grid ───────────────────────────── */

/** Moves the focus from a tile to its neighbour in an arrow's direction (up from the top row: the search box). */
export function moveFocus(tile, key) {
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
