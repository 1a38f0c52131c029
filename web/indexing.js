// The library's size and indexing progress: the "Indexing…" banner, polled from /api/stats while a job runs.

import { ui } from './dom.js';
import { fetchStats } from './api.js';

const STATS_POLL_MS = 3000;

/** What the server last said about the library. */
export const library = { images: null, indexing: false, polling: false };

/** The next poll, and what to do once indexing has finished (given by initIndexing). */
const poll = { timer: 0, finished: () => {} };

/** Sets what to do once indexing has finished (reload the grid and the filter menus). */
export function initIndexing({ finished }) {
  poll.finished = finished;
}

/** Takes the library size and indexing flag from a search answer. */
export function noteLibrary(data) {
  if (typeof data.total_images === 'number') library.images = data.total_images;
  if (data.indexing === true && !library.indexing) pollStats();
}

/** Polls /api/stats every few seconds while the library is being indexed; refreshes when it ends. */
export async function pollStats() {
  if (library.polling) return;
  library.polling = true;
  clearTimeout(poll.timer);
  try {
    const stats = await fetchStats();
    library.images = stats.images;
    renderIndexing(stats);
    if (stats.indexing) {
      library.indexing = true;
      poll.timer = setTimeout(pollStats, STATS_POLL_MS);
    } else if (library.indexing) {
      library.indexing = false;
      poll.finished();
    }
  } catch {
    if (library.indexing) poll.timer = setTimeout(pollStats, STATS_POLL_MS);
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
