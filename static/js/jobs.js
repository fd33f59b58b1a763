// The portal's bulk jobs, newest first (GET /api/jobs), each with Show and, for store
// administrators, Undo of the whole job (confirmed in a dialog). On a card tab only that
// card's jobs are listed. Opening the app finds a running job again and follows it.

import { api } from './api.js';
import { byId, cloneTemplate, field, part, setField, show } from './dom.js';
import { confirmDialog, listLoader, refuseControl, showError, writesRefused } from './feedback.js';
import { dateTime, t, tn } from './i18n.js';
import { countsSummary, isActive, jobName, jobOwner, stateBadge } from './job.js';
import { ownerPhrase, ownerView, sameOwner } from './rows.js';

// Pages read in a row to find a card's jobs among the portal's before showing "Load more".
const MAX_EMPTY_PAGES = 5;

function jobRow(job, canWrite) {
  const fragment = cloneTemplate('tpl-job-row');
  const row = fragment.firstElementChild;
  row.dataset.jobId = String(job.id);
  row.dataset.state = job.state;
  setField(fragment, 'name', jobName(job));
  stateBadge(field(fragment, 'state'), job);
  setField(fragment, 'user', job.user ? job.user.name : '');
  const when = setField(fragment, 'when', dateTime(job.createdAt));
  if (when) when.setAttribute('datetime', job.createdAt);
  setField(fragment, 'owner-label', t(job.kind === 'undo' ? 'ui.jobs.from' : 'ui.jobs.target'));
  field(fragment, 'owner').replaceChildren(ownerView(jobOwner(job)));
  setField(fragment, 'summary', countsSummary(job));
  if (job.undoOf) {
    setField(fragment, 'undo-of', t('ui.jobs.job_ref', { id: job.undoOf }));
    show(field(fragment, 'undo-of-label'));
  }
  if (job.undoneBy) setField(fragment, 'undone-by', t('ui.jobs.undone_by', { id: job.undoneBy }));
  part(row, 'show').setAttribute('aria-label', t('ui.jobs.show_label', { id: job.id }));
  const undo = part(row, 'undo-job');
  if (undo) {
    show(undo, Boolean(canWrite && job.undoable));
    undo.setAttribute('aria-label', t('ui.jobs.undo_label', { id: job.id }));
    if (writesRefused()) refuseControl(undo);
  }
  return fragment;
}

// owner: on a card tab, the card ({ownerTypeId, id}): only its jobs (and their undos).
// jobView: the job panel (job.js); onUndone(job) once an undo job was started.
export function createJobsList({ canWrite, owner = null, jobView, onUndone = () => {} }) {
  const root = byId('jobs');
  if (!root) return { update() {}, reload() {} };
  const rows = part(root, 'rows');
  const more = part(root, 'more');
  const empty = part(root, 'empty');
  const loading = part(root, 'loading');
  const error = root.querySelector(':scope > [data-js-error]');
  const status = root.querySelector(':scope > [data-js-status]');
  const result = root.querySelector(':scope > [data-js-result]');
  const known = new Map();
  let cursor = null;
  let followed = false;

  const belongs = (job) => !owner || sameOwner(jobOwner(job), owner);

  function put(job, { prepend = false } = {}) {
    known.set(String(job.id), job);
    const fragment = jobRow(job, canWrite);
    const existing = rows.querySelector(`[data-job-id="${job.id}"]`);
    if (existing) existing.replaceWith(fragment);
    else if (prepend) rows.prepend(fragment);
    else rows.append(fragment);
  }

  const load = listLoader({ root, rows, loading, error }, async (reset, current) => {
    let next = reset ? null : cursor;
    let found = [];
    for (let pages = 0; pages < MAX_EMPTY_PAGES; pages += 1) {
      const page = await api('jobs', { query: { cursor: next } });
      if (!current()) return;
      found = found.concat((page.items || []).filter(belongs));
      next = page.nextCursor || null;
      if (found.length || !next) break;
    }
    if (reset) {
      rows.replaceChildren();
      known.clear();
    }
    for (const job of found) put(job);
    cursor = next;
    show(more, Boolean(cursor));
    show(empty, rows.children.length === 0);
    status.textContent = rows.children.length ? '' : t('ui.jobs.empty');
    // Reopened while a job runs: show its progress again (the newest one).
    if (!followed) {
      followed = true;
      const running = found.find(isActive);
      if (running && !jobView.current()) jobView.watch(running);
    }
  });

  async function undo(button, job) {
    const changed = (Number(job.counts?.bound) || 0) + (Number(job.counts?.replaced) || 0);
    const question = [
      t('ui.jobs.undo.question', { id: job.id, owner: ownerPhrase(jobOwner(job)) }),
      changed ? tn('ui.jobs.undo.changes', changed) : '',
    ].filter(Boolean).join(' ');
    if (!(await confirmDialog(question, 'undo-job-dialog'))) {
      button.focus();
      return;
    }
    button.setAttribute('aria-busy', 'true');
    show(error, false);
    show(result, false);
    try {
      const answer = await api(`jobs/${encodeURIComponent(job.id)}/undo`, { method: 'POST', body: {} });
      const undoJob = answer.job || answer;
      result.textContent = t('ui.jobs.undo.started', { id: undoJob.id, of: job.id });
      show(result);
      put({ ...job, undoable: false, undoneBy: undoJob.id });
      put(undoJob, { prepend: true });
      show(empty, false);
      jobView.watch(undoJob, { focus: true });
      onUndone(undoJob);
    } catch (failure) {
      showError(error, failure);
      button.removeAttribute('aria-busy');
      button.focus();
    }
  }

  rows.addEventListener('click', (event) => {
    const target = event.target instanceof Element ? event.target : null;
    const button = target && target.closest('[data-js-show], [data-js-undo-job]');
    if (!button || button.getAttribute('aria-busy') === 'true') return;
    const job = known.get(button.closest('li').dataset.jobId);
    if (!job) return;
    if (button.hasAttribute('data-js-show')) jobView.watch(job, { focus: true });
    else undo(button, job);
  });
  more.addEventListener('click', () => load(false));
  byId('jobs-refresh')?.addEventListener('click', () => load(true));
  root.tabIndex = -1;
  load(true);

  return {
    // A job changed (polled, started here): its row follows; a new one goes on top.
    update(job) {
      const id = String(job.id);
      if (!belongs(job) && !known.has(id)) return;
      const had = known.get(id);
      if (had && JSON.stringify(had) === JSON.stringify(job)) return;
      // Re-rendering replaces the row's buttons: a focused one hands focus to its twin.
      const active = document.activeElement;
      const row = active && rows.contains(active) ? active.closest('li') : null;
      const kind = row && row.dataset.jobId === id
        ? (active.matches('[data-js-undo-job]') ? '[data-js-undo-job]' : '[data-js-show]')
        : null;
      put(job, { prepend: !had });
      show(empty, false);
      if (kind) {
        const twin = rows.querySelector(`[data-job-id="${id}"] ${kind}`);
        (twin && !twin.hidden ? twin : rows.querySelector(`[data-job-id="${id}"] [data-js-show]`))?.focus();
      }
    },
    reload: () => load(true),
  };
}
