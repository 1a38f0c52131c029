// DOM access: the `$` helper, the table of the page's elements (`ui`), and the `el` element builder.

/** The first element that matches a CSS selector, or null. */
const $ = (selector) => document.querySelector(selector);

/** The page's elements, by role (ids from index.html). */
export const ui = {
  app: $('#app'),
  form: $('#search-form'),
  input: $('#q'),
  mode: $('#mode'),
  sort: $('#sort'),
  uploadButton: $('#upload-button'),
  upload: $('#upload'),
  account: $('#account'),
  accountName: $('#account-name'),
  signOut: $('#sign-out'),
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
  stageVideo: $('#details-video'),
  moments: $('#details-moments'),
  companions: $('#details-companions'),
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

/** Creates an element with a class name and optional text. */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}
