// The app page, for every placement: hand the session to the API client, then start the
// screen the server rendered (data-screen): the app page, a deal/invoice tab or an order tab.

import { api, setApiRoot, setSessionToken } from './api.js';
import { createBinder } from './binder.js';
import { createBindingsList } from './bindings.js';
import { createBulkBinder } from './bulk.js';
import { followContent, handleSliderLinks } from './bx24.js';
import { byId } from './dom.js';
import { setReconnectUrl, showError } from './feedback.js';
import { createHistory } from './history.js';
import { t } from './i18n.js';
import { createJobView } from './job.js';
import { createJobsList } from './jobs.js';

const body = document.body;
setSessionToken(body.dataset.session);
// Keep the token out of the DOM once the API module holds it.
delete body.dataset.session;
setApiRoot(body.dataset.apiRoot);

const canBind = body.dataset.canBind === 'true';
const canView = body.dataset.canView === 'true';

// The session's health: a dead Bitrix24 sign-in shows the reconnect link before any action.
async function checkSignIn() {
  try {
    const me = await api(body.dataset.meUrl);
    setReconnectUrl(me.reconnect_url);
    if (me.bitrix_auth === 'reauth_required') {
      showError(byId('app-error'), { code: 'reauth_required', message: t('ui.error.reauth_required') });
    }
  } catch (error) {
    showError(byId('app-error'), error);
  }
}

// A deal's or an invoice's own row (for its title in sentences), looked up by id.
async function findOwner(ownerTypeId, ownerId) {
  try {
    const page = await api('owners', { query: { type: ownerTypeId, q: String(ownerId) } });
    return (page.items || []).find((item) => Number(item.id) === ownerId) || null;
  } catch {
    return null;
  }
}

// Bulk binding: the form (store administrators), the watched job and the jobs list.
// onFinished(job) when a job followed on this page finishes (the lists show its work).
function startJobs({ owner = null, onFinished }) {
  let jobs = null;
  const jobView = createJobView({
    canWrite: canBind,
    onUpdate: (job) => jobs && jobs.update(job),
    onFinished,
  });
  jobs = createJobsList({ canWrite: canBind, owner, jobView });
  const bulk = canBind
    ? createBulkBinder({
        owner,
        onStarted: (job) => {
          jobs.update(job);
          jobView.watch(job, { focus: true });
        },
      })
    : null;
  return { bulk, jobs };
}

function startDefault() {
  let history = null;
  const binder = createBinder({ canBind, onChanged: () => history && history.reload() });
  history = createHistory({ canUndo: canBind, onChanged: ({ orderId }) => binder.reload(orderId) });
  startJobs({
    onFinished: () => {
      history.reload();
      binder.reload();
    },
  });
}

function startOwnerTab() {
  const ownerTypeId = Number(body.dataset.ownerTypeId);
  const ownerId = Number(body.dataset.ownerId);
  const card = { ownerTypeId, id: ownerId, ownerId };
  let list = null;
  const binder = canBind
    ? createBinder({ owner: card, canBind, onChanged: () => list && list.reload() })
    : null;
  list = createBindingsList({
    ownerTypeId,
    ownerId,
    owner: card,
    onChanged: ({ orderId }) => binder && binder.reload(orderId),
  });
  const { bulk } = startJobs({
    owner: card,
    onFinished: () => {
      list.reload();
      if (binder) binder.reload();
    },
  });
  findOwner(ownerTypeId, ownerId).then((found) => {
    if (!found) return;
    if (binder) binder.setOwner(found);
    if (bulk) bulk.setOwner(found);
    list.setOwner(found);
  });
}

function startOrderTab() {
  createBinder({ orderId: Number(body.dataset.orderId), canBind });
}

handleSliderLinks();
followContent();
checkSignIn();
if (canView) {
  const screen = body.dataset.screen;
  if (screen === 'owner') startOwnerTab();
  else if (screen === 'order') startOrderTab();
  else startDefault();
}
// The controls answer from now on (tests wait for this rather than for time).
body.dataset.state = 'ready';
