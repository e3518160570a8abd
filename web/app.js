// Login page: signs in, keeps the access token in memory only (the refresh token lives
// in an HttpOnly cookie the script cannot read), and shows who you are.
"use strict";

let accessToken = null;

async function api(path, options = {}) {
  const headers = { "Content-Type": "application/json", ...(options.headers || {}) };
  if (accessToken) headers.Authorization = `Bearer ${accessToken}`;
  const res = await fetch(path, { ...options, headers, credentials: "same-origin" });
  const body = res.status === 204 ? null : await res.json().catch(() => null);
  return { res, body };
}

function show(user) {
  document.getElementById("me-name").textContent = user.name;
  document.getElementById("me-email").textContent = user.email;
  document.getElementById("me-role").textContent = user.role;
  document.getElementById("me-specialties").textContent = user.specialties.join(", ") || "none";
  document.getElementById("login-form").hidden = true;
  document.getElementById("whoami").hidden = false;
}

async function loadMe() {
  const { res, body } = await api("/api/me");
  if (res.ok) show(body);
}

async function tryRefresh() {
  const { res, body } = await api("/api/auth/refresh", { method: "POST" });
  if (res.ok) {
    accessToken = body.access_token;
    await loadMe();
  }
}

document.getElementById("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = document.getElementById("login-error");
  error.hidden = true;
  const { res, body } = await api("/api/auth/login", {
    method: "POST",
    body: JSON.stringify({
      email: document.getElementById("email").value,
      password: document.getElementById("password").value,
    }),
  });
  if (res.ok) {
    accessToken = body.access_token;
    document.getElementById("password").value = "";
    await loadMe();
  } else {
    error.textContent = (body && body.message) || "Sign-in failed";
    error.hidden = false;
  }
});

document.getElementById("logout").addEventListener("click", async () => {
  await api("/api/auth/logout", { method: "POST" });
  accessToken = null;
  document.getElementById("whoami").hidden = true;
  document.getElementById("login-form").hidden = false;
});

tryRefresh();
