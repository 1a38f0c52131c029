// Entry point of the browser UI (its state lives in the URL): wires the modules and the page's events, then starts.

import { ui } from './dom.js';
import { state, uploads, updateState, readUrlState, searchKey } from './state.js';
import { clearMetaCache } from './api.js';
import { initIndexing, pollStats } from './indexing.js';
import { initAccount } from './account.js';
import { grid, initGrid, startSearch, moveFocus } from './grid.js';
import { cancelTyping, onQueryInput, onSubmit } from './typing.js';
import { initFilters, syncControls, onControlsChange, onFilterRemove, clearContext, loadFacets } from './filters.js';
import {
  syncDetails,
  hideDetails,
  closeDetails,
  stepDetails,
  updateStepButtons,
  showMoreLikeThis,
  describeImage,
  onStageLoad,
  onStageError,
  onResultClick,
  onDetailsKey,
} from './viewer.js';
import { startUploadSearch, onUploadChosen, onDragEnter, onDragOver, onDragLeave, onDrop, onPaste } from './upload.js';

/** Brings the page in line with the current URL and history entry (on load, Back and Forward). */
function restoreFromHistory() {
  cancelTyping();
  updateState(readUrlState());
  ui.input.value = state.q;
  syncControls();
  const token = history.state?.upload ?? null;
  if (token !== null && uploads.has(token)) {
    if (grid.view.upload !== token) startUploadSearch(token);
  } else if (grid.view.upload !== null || grid.view.failed || searchKey(state) !== grid.view.key) {
    startSearch();
  }
  syncDetails();
}

/** Reloads the grid and the filter menus once indexing has finished. */
function refreshAfterIndexing() {
  clearMetaCache();
  loadFacets();
  if (grid.view.upload === null) startSearch();
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

// Calls that go up the import graph are handed down here, so that no two modules import each other.
initGrid({ pageShown: updateStepButtons });
initFilters({ hideDetails, searchUpload: startUploadSearch });
initIndexing({ finished: refreshAfterIndexing });
bindEvents();
restoreFromHistory();
loadFacets();
pollStats();
initAccount();
