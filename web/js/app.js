// The page shell: sign-in, the navigation for the signed-in role, and a hash router that
// shows one page module at a time in <main>. Each page module exports
// `render(main, ctx)` and may return a cleanup function, called when the page is left.
import { changePassword, onSession, resume, signIn, signOut } from "./api.js";
import { errorBox, explain, fill, h } from "./ui.js";

const view = document.getElementById("view");
let user = null;
let cleanup = null;
let visits = 0;

const PAGES = [
  { path: /^\/schedule$/, module: "schedule", title: "Schedule", nav: ["practitioner", "consultant", "trainee", "coordinator"] },
  { path: /^\/book\/([0-9a-f-]{36})$/, module: "book", title: "Book a case", roles: ["practitioner", "consultant", "coordinator"] },
  { path: /^\/triage$/, module: "triage", title: "Triage", nav: ["coordinator", "consultant"], roles: ["coordinator", "consultant"] },
  { path: /^\/cases$/, module: "cases", title: "My cases", nav: ["practitioner", "consultant"] },
  { path: /^\/cases\/([0-9a-f-]{36})$/, module: "case", title: "Case" },
  { path: /^\/meeting\/([0-9a-f-]{36})$/, module: "meeting", title: "Meeting room" },
  { path: /^\/actions$/, module: "actions", title: "My actions", nav: ["practitioner", "consultant"], roles: ["practitioner", "consultant"] },
  { path: /^\/print$/, module: "print", title: "Print and post", nav: ["coordinator"], roles: ["coordinator"] },
  { path: /^\/letters-due$/, module: "letters-due", title: "Letters due", nav: ["coordinator"], roles: ["coordinator"] },
  { path: /^\/practices$/, module: "practices", title: "GP practices", nav: ["coordinator"], roles: ["coordinator"] },
  { path: /^\/mentorship$/, module: "mentorship", title: "Mentorship", nav: ["consultant", "coordinator", "practitioner", "trainee"] },
  { path: /^\/caseload$/, module: "caseload", title: "Mentorship cases", nav: ["practitioner", "consultant", "coordinator"], roles: ["practitioner", "consultant", "coordinator"] },
  { path: /^\/supervision$/, module: "supervision", title: "Supervision", nav: ["practitioner", "consultant", "coordinator"], roles: ["practitioner", "consultant", "coordinator"] },
  { path: /^\/reports$/, module: "reports", title: "Reports", nav: ["coordinator", "consultant"], roles: ["coordinator", "consultant"] },
  { path: /^\/cpd$/, module: "cpd", title: "My CPD", nav: ["practitioner", "consultant", "trainee", "coordinator"] },
  { path: /^\/audit$/, module: "audit", title: "Audit", nav: ["coordinator"], roles: ["coordinator"] },
  { path: /^\/admin$/, module: "admin", title: "Admin", nav: ["coordinator"], roles: ["coordinator"] },
];

const HOME = { practitioner: "/cases", consultant: "/schedule", trainee: "/schedule", coordinator: "/schedule" };

export function navigate(path) {
  if (location.hash === `#${path}`) route();
  else location.hash = path;
}

function renderNav() {
  const nav = document.getElementById("nav");
  const here = location.hash.slice(1);
  fill(
    nav,
    h(
      "ul",
      {},
      PAGES.filter((p) => p.nav?.includes(user.role)).map((p) => {
        const href = p.path.source.replace(/^\^\\?|\$$/g, "").replaceAll("\\/", "/");
        return h("li", {}, h("a", { href: `#${href}`, "aria-current": here.startsWith(href) ? "page" : false }, p.title));
      }),
    ),
  );
  nav.hidden = false;
  document.getElementById("me-name").textContent = user.name;
  document.getElementById("me-role").textContent = user.role;
  document.getElementById("whoami").hidden = false;
}

function signInPage() {
  document.title = "Sign in · MDT Coordinator";
  document.getElementById("nav").hidden = true;
  document.getElementById("whoami").hidden = true;
  const email = h("input", { id: "email", name: "email", type: "email", autocomplete: "username", required: true });
  const password = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const error = errorBox("login-error");
  const form = h(
    "form",
    { id: "login-form", class: "card narrow", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Sign in"),
    h("p", {}, "Virtual multidisciplinary team meetings for musculoskeletal care."),
    h("label", { for: "email" }, "Email"),
    email,
    h("label", { for: "password" }, "Password"),
    password,
    h("button", { type: "submit" }, "Sign in"),
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.show(null);
    try {
      await signIn(email.value, password.value);
      password.value = "";
    } catch (err) {
      error.show(err.code === "invalid_credentials" ? "Email or password is incorrect." : explain(err));
      password.focus();
    }
  });
  fill(view, form);
  email.focus();
}

/**
 * Signed in with a one-time password a coordinator set: the server lets the account do
 * nothing else until it is changed, so neither does the page.
 */
function changePasswordPage() {
  document.title = "Choose a new password · MDT Coordinator";
  document.getElementById("nav").hidden = true;
  document.getElementById("me-name").textContent = user.name;
  document.getElementById("me-role").textContent = user.role;
  document.getElementById("whoami").hidden = false;
  const input = (id, autocomplete) => h("input", { id, name: id, type: "password", autocomplete, required: true, "aria-describedby": `${id}-error` });
  const current = input("current-password", "current-password");
  const next = input("new-password", "new-password");
  const again = input("new-password-again", "new-password");
  const fieldError = (id) => h("p", { class: "field-error", id: `${id}-error`, hidden: true });
  const errors = { current: fieldError("current-password"), next: fieldError("new-password"), again: fieldError("new-password-again") };
  const show = (which, text) => {
    errors[which].textContent = text || "";
    errors[which].hidden = !text;
  };
  const error = errorBox("password-error");
  const form = h(
    "form",
    { id: "password-form", class: "card narrow", novalidate: true, "aria-labelledby": "password-title" },
    h("h1", { id: "password-title" }, "Choose a new password"),
    h("p", {}, "Your password was reset. Enter the one-time password you were given, then choose your own (at least 12 characters)."),
    h("label", { for: "current-password" }, "One-time password"),
    current,
    errors.current,
    h("label", { for: "new-password" }, "New password"),
    next,
    errors.next,
    h("label", { for: "new-password-again" }, "New password again"),
    again,
    errors.again,
    h("button", { type: "submit" }, "Change password"),
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.show(null);
    for (const which of Object.keys(errors)) show(which, null);
    if (next.value.length < 12) {
      show("next", "must be at least 12 characters");
      return next.focus();
    }
    if (again.value !== next.value) {
      show("again", "the two new passwords differ");
      return again.focus();
    }
    try {
      await changePassword(current.value, next.value);
    } catch (err) {
      const where = { current_password: ["current", current], new_password: ["next", next] }[err.field];
      if (where) {
        show(where[0], explain(err));
        where[1].focus();
      } else error.show(err);
    }
  });
  fill(view, form);
  current.focus();
}

async function route() {
  // Every route counts as a visit, even one that ends at once (sign-in, no access), so a
  // page still loading from before never draws over it.
  const visit = ++visits;
  // The status region outlives pages: never leave one page's announcement to the next.
  document.getElementById("status").textContent = "";
  if (cleanup) {
    const done = cleanup;
    cleanup = null;
    try {
      done();
    } catch {
      /* the page is gone either way */
    }
  }
  if (!user) return signInPage();
  if (user.must_change_password) return changePasswordPage();
  const path = location.hash.slice(1) || "/";
  const page = PAGES.find((p) => p.path.test(path));
  if (!page || (page.roles && !page.roles.includes(user.role))) {
    if (path === "/" || !page) return navigate(HOME[user.role] || "/schedule");
  }
  renderNav();
  document.title = `${page.title} · MDT Coordinator`;
  fill(view, h("p", {}, "Loading…"));
  if (page.roles && !page.roles.includes(user.role)) {
    fill(view, h("p", { class: "error", role: "alert" }, "You do not have access to this page."));
    return;
  }
  const params = path.match(page.path).slice(1);
  // Each visit renders into its own container: a page still loading when the user moves
  // on writes into a detached element, never over the next page.
  const container = h("div", { class: "page" });
  try {
    const mod = await import(`./pages/${page.module}.js`);
    if (visit !== visits) return;
    fill(view, container);
    const result = await mod.render(container, { user, params, navigate });
    if (typeof result === "function") {
      if (visit === visits) cleanup = result;
      else result();
    }
  } catch (err) {
    if (visit === visits) fill(view, h("h1", {}, page.title), h("p", { class: "error", role: "alert" }, explain(err)));
  }
  if (visit === visits) view.focus({ preventScroll: true });
}

onSession((next) => {
  const changed = (user && user.id) !== (next && next.id) || Boolean(user?.must_change_password) !== Boolean(next?.must_change_password);
  user = next;
  if (changed) route();
});

document.getElementById("logout").addEventListener("click", () => signOut().catch(() => {}));
// The skip link moves focus to the page without going through the hash router.
document.querySelector(".skip").addEventListener("click", (event) => {
  event.preventDefault();
  view.focus();
});
window.addEventListener("hashchange", route);

resume().then((u) => {
  if (!u) route();
});
