// One bulk job as it runs: the progress bar (role="progressbar"), the counts, time left,
// the per-order results, Cancel and Retry failed. It polls GET /api/jobs/<id> about once a
// second while the job is queued or running, backs off while it is paused (or the server
// does not answer), and stops once the job is done or cancelled.

import { api } from './api.js';
import { byId, cloneTemplate, part, setField, show } from './dom.js';
import { clearMessage, refuseControl, showError, writesRefused } from './feedback.js';
import { dateTime, number, percent, t, tn } from './i18n.js';
import { ownerPhrase, ownerView } from './rows.js';

const POLL_MS = 1000;
const HIDDEN_POLL_MS = 5000;
const MAX_BACKOFF_MS = 30000;
const RESULTS_REFRESH_MS = 3000;
const ACTIVE = new Set(['queued', 'running', 'paused']);
const doneCount = (job) => progressOf(job).done;

export const isActive = (job) => ACTIVE.has(job.state);

const STATE_BADGE = {
  queued: 'b24-badge--primary',
  running: 'b24-badge--primary',
  paused: 'b24-badge--warning',
  cancelled: 'b24-badge--warning',
  done: 'b24-badge--success',
  done_failed: 'b24-badge--alert',
};

const ITEM_BADGE = {
  pending: '',
  bound: 'b24-badge--success',
  replaced: 'b24-badge--success',
  restored: 'b24-badge--success',
  already_bound: 'b24-badge--primary',
  unbound: 'b24-badge--warning',
  failed: 'b24-badge--alert',
};

// The state a person reads: "done" with failures reads differently from a clean run.
export function stateKey(job) {
  if (job.state === 'done' && job.counts && job.counts.failed > 0) return 'done_failed';
  return job.state;
}

export function stateBadge(element, job) {
  const key = stateKey(job);
  element.textContent = t(`ui.job.state.${key}`);
  element.className = `b24-badge ${STATE_BADGE[key] || ''}`.trim();
}

export function jobName(job) {
  return t('ui.job.name', { id: job.id });
}

export function jobTitle(job) {
  return job.kind === 'undo' && job.undoOf
    ? t('ui.job.title.undo', { id: job.id, of: job.undoOf })
    : t('ui.job.title.bind', { id: job.id });
}

export function jobOwner(job) {
  const owner = job.owner || {};
  return { ...owner, id: owner.ownerId ?? owner.id };
}

// {total, done, percent}; percent is null while the job is still finding its orders.
export function progressOf(job) {
  const counts = job.counts || {};
  const total = Number(counts.total) || 0;
  if (counts.remaining === null || counts.remaining === undefined) {
    return { total, done: 0, percent: job.state === 'done' ? 100 : null };
  }
  const remaining = Number(counts.remaining) || 0;
  const done = Math.max(0, total - remaining);
  if (!total) return { total, done, percent: job.state === 'done' ? 100 : 0 };
  // Rounded down: 100 % only when every order is through.
  return { total, done, percent: Math.floor((done * 100) / total) };
}

function timeLeft(job) {
  const eta = job.etaSeconds;
  if (job.state !== 'running' || eta === null || eta === undefined) return '';
  if (eta < 90) return tn('ui.job.eta.seconds', Math.max(1, Math.round(eta)));
  return tn('ui.job.eta.minutes', Math.ceil(eta / 60));
}

function note(job) {
  if (job.state === 'queued') return t('ui.job.note.queued');
  if (job.state === 'cancelled') return t('ui.job.note.cancelled');
  if (job.state === 'done' && job.finishedAt) return t('ui.job.note.finished', { when: dateTime(job.finishedAt) });
  return timeLeft(job);
}

function resultRow(item, job) {
  const fragment = cloneTemplate('tpl-job-result');
  const row = fragment.firstElementChild;
  row.dataset.orderId = String(item.orderId);
  row.dataset.state = item.state;
  // Without its number (not read yet) an order is named by its id, as the history does.
  setField(fragment, 'number', item.orderAccountNumber || t('ui.history.order_id', { id: item.orderId }));
  const badge = setField(fragment, 'state', t(`ui.job.item.${item.state}`));
  if (ITEM_BADGE[item.state]) badge.classList.add(ITEM_BADGE[item.state]);
  if (item.replaced) {
    const owner = { ...item.replaced, id: item.replaced.ownerId };
    const key = item.state === 'restored' || job.kind === 'undo' ? 'ui.job.item.restored_to' : 'ui.job.item.replaced_was';
    setField(fragment, 'detail', t(key, { owner: ownerPhrase(owner) }));
  }
  if (item.state === 'failed') {
    setField(fragment, 'reason', item.reason || item.errorCode || t('ui.history.failed_no_reason'));
  }
  return fragment;
}

// canWrite: the user may cancel and retry. onUpdate(job) after every answer about the
// watched job; onFinished(job) once when it leaves queued/running/paused.
export function createJobView({ canWrite, onUpdate = () => {}, onFinished = () => {} }) {
  const root = byId('job');
  if (!root) return { watch() {}, current: () => null };
  const els = {
    title: part(root, 'title'),
    state: part(root, 'state'),
    owner: part(root, 'owner'),
    progress: part(root, 'progress'),
    bar: part(root, 'bar'),
    percent: part(root, 'percent'),
    done: part(root, 'done'),
    eta: part(root, 'eta'),
    paused: part(root, 'paused'),
    error: part(root, 'error'),
    status: part(root, 'status'),
    cancel: part(root, 'cancel-job'),
    retry: part(root, 'retry'),
    results: part(root, 'results'),
    resultsEmpty: part(root, 'results-empty'),
    resultsMore: part(root, 'results-more'),
  };
  let job = null;
  let timer = null;
  let controller = null;
  let backoff = 0;
  let lastAnnounced = null;
  let results = { cursor: null, sequence: 0, loadedAt: 0, pages: 0, done: -1 };

  function render() {
    els.title.textContent = jobTitle(job);
    stateBadge(els.state, job);
    const owner = jobOwner(job);
    const label = document.createElement('span');
    label.textContent = `${t(job.kind === 'undo' ? 'ui.jobs.from' : 'ui.jobs.target')}: `;
    els.owner.replaceChildren(label, ownerView(owner));

    const { total, done, percent: share } = progressOf(job);
    if (share === null) {
      els.progress.removeAttribute('aria-valuenow');
      els.progress.setAttribute('aria-valuetext', t('ui.job.counting'));
      els.progress.classList.add('is-indeterminate');
      els.bar.style.width = '';
      els.percent.textContent = '';
      els.done.textContent = t('ui.job.counting');
    } else {
      const text = tn('ui.job.progress', total, { done: number(done) });
      els.progress.classList.remove('is-indeterminate');
      els.progress.setAttribute('aria-valuenow', String(share));
      els.progress.setAttribute('aria-valuetext', `${percent(share)}, ${text}`);
      els.bar.style.width = `${share}%`;
      els.percent.textContent = percent(share);
      els.done.textContent = text;
    }
    els.eta.textContent = note(job);

    const counts = job.counts || {};
    for (const slot of root.querySelectorAll('[data-js-count]')) {
      const value = counts[slot.dataset.jsCount];
      slot.textContent = value === null || value === undefined ? '—' : number(value);
    }
    const boundLabel = root.querySelector('[data-js-count="bound"]').previousElementSibling;
    boundLabel.textContent = t(job.kind === 'undo' ? 'ui.job.count.restored' : 'ui.job.count.bound');
    show(root.querySelector('[data-js-count-box="unbound"]'), job.kind === 'undo' || Boolean(counts.unbound));

    if (job.state === 'paused') {
      part(els.paused, 'text').textContent = job.pausedReason || t('ui.job.paused');
      show(els.paused);
    } else {
      show(els.paused, false);
    }
    if (els.cancel) show(els.cancel, canWrite && isActive(job));
    if (els.retry) show(els.retry, Boolean(canWrite && job.retryable));
    if (writesRefused()) [els.cancel, els.retry].filter(Boolean).forEach(refuseControl);

    const key = `${job.id}:${stateKey(job)}`;
    if (key !== lastAnnounced) {
      lastAnnounced = key;
      els.status.textContent = `${jobTitle(job)}: ${t(`ui.job.state.${stateKey(job)}`)}. ${els.done.textContent}`;
    }
  }

  async function loadResults(reset) {
    if (!job) return;
    const mine = ++results.sequence;
    const id = job.id;
    try {
      const page = await api(`jobs/${encodeURIComponent(id)}/items`, { query: { cursor: reset ? null : results.cursor } });
      if (mine !== results.sequence || !job || job.id !== id) return;
      const fragment = document.createDocumentFragment();
      // Orders still waiting say nothing yet (the counts tell how many there are).
      for (const item of page.items || []) {
        if (item.state !== 'pending') fragment.append(resultRow(item, job));
      }
      if (reset) {
        els.results.replaceChildren(fragment);
        results.pages = 1;
      } else {
        els.results.append(fragment);
        results.pages += 1;
      }
      results.cursor = page.nextCursor || null;
      results.loadedAt = Date.now();
      results.done = doneCount(job);
      // While the job runs the first page follows along; more pages once it is finished.
      const running = isActive(job);
      show(els.resultsMore, Boolean(results.cursor) && !running);
      els.resultsEmpty.textContent = t(running ? 'ui.job.results.waiting' : 'ui.job.results.empty');
      show(els.resultsEmpty, els.results.children.length === 0);
    } catch (failure) {
      if (mine !== results.sequence) return;
      showError(els.error, failure);
    }
  }

  function stop() {
    clearTimeout(timer);
    timer = null;
    if (controller) controller.abort();
    controller = null;
  }

  function schedule(delay) {
    clearTimeout(timer);
    timer = setTimeout(poll, delay);
  }

  function next() {
    if (!job || !isActive(job)) return;
    let delay = POLL_MS;
    if (job.state === 'paused' || backoff) {
      // Nothing moves until the user reopens the app (or the server is back): ask less often.
      backoff = Math.min(MAX_BACKOFF_MS, backoff ? backoff * 2 : 2000);
      delay = backoff;
    }
    if (document.hidden) delay = Math.max(delay, HIDDEN_POLL_MS);
    schedule(delay);
  }

  function adopt(fresh) {
    const wasActive = job && job.id === fresh.id && isActive(job);
    const stateChanged = !job || job.id !== fresh.id || job.state !== fresh.state;
    job = fresh;
    render();
    onUpdate(job);
    if (!isActive(job)) {
      stop();
      loadResults(true);
      if (wasActive) onFinished(job);
    } else if (
      results.pages <= 1
      && (stateChanged || (doneCount(job) !== results.done && Date.now() - results.loadedAt > RESULTS_REFRESH_MS))
    ) {
      // While it runs the first page of results follows along, at most every few seconds.
      loadResults(true);
    }
  }

  async function poll() {
    if (!job) return;
    const id = job.id;
    controller = new AbortController();
    try {
      const answer = await api(`jobs/${encodeURIComponent(id)}`, { signal: controller.signal });
      if (!job || job.id !== id) return;
      if (job.state !== 'paused') backoff = 0;
      clearMessage(els.error);
      adopt(answer.job || answer);
    } catch (failure) {
      if (failure && failure.name === 'AbortError') return;
      if (!job || job.id !== id) return;
      showError(els.error, failure);
      if (failure.status === 401 || failure.status === 403 || failure.status === 404) return;
      backoff = backoff || 1000;
    }
    next();
  }

  async function act(button, path) {
    if (!job || button.getAttribute('aria-busy') === 'true') return;
    button.setAttribute('aria-busy', 'true');
    clearMessage(els.error);
    try {
      const answer = await api(`jobs/${encodeURIComponent(job.id)}/${path}`, { method: 'POST', body: {} });
      const fresh = answer.job || answer;
      const restart = !isActive(job) && isActive(fresh);
      backoff = 0;
      if (restart) {
        results.loadedAt = 0;
        job = fresh;
        render();
        onUpdate(job);
      } else {
        adopt(fresh);
      }
      stop();
      next();
    } catch (failure) {
      showError(els.error, failure);
    } finally {
      button.removeAttribute('aria-busy');
    }
  }

  if (els.cancel) els.cancel.addEventListener('click', () => act(els.cancel, 'cancel'));
  if (els.retry) els.retry.addEventListener('click', () => act(els.retry, 'retry-failed'));
  els.resultsMore.addEventListener('click', () => loadResults(false));
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && job && isActive(job)) schedule(0);
  });

  return {
    // Show a job (a fresh copy is asked for at once) and follow it while it runs.
    watch(shown, { focus = false } = {}) {
      const same = job && job.id === shown.id;
      stop();
      backoff = 0;
      if (!same) {
        results = { cursor: null, sequence: results.sequence + 1, loadedAt: 0, pages: 0, done: -1 };
        els.results.replaceChildren();
        show(els.resultsMore, false);
        show(els.resultsEmpty, false);
        clearMessage(els.error);
      }
      job = shown;
      show(root);
      render();
      // A fresh copy at once; a finished job's results come with it (adopt).
      schedule(0);
      if (focus) {
        root.focus();
        root.scrollIntoView({ block: 'nearest' });
      }
    },
    current: () => job,
  };
}

// For the jobs list: a job's counts in one line ("120 orders: bound 115, replaced 5").
export function countsSummary(job) {
  const counts = job.counts || {};
  if (counts.remaining === null || counts.remaining === undefined) {
    if (job.state !== 'done') return t('ui.job.counting');
  }
  const parts = [];
  const add = (key, value) => {
    if (value) parts.push(t(key, { n: number(value) }));
  };
  add(job.kind === 'undo' ? 'ui.jobs.summary.restored' : 'ui.jobs.summary.bound', counts.bound);
  add('ui.jobs.summary.already_bound', counts.alreadyBound);
  add('ui.jobs.summary.replaced', counts.replaced);
  add('ui.jobs.summary.unbound', counts.unbound);
  add('ui.jobs.summary.failed', counts.failed);
  if (isActive(job)) add('ui.jobs.summary.remaining', counts.remaining);
  const total = tn('ui.orders_count', Number(counts.total) || 0);
  return parts.length ? t('ui.jobs.summary', { total, parts: parts.join(', ') }) : total;
}

