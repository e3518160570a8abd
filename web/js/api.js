// The API client: owns the access token (in memory only; the refresh token is an HttpOnly
// cookie the script never sees), refreshes it quietly before it expires and once more on
// a 401, and turns every refusal into an ApiError carrying the server's stable code.

let accessToken = null;
let refreshTimer = null;
let refreshing = null;
// Bumped on sign-out, so a refresh still in flight then cannot sign the user back in.
let signOuts = 0;
const listeners = new Set();

/**
 * A refusal from the API: `code` is the server's snake_case code, `field` the bad field,
 * `body` the whole answer (some refusals carry more, e.g. the recorded patient details).
 */
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `request failed (${status})`);
    this.status = status;
    this.code = (body && body.code) || (status === 0 ? "network_error" : "unexpected_response");
    this.field = body && body.field;
    this.body = body && typeof body === "object" ? body : null;
  }
}

/** Called with the signed-in user, or null when the session ends. */
export function onSession(fn) {
  listeners.add(fn);
}

function tell(user) {
  for (const fn of listeners) fn(user);
}

function adopt(body) {
  accessToken = body.access_token;
  clearTimeout(refreshTimer);
  // Refresh a minute before expiry (at three quarters of the lifetime for short tokens).
  const life = body.expires_in;
  const ms = Math.max(5, life > 240 ? life - 60 : life * 0.75) * 1000;
  refreshTimer = setTimeout(() => refresh().catch(() => {}), ms);
}

async function send(path, { method = "GET", body, headers = {} } = {}) {
  const h = { ...headers };
  if (accessToken) h.Authorization = `Bearer ${accessToken}`;
  let payload = body;
  if (body instanceof Blob) {
    // Sent as it is, with its own type (a CSV as text/csv).
    if (body.type && !h["Content-Type"]) h["Content-Type"] = body.type;
  } else if (body !== undefined && !(body instanceof FormData)) {
    h["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, { method, headers: h, body: payload, credentials: "same-origin" });
  } catch {
    throw new ApiError(0, { message: "The server could not be reached. Check your connection." });
  }
  return res;
}

async function parse(res) {
  if (res.status === 204) return null;
  const type = res.headers.get("Content-Type") || "";
  if (type.includes("json")) return res.json().catch(() => null);
  return res.text();
}

function endSession() {
  accessToken = null;
  clearTimeout(refreshTimer);
  tell(null);
}

/**
 * Exchanges the refresh cookie for a new access token. One refresh at a time, across
 * this browser's tabs too: the server rotates the cookie on every refresh and treats a
 * second use of the old one as theft (ending the sign-in everywhere), so tabs take turns
 * through a Web Lock and each sends the cookie the previous one left.
 */
export function refresh() {
  const epoch = signOuts;
  const exchange = async () => {
    const res = await send("/api/auth/refresh", { method: "POST" });
    const body = await parse(res);
    if (epoch !== signOuts) throw new ApiError(401, { code: "signed_out", message: "signed out" });
    if (res.status === 204) {
      // No refresh cookie at all: nobody is signed in (every fresh visit asks). The server
      // answers that without an error status, so the browser logs nothing.
      endSession();
      throw new ApiError(401, { code: "not_signed_in", message: "Sign in first." });
    }
    if (!res.ok) {
      // Only a refused cookie ends the sign-in; a busy or unreachable server does not.
      if (res.status === 401) endSession();
      throw new ApiError(res.status, body);
    }
    adopt(body);
    return body.user;
  };
  refreshing ??= (async () => {
    try {
      return navigator.locks ? await navigator.locks.request("mdt-refresh", exchange) : await exchange();
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

/**
 * Calls the API; a 401 gets one quiet refresh and retry. Resolves to the parsed body.
 * `body` is sent as JSON, except FormData and a Blob (sent as they are: a Blob with its
 * own type, e.g. `new Blob([csv], {type: "text/csv"})`).
 */
export async function api(path, options = {}) {
  let res = await send(path, options);
  if (res.status === 401 && accessToken && !path.startsWith("/api/auth/")) {
    await refresh();
    res = await send(path, options);
  }
  const body = await parse(res);
  if (!res.ok) throw new ApiError(res.status, body);
  return body;
}

export async function signIn(email, password) {
  const body = await api("/api/auth/login", { method: "POST", body: { email, password } });
  adopt(body);
  tell(body.user);
  return body.user;
}

/**
 * Changes the caller's own password (the way past a one-time password). The server ends
 * every other sign-in and starts a new one, adopted here.
 */
export async function changePassword(current, next) {
  const body = await api("/api/me/password", {
    method: "POST",
    body: { current_password: current, new_password: next },
  });
  adopt(body);
  tell(body.user);
  return body.user;
}

export async function signOut() {
  signOuts += 1;
  try {
    await api("/api/auth/logout", { method: "POST" });
  } finally {
    accessToken = null;
    clearTimeout(refreshTimer);
    tell(null);
  }
}

/** Starts the page: signs back in from the refresh cookie if there is one. */
export async function resume() {
  try {
    const user = await refresh();
    tell(user);
    return user;
  } catch {
    return null;
  }
}

/**
 * Uploads one file as multipart form data, reporting progress (0..1). XMLHttpRequest,
 * because fetch cannot report upload progress.
 */
export function upload(path, file, onProgress) {
  const attempt = () =>
    new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", path);
      if (accessToken) xhr.setRequestHeader("Authorization", `Bearer ${accessToken}`);
      xhr.upload.onprogress = (e) => e.lengthComputable && onProgress?.(e.loaded / e.total);
      xhr.onload = () => {
        let body = null;
        try {
          body = JSON.parse(xhr.responseText);
        } catch {
          /* not JSON */
        }
        resolve({ status: xhr.status, body });
      };
      xhr.onerror = () => resolve({ status: 0, body: null });
      const form = new FormData();
      form.append("file", file, file.name);
      xhr.send(form);
    });
  return (async () => {
    let { status, body } = await attempt();
    if (status === 401) {
      await refresh();
      ({ status, body } = await attempt());
    }
    if (status < 200 || status >= 300) throw new ApiError(status, body);
    onProgress?.(1);
    return body;
  })();
}

/** Downloads an authenticated resource and returns it as a Blob (for letters, files). */
export async function download(path) {
  let res = await send(path);
  if (res.status === 401) {
    await refresh();
    res = await send(path);
  }
  if (!res.ok) throw new ApiError(res.status, await parse(res));
  return res.blob();
}
