// The app page: read the session handed over by the server, then show who is signed in.
import { api, ApiError, setSessionToken } from './api.js';
import { fitWindow } from './bx24.js';

const body = document.body;
const strings = JSON.parse(body.dataset.strings || '{}');
const t = (key, params = {}) =>
  (strings[key] || key).replace(/\{(\w+)\}/g, (_, name) => (name in params ? params[name] : `{${name}}`));

setSessionToken(body.dataset.session);
// Keep the token out of the DOM once the API module holds it.
delete body.dataset.session;

const byTestId = (id) => document.querySelector(`[data-testid="${id}"]`);

function roleText(rights) {
  return t(`ui.role.${rights.role}`);
}

function showIdentity(me) {
  byTestId('current-user').textContent = t('ui.signed_in', { name: me.user.name, domain: me.portal.domain });
  byTestId('portal-domain').textContent = me.portal.domain;
  byTestId('user-name').textContent = `${me.user.name} (#${me.user.id})`;
  byTestId('user-rights').textContent = roleText(me.rights);
  byTestId('owner-types').textContent = me.owner_types.map((type) => type.name).join(', ') || '—';
  byTestId('session-info').hidden = false;
}

function showPermissionNotice(rights) {
  const notice = byTestId('permission-denied');
  if (rights.can_bind) {
    notice.hidden = true;
    return;
  }
  const kind = rights.can_view ? 'read_only' : 'no_access';
  notice.querySelector('[data-role="title"]').textContent = t(`ui.denied.${kind}.title`);
  notice.querySelector('[data-role="text"]').textContent = t(`ui.denied.${kind}.text`);
  notice.querySelector('[data-role="who"]').textContent = t('ui.denied.who');
  notice.dataset.kind = kind;
  notice.hidden = false;
}

function showError(error, reconnectUrl) {
  const panel = byTestId('app-error');
  const code = error instanceof ApiError ? error.code : 'network_error';
  const known = strings[`ui.error.${code}`];
  panel.querySelector('[data-role="text"]').textContent = known || error.message || t('ui.error.generic');
  panel.dataset.errorCode = code;
  const link = panel.querySelector('[data-role="reconnect"]');
  if (code === 'reauth_required' && reconnectUrl) {
    link.href = reconnectUrl;
    link.hidden = false;
  }
  panel.hidden = false;
}

async function main() {
  try {
    const me = await api(body.dataset.meUrl);
    showIdentity(me);
    showPermissionNotice(me.rights);
    if (me.bitrix_auth === 'reauth_required') {
      showError(new ApiError(401, 'reauth_required', ''), me.reconnect_url);
    }
    document.dispatchEvent(new CustomEvent('b24app:ready', { detail: me }));
  } catch (error) {
    showError(error, null);
  }
  fitWindow();
}

main();
