// The search state that the URL and session history hold, and the query it stands for.

const MODES = ['hybrid', 'vector', 'keyword'];
/** Orders of the relevant results: best match, or by capture date. */
const SORTS = ['score', 'newest', 'oldest'];
const FILTERS = ['folder', 'type', 'camera', 'after', 'before'];
const DATE_PATTERN = /^\d{4}-\d{2}-\d{2}$/;

/** What the URL describes: the search, and the image open in the details panel (or null). */
export const state = {
  q: '',
  mode: 'hybrid',
  sort: 'score',
  folder: '',
  type: '',
  camera: '',
  after: '',
  before: '',
  similar: null,
  image: null,
};

/** Uploaded images of this session, by token, so that Back/Forward can show their results again. */
export const uploads = new Map();

/** Changes the state: each object's fields in turn, as Object.assign does. */
export function updateState(...changes) {
  Object.assign(state, ...changes);
}

/** Keeps an uploaded, dropped or pasted file for this session; returns its token. */
export function addUpload(file) {
  const token = `${Date.now()}-${uploads.size}`;
  uploads.set(token, { file, preview: URL.createObjectURL(file) });
  return token;
}

/* ───────────────────────────── URL and history ───────────────────────────── */

/** Parses an image id URL parameter; null when absent or malformed. */
function parseId(value) {
  return value && /^\d+$/.test(value) ? Number(value) : null;
}

/** Reads the state described by the current URL. */
export function readUrlState() {
  const params = new URLSearchParams(location.search);
  const text = (name) => (params.get(name) ?? '').trim();
  const date = (name) => (DATE_PATTERN.test(text(name)) ? text(name) : '');
  return {
    q: text('q'),
    mode: MODES.includes(text('mode')) ? text('mode') : 'hybrid',
    sort: text('sort') === 'date' ? (text('order') === 'oldest' ? 'oldest' : 'newest') : 'score',
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
export function urlFor(s) {
  const params = new URLSearchParams();
  if (s.q) params.set('q', s.q);
  params.set('mode', s.mode);
  for (const [key, value] of Object.entries(sortParams(s))) params.set(key, value);
  for (const key of FILTERS) {
    if (s[key]) params.set(key, s[key]);
  }
  if (s.similar !== null) params.set('similar', String(s.similar));
  if (s.image !== null) params.set('image', String(s.image));
  return `?${params}`;
}

/**
 * Records the state in the session history, as a new entry ('push') or in place ('replace').
 * The entry remembers `upload`, the token of the upload shown in the grid (or null), and whether
 * the details panel was opened by it.
 */
export function navigate(how, upload) {
  const url = urlFor(state);
  const opened = state.image !== null && (how === 'push' || Boolean(history.state?.opened));
  const entry = { upload, opened };
  const unchanged = url === location.search && upload === (history.state?.upload ?? null);
  if (how === 'push' && !unchanged) {
    history.pushState(entry, '', url);
  } else {
    history.replaceState(entry, '', url);
  }
}

/* ───────────────────────────── The search a state asks for ───────────────────────────── */

/** Identifies a search, so that a history step can tell whether the grid must be reloaded. */
export function searchKey(s) {
  return JSON.stringify([s.q, s.mode, s.sort, s.similar, ...FILTERS.map((key) => s[key])]);
}

/** The API's (and the URL's) `sort` and `order` parameters of a state: none for best match. */
export function sortParams(s) {
  if (!SORTS.includes(s.sort) || s.sort === 'score') return {};
  return { sort: 'date', order: s.sort };
}

/** True when any filter chip is set. */
export function hasFilters(s) {
  return FILTERS.some((key) => s[key]);
}

/** Quotes a filter value that contains spaces, so the query language keeps it in one token. */
function quoteValue(value) {
  return /\s/.test(value) ? `"${value.replaceAll('"', '')}"` : value;
}

/** The query sent to the server: the typed text, the "more like" image and the filter tokens. */
export function composeQuery(s) {
  const parts = [s.q];
  if (s.similar !== null) parts.push(`+img:${s.similar}`);
  for (const key of FILTERS) {
    if (s[key]) parts.push(`${key}:${quoteValue(s[key])}`);
  }
  return parts.filter(Boolean).join(' ');
}
