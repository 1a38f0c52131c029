// The search box: searches as you type, editing one provisional history entry until Enter or a pause commits it.

import { ui } from './dom.js';
import { state, updateState, navigate } from './state.js';
import { grid, startSearch } from './grid.js';

const DEBOUNCE_MS = 250;
const COMMIT_MS = 1000;

/**
 * The pending debounced search and history commit of the text being typed; `provisional` is true
 * while the current history entry was created by typing and is still being edited.
 */
export const typing = { debounce: 0, commit: 0, provisional: false };

/** Stops a pending debounced search and the pending history commit; the next entry is a new one. */
export function cancelTyping() {
  clearTimeout(typing.debounce);
  clearTimeout(typing.commit);
  typing.debounce = 0;
  typing.provisional = false;
}

/** Schedules the search for the text being typed, and the history commit after a pause. */
export function onQueryInput() {
  clearTimeout(typing.debounce);
  typing.debounce = setTimeout(() => submitQuery(false), DEBOUNCE_MS);
  clearTimeout(typing.commit);
  typing.commit = setTimeout(() => {
    typing.provisional = false;
  }, COMMIT_MS);
}

/** Runs the search typed in the box; typing edits one provisional history entry, Enter commits it. */
export function submitQuery(commit) {
  clearTimeout(typing.debounce);
  typing.debounce = 0;
  const q = ui.input.value.trim();
  const changed = q !== state.q || state.similar !== null || grid.view.upload !== null || grid.view.failed;
  if (!changed && !commit) return;
  updateState({ q, similar: null, image: null });
  if (changed) startSearch();
  navigate(typing.provisional ? 'replace' : 'push', grid.view.upload);
  typing.provisional = !commit;
  if (commit) clearTimeout(typing.commit);
}

/** Handles Enter in the search box. */
export function onSubmit(event) {
  event.preventDefault();
  submitQuery(true);
}
