// The clipsight JSON API: request URLs, fetching with readable errors, and each call the page makes.

import { composeQuery, hasFilters, sortParams } from './state.js';

/** Results asked for per page (and per search by image). */
export const PAGE_SIZE = 60;

/**
 * The browser's language, sent with text queries: models that read one (NLLB-CLIP) write its
 * FLORES-200 code before the text; the others ignore it.
 */
const LANGUAGE = navigator.language || 'en';

/** Image metadata requests, by id. */
const metaCache = new Map();

/** Fetches JSON; a non-2xx answer throws an Error carrying the API's message. */
async function fetchJson(url, options = {}) {
  let response;
  try {
    response = await fetch(url, options);
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new Error('Cannot reach the clipsight server — is it running?');
  }
  if (response.status === 401) {
    // The session ended (expired, signed out elsewhere, server restarted): sign in again and
    // come back to this very page.
    location.assign(`/signin?next=${encodeURIComponent(location.pathname + location.search)}`);
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    throw new Error(body?.error?.message ?? `The server answered ${response.status} ${response.statusText}`.trim());
  }
  if (body === null) throw new Error('The server sent an unreadable answer.');
  return body;
}

/** The API URL of one page of results for a state. */
function searchPageUrl(s, offset) {
  if (s.similar !== null && !s.q && !hasFilters(s) && s.sort === 'score') {
    return `/api/images/${s.similar}/similar?${new URLSearchParams({ k: PAGE_SIZE, offset })}`;
  }
  const params = { q: composeQuery(s), k: PAGE_SIZE, offset, mode: s.mode, lang: LANGUAGE, ...sortParams(s) };
  return `/api/search?${new URLSearchParams(params)}`;
}

/** "1:05" or "1:02:05" for a number of seconds. */
export function formatClock(seconds) {
  const total = Math.max(0, Math.floor(Number(seconds) || 0));
  const [h, m, s] = [Math.floor(total / 3600), Math.floor((total % 3600) / 60), total % 60];
  const two = (n) => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${two(m)}:${two(s)}` : `${m}:${two(s)}`;
}

/** The thumbnail URL of an image id. */
export function thumbnailUrl(id) {
  return `/api/images/${id}/thumbnail`;
}

/** A JPEG rendering of an image id's original, for formats browsers cannot show. */
export function previewUrl(id) {
  return `/api/images/${id}/preview`;
}

/** The original file URL of an image id. */
export function fileUrl(id) {
  return `/api/images/${id}/file`;
}

/** One page of results for a state (text, browse or "more like this"). */
export function fetchSearchPage(s, offset, signal) {
  return fetchJson(searchPageUrl(s, offset), { signal });
}

/** The images most similar to an image file, posted as a form, in the state's order. */
export function fetchImageSearch(file, s, signal) {
  const form = new FormData();
  form.append('image', file, file.name || 'pasted-image.png');
  return fetchJson(`/api/search/image?${new URLSearchParams({ k: PAGE_SIZE, ...sortParams(s) })}`, { method: 'POST', body: form, signal });
}

/** The image metadata for an id, fetched once. */
export function getMeta(id) {
  if (!metaCache.has(id)) {
    const request = fetchJson(`/api/images/${id}`);
    request.catch(() => metaCache.delete(id));
    metaCache.set(id, request);
  }
  return metaCache.get(id);
}

/** Forgets the fetched metadata (the library changed). */
export function clearMetaCache() {
  metaCache.clear();
}

/** An image's best captions and tag probabilities. */
export function fetchDescription(id) {
  return fetchJson(`/api/images/${id}/describe?k=5`);
}

/** The filter menus' values and the date bounds. */
export function fetchFacets() {
  return fetchJson('/api/facets');
}

/** The library size and the indexing job's progress. */
export function fetchStats() {
  return fetchJson('/api/stats');
}

/** Who this browser is signed in as (`via` is `session`, `token` or `anonymous`). */
export function fetchSession() {
  return fetchJson('/api/session');
}

/** Ends this browser's session (the server removes the cookie). */
export async function signOut() {
  await fetch('/api/session', { method: 'DELETE' });
}
