// The details panel: one image large with its metadata, tags and description; open, close, step through results.

import { ui, el } from './dom.js';
import { state, updateState, navigate } from './state.js';
import { fileUrl, previewUrl, thumbnailUrl, getMeta, fetchDescription, formatClock } from './api.js';
import { grid, loadMore } from './grid.js';
import { typing, submitQuery, cancelTyping } from './typing.js';
import { readControls, runNewSearch } from './filters.js';

/** The id shown in the details panel, or null when it is closed. */
function detailsId() {
  return ui.details.hidden ? null : Number(ui.details.dataset.id);
}

/** Opens the details panel for an image, as a new history entry. */
function openImage(id) {
  if (typing.debounce) submitQuery(true);
  cancelTyping();
  updateState({ image: id });
  navigate('push', grid.view.upload);
  showDetails(id);
}

/** Opens or closes the details panel to match the state. */
export function syncDetails() {
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

  const hit = grid.view.hits.find((candidate) => candidate.id === id);
  ui.detailsTitle.textContent = hit?.name ?? 'Loading…';
  ui.detailsTitle.removeAttribute('title');
  ui.meta.replaceChildren();
  ui.tags.hidden = true;
  ui.tags.replaceChildren();
  ui.description.hidden = true;
  ui.description.replaceChildren();
  ui.companions.hidden = true;
  ui.companions.replaceChildren();
  ui.describe.disabled = false;
  ui.original.href = fileUrl(id);
  if (hit?.kind === 'video') showVideo(id, hit);
  else showStage(id, hit?.name ?? '');
  updateStepButtons();
  if (opening) ui.detailsPanel.focus();
  fillMeta(id);
}

/** Shows the thumbnail at once and the original file over it when it has loaded. */
function showStage(id, name) {
  stopVideo();
  ui.stageImage.hidden = false;
  ui.stage.dataset.state = 'loading';
  ui.placeholder.src = thumbnailUrl(id);
  ui.stageImage.alt = name;
  ui.stageImage.src = fileUrl(id);
}

/**
 * Plays a video from its best moment (muted, so the browser lets it start by itself), with the
 * other matching moments as buttons that seek there. The original is served with ranges, so
 * the browser fetches only what it plays.
 */
function showVideo(id, hit) {
  ui.stageImage.hidden = true;
  ui.stageImage.removeAttribute('src');
  ui.placeholder.src = hit.frame || thumbnailUrl(id);
  ui.stage.dataset.state = 'loading';
  const video = ui.stageVideo;
  const start = Number(hit.moment_s) || 0;
  video.hidden = false;
  video.poster = hit.frame || thumbnailUrl(id);
  video.src = `${fileUrl(id)}#t=${start}`;
  video.onloadedmetadata = () => {
    if (Math.abs(video.currentTime - start) > 0.5) video.currentTime = start;
  };
  video.onplaying = () => { ui.stage.dataset.state = 'loaded'; };
  video.onerror = () => { ui.stage.dataset.state = 'failed'; };
  video.onended = null;
  video.play().catch(() => {});
  const moments = Array.isArray(hit.moments) ? hit.moments : [];
  ui.moments.replaceChildren(...moments.map((moment, index) => {
    const button = el('button', 'moment', `${formatClock(moment.moment_s)} · ${Number(moment.score).toFixed(3)}`);
    button.type = 'button';
    button.title = `Play from ${formatClock(moment.moment_s)}`;
    button.setAttribute('aria-current', String(index === 0));
    button.addEventListener('click', () => {
      ui.moments.querySelectorAll('.moment').forEach((other) => other.setAttribute('aria-current', String(other === button)));
      video.currentTime = Number(moment.moment_s) || 0;
      video.play().catch(() => {});
    });
    return button;
  }));
  ui.moments.hidden = moments.length === 0;
}

/** Stops and hides the video player. */
function stopVideo() {
  const video = ui.stageVideo;
  video.pause();
  video.onended = null;
  video.removeAttribute('src');
  video.removeAttribute('poster');
  video.load();
  video.hidden = true;
  ui.moments.hidden = true;
  ui.moments.replaceChildren();
}

/** Reveals the original once it has loaded. */
export function onStageLoad() {
  ui.stage.dataset.state = 'loaded';
}

/**
 * When the browser cannot show the original (HEIC, TIFF), shows the server's JPEG preview of it
 * instead; when that fails too, keeps the thumbnail.
 */
export function onStageError() {
  const src = ui.stageImage.getAttribute('src');
  if (!src) return;
  const id = detailsId();
  if (id !== null && src === fileUrl(id)) {
    ui.stageImage.src = previewUrl(id);
    return;
  }
  ui.stage.dataset.state = 'failed';
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
  // Opened from a link rather than a result: a video still plays, from its first moment.
  if (meta.kind === 'video' && ui.stageVideo.hidden) showVideo(meta.id, { moment_s: meta.moments_s?.[0] ?? 0, moments: [] });
  const rows = metaRows(meta).flatMap(([label, value]) => [el('dt', '', label), el('dd', '', value)]);
  ui.meta.replaceChildren(...rows);
  renderCompanions(meta);
  // The keywords people gave the photo first, then the automatic tags; each once.
  const keywords = Array.isArray(meta.keywords) ? meta.keywords : [];
  const tags = [...new Set([...keywords, ...(Array.isArray(meta.tags) ? meta.tags : [])])];
  ui.tags.replaceChildren(...tags.map(createTagChip));
  ui.tags.hidden = tags.length === 0;
}

/**
 * Lists the files of the same picture (a RAW beside its JPEG, a Live Photo's motion), each a
 * download link; a Live Photo's motion also gets a button that plays it over the still.
 */
function renderCompanions(meta) {
  const companions = Array.isArray(meta.companions) ? meta.companions : [];
  ui.companions.replaceChildren(...companions.map((companion) => {
    const row = el('div', 'companion');
    const link = el('a', 'companion-file', `${companion.name} · ${String(companion.format).toUpperCase()} · ${formatBytes(companion.size)}`);
    link.href = companion.file;
    link.download = companion.name;
    link.title = companion.role === 'raw' ? 'Download the RAW file' : 'Download the Live Photo’s video';
    row.append(el('span', 'companion-role', companion.role === 'raw' ? 'RAW' : 'Live'), link);
    if (companion.role === 'motion') {
      const play = el('button', 'companion-play', '▶ Play Live Photo');
      play.type = 'button';
      play.addEventListener('click', () => playMotion(meta, companion));
      row.append(play);
    }
    return row;
  }));
  ui.companions.hidden = companions.length === 0;
}

/** Plays a Live Photo's motion over its still, then shows the still again. */
function playMotion(meta, companion) {
  const video = ui.stageVideo;
  ui.stageImage.hidden = true;
  video.hidden = false;
  video.poster = thumbnailUrl(meta.id);
  video.src = companion.file;
  video.onplaying = () => { ui.stage.dataset.state = 'loaded'; };
  video.onerror = () => showStage(meta.id, meta.name);
  video.onended = () => showStage(meta.id, meta.name);
  video.play().catch(() => {});
}

/** The label/value pairs shown for an image, skipping unknown values. */
function metaRows(meta) {
  const hasSize = meta.width > 0 && meta.height > 0;
  return [
    ['Title', meta.title],
    ['Description', meta.description],
    ['Folder', meta.folder],
    ['Dimensions', hasSize ? `${meta.width} × ${meta.height} · ${((meta.width * meta.height) / 1e6).toFixed(1)} MP` : ''],
    ['Format', meta.format ? String(meta.format).toUpperCase() : ''],
    ['Length', meta.kind === 'video' && Number.isFinite(meta.duration_s) ? formatClock(meta.duration_s) : ''],
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
export function hideDetails() {
  if (ui.details.hidden) return;
  const id = ui.details.dataset.id;
  ui.details.hidden = true;
  ui.details.removeAttribute('data-id');
  ui.app.inert = false;
  document.body.classList.remove('modal-open');
  ui.stageImage.removeAttribute('src');
  stopVideo();
  ui.results.querySelector(`.result[data-id="${id}"]`)?.focus();
}

/** Closes the panel: steps Back when it was opened by a history entry of its own. */
export function closeDetails() {
  if (ui.details.hidden) return;
  const opened = Boolean(history.state?.opened);
  updateState({ image: null });
  hideDetails();
  if (opened) history.back();
  else navigate('replace', grid.view.upload);
}

/** Enables the previous/next buttons according to the image's place in the grid. */
export function updateStepButtons() {
  const view = grid.view;
  const index = view.hits.findIndex((hit) => hit.id === detailsId());
  ui.prev.disabled = index <= 0;
  ui.next.disabled = index < 0 || (index === view.hits.length - 1 && view.done);
}

/** Shows the previous (-1) or next (+1) result, loading the next page when needed. */
export async function stepDetails(delta) {
  const current = grid.view;
  const index = current.hits.findIndex((hit) => hit.id === detailsId());
  if (index < 0) return;
  if (index + delta >= current.hits.length) await loadMore();
  const target = current.hits[index + delta];
  if (!target || current !== grid.view || ui.details.hidden) return;
  updateState({ image: target.id });
  navigate('replace', grid.view.upload);
  showDetails(target.id);
}

/** Shows the images most like the one in the panel, as a new history entry. */
export function showMoreLikeThis() {
  runNewSearch({ ...readControls(), q: '', similar: detailsId() });
}

/** Fills #description with the image's best captions and tag probabilities. */
export async function describeImage() {
  const id = detailsId();
  ui.describe.disabled = true;
  ui.description.hidden = false;
  ui.description.replaceChildren(el('p', 'description-loading', 'Describing…'));
  try {
    const data = await fetchDescription(id);
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

/* ───────────────────────────── Clicks and keys ───────────────────────────── */

/** Opens a clicked tile in the panel; modified clicks keep their browser meaning (new tab…). */
export function onResultClick(event) {
  const tile = event.target.closest('.result');
  if (!tile || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  openImage(Number(tile.dataset.id));
}

/** Keys while the panel is open. */
export function onDetailsKey(event) {
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
