// The search controls: mode and filter menus, date inputs and chips, their facets, and new searches from them.

import { ui } from './dom.js';
import { state, updateState, navigate } from './state.js';
import { fetchFacets } from './api.js';
import { grid, startSearch } from './grid.js';
import { cancelTyping } from './typing.js';

const DATE_DEBOUNCE_MS = 500;

/** The pending search for edited dates. */
const timers = { dates: 0 };

/** How to close the details panel and re-run an upload's search (given by initFilters). */
const hooks = { hideDetails: () => {}, searchUpload: () => {} };

/** Sets how a new search closes the details panel, and how an upload's search is re-run. */
export function initFilters({ hideDetails, searchUpload }) {
  hooks.hideDetails = hideDetails;
  hooks.searchUpload = searchUpload;
}

/** Reads the search box, mode selector and filter chips. */
export function readControls() {
  const controls = { q: ui.input.value.trim(), mode: ui.mode.value, sort: ui.sort.value, after: ui.after.value, before: ui.before.value };
  for (const select of ui.filterSelects) controls[select.dataset.filter] = select.value;
  return controls;
}

/** Shows the state's mode and filters in the controls, and marks the active chips. */
export function syncControls() {
  ui.mode.value = state.mode;
  ui.sort.value = state.sort;
  for (const select of ui.filterSelects) selectValue(select, state[select.dataset.filter]);
  ui.after.value = state.after;
  ui.before.value = state.before;
  for (const chip of ui.filters.querySelectorAll('.chip[data-filter]')) {
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
export function runNewSearch(changes) {
  cancelTyping();
  clearTimeout(timers.dates);
  updateState(changes, { image: null });
  ui.input.value = state.q;
  hooks.hideDetails();
  syncControls();
  startSearch();
  navigate('push', grid.view.upload);
}

/** Applies a changed mode, order or filter menu (a new order keeps an upload's results view). */
export function onControlsChange(event) {
  if (event.target === ui.sort && grid.view.upload !== null) {
    updateState({ sort: ui.sort.value });
    hooks.searchUpload(grid.view.upload);
    navigate('replace', grid.view.upload);
    return;
  }
  if (event.target === ui.after || event.target === ui.before) {
    clearTimeout(timers.dates);
    timers.dates = setTimeout(() => runNewSearch(readControls()), DATE_DEBOUNCE_MS);
    return;
  }
  runNewSearch(readControls());
}

/** Removes a filter when its pill's × is clicked. */
export function onFilterRemove(event) {
  const button = event.target.closest('.chip-remove');
  if (!button) return;
  const name = button.dataset.filter;
  const cleared = name === 'date' ? { after: '', before: '' } : { [name]: '' };
  runNewSearch({ ...readControls(), ...cleared });
}

/** Leaves the "similar" or upload view for a plain search with the current text and filters. */
export function clearContext() {
  runNewSearch({ ...readControls(), similar: null });
}

/** Container formats that hold videos (the server's `type:` names). */
const VIDEO_TYPES = new Set(['mp4', 'mov', 'm4v', '3gp', 'mkv', 'webm', 'avi']);

/** The type menu: Photos and Videos first when the library has both, then each format. */
function typeOptions(types) {
  const videos = types.some((t) => VIDEO_TYPES.has(t));
  const photos = types.some((t) => !VIDEO_TYPES.has(t));
  const kinds = videos && photos ? [['photo', 'Photos'], ['video', 'Videos']] : [];
  return [...kinds, ...types.map((value) => [value, String(value).toUpperCase()])];
}

/** Fills the filter menus and date bounds from /api/facets. */
export async function loadFacets() {
  try {
    const facets = await fetchFacets();
    const menus = {
      folder: (facets.folders ?? []).map((value) => [value, value]),
      type: typeOptions(facets.types ?? []),
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
