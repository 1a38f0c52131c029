// Search by image: the file chooser, drag and drop, and paste, each showing the images most like a file.

import { ui } from './dom.js';
import { state, uploads, addUpload, updateState, navigate } from './state.js';
import { fetchImageSearch } from './api.js';
import { grid, beginResults, showError } from './grid.js';
import { cancelTyping } from './typing.js';
import { hideDetails } from './viewer.js';

/** Nesting depth of dragenter/dragleave pairs, to know when a drag left the window. */
const drag = { depth: 0 };

/** Starts a search by the uploaded image stored under a token. */
export function startUploadSearch(token) {
  const { file } = uploads.get(token);
  const params = { ...state, image: null };
  beginResults({
    key: null,
    params,
    upload: token,
    paged: false,
    fetchPage: (offset, signal) => fetchImageSearch(file, params, signal),
  });
}

/** The first image among some files, or undefined. */
function firstImage(files) {
  return Array.from(files).find((file) => file.type.startsWith('image/'));
}

/** Shows the images most similar to an uploaded, dropped or pasted file, as a new history entry. */
function searchByFile(file) {
  const token = addUpload(file);
  cancelTyping();
  updateState({ q: '', similar: null, image: null });
  ui.input.value = '';
  hideDetails();
  startUploadSearch(token);
  navigate('push', grid.view.upload);
}

/** Handles a file chosen with the upload button. */
export function onUploadChosen() {
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
export function onDragEnter(event) {
  if (!draggingFiles(event)) return;
  event.preventDefault();
  drag.depth += 1;
  ui.dropOverlay.hidden = false;
}

/** Accepts a file drag anywhere on the page. */
export function onDragOver(event) {
  if (!draggingFiles(event)) return;
  event.preventDefault();
  event.dataTransfer.dropEffect = 'copy';
}

/** Hides the drop overlay when the drag leaves the window. */
export function onDragLeave(event) {
  if (!draggingFiles(event)) return;
  drag.depth = Math.max(0, drag.depth - 1);
  if (drag.depth === 0) ui.dropOverlay.hidden = true;
}

/** Searches by the dropped image. */
export function onDrop(event) {
  if (!draggingFiles(event)) return;
  event.preventDefault();
  drag.depth = 0;
  ui.dropOverlay.hidden = true;
  const file = firstImage(event.dataTransfer.files);
  if (file) searchByFile(file);
  else showError('Drop an image file (JPEG, PNG, WebP, GIF…) to find similar photos.');
}

/** Searches by an image pasted from the clipboard; text pastes are left alone. */
export function onPaste(event) {
  const file = firstImage(event.clipboardData?.files ?? []);
  if (!file) return;
  event.preventDefault();
  searchByFile(file);
}
