// The app's JSON API client: every call carries the page's session token as a bearer token.
// The token lives in this module only (no cookie, no storage); the page hands it over once.

let sessionToken = null;
let apiRoot = '/api/';

export class ApiError extends Error {
  constructor(status, code, message, { field = null, retryAfter = null } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
    this.retryAfter = retryAfter;
  }
}

export function setSessionToken(token) {
  sessionToken = token;
}

export function setApiRoot(root) {
  if (root) apiRoot = root.endsWith('/') ? root : `${root}/`;
}

// Build an API URL from a path below /api/ and query values (empty values left out).
export function apiUrl(path, query = {}) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== '') params.set(name, String(value));
  }
  const search = params.toString();
  return `${apiRoot}${path.replace(/^\//, '')}${search ? `?${search}` : ''}`;
}

// Call the API; answers the parsed JSON or throws ApiError (an AbortError passes through).
export async function api(path, { method = 'GET', body, query, signal } = {}) {
  const headers = { Accept: 'application/json' };
  if (sessionToken) headers.Authorization = `Bearer ${sessionToken}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const url = path.startsWith('/') ? path : apiUrl(path, query);
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
      signal,
    });
  } catch (error) {
    if (error && error.name === 'AbortError') throw error;
    throw new ApiError(0, 'network_error', '');
  }
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    payload = null;
  }
  if (!response.ok) {
    const detail = (payload && payload.error) || {};
    const header = Number.parseInt(response.headers.get('Retry-After') || '', 10);
    throw new ApiError(response.status, detail.code || 'http_error', detail.message || '', {
      field: detail.field || null,
      retryAfter: detail.retryAfter ?? (Number.isFinite(header) ? header : null),
    });
  }
  return payload;
}
