// The console's entry: finish a sign-in if the provider just sent us back, then route.

import { h, replace, errorBox } from "./dom.js";
import { whenUnauthorized, forgetOrgs } from "./api.js";
import { consoleConfig, finishOidc, signOut, token } from "./session.js";
import { current, orgHref } from "./routes.js";
import { signInPage } from "./pages/sign_in.js";
import { orgsPage } from "./pages/orgs.js";
import { registriesPage } from "./pages/registries.js";
import { registryPage } from "./pages/registry.js";
import { treePage, repositoryPage, manifestPage } from "./pages/browse.js";
import { credentialsPage } from "./pages/credentials.js";
import { membersPage, tokensPage } from "./pages/access.js";
import { usagePage } from "./pages/usage.js";
import { auditPage } from "./pages/audit.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const signOutButton = document.getElementById("sign-out");

function route(segments) {
  const [first, org, section, registry, view, ...rest] = segments;
  if (first !== "orgs" || !org) return () => orgsPage();
  if (!section) return () => registriesPage(org);
  if (section === "members") return () => membersPage(org);
  if (section === "tokens") return () => tokensPage(org);
  if (section === "audit") return () => auditPage(org);
  if (section === "registries" && registry) {
    if (!view) return () => registryPage(org, registry);
    if (view === "tree") return () => treePage(org, registry, rest[0] || "");
    if (view === "repo" && rest.length === 1) return () => repositoryPage(org, registry, rest[0]);
    if (view === "repo" && rest.length === 2) return () => manifestPage(org, registry, rest[0], rest[1]);
    if (view === "credentials") return () => credentialsPage(org, registry);
    if (view === "usage") return () => usagePage(org, registry);
  }
  return () => h("p", {}, "No such page. ", h("a", { href: "#/" }, "Go to your organizations."));
}

function drawNav(segments) {
  const org = segments[0] === "orgs" ? segments[1] : null;
  const items = [["#/", "Organizations"]];
  if (org) {
    items.push([orgHref(org), "Registries"], [orgHref(org, "members"), "Members"],
      [orgHref(org, "tokens"), "Access tokens"], [orgHref(org, "audit"), "Audit log"]);
  }
  const here = location.hash || "#/";
  replace(nav, h("ul", {}, items.map(([target, text]) =>
    h("li", {}, h("a", { href: target, "aria-current": here === target ? "page" : null }, text)))));
}

async function render() {
  if (!token()) {
    nav.replaceChildren();
    signOutButton.hidden = true;
    replace(main, await signInPage(render));
    return;
  }
  signOutButton.hidden = false;
  const segments = current();
  drawNav(segments);
  replace(main, h("p", { class: "loading" }, "Loading…"));
  try {
    const page = await route(segments)();
    replace(main, page);
  } catch (error) {
    replace(main, errorBox(error));
  }
  const heading = main.querySelector("h1");
  document.title = heading ? `${heading.textContent} · Berth console` : "Berth console";
}

whenUnauthorized(() => {
  signOut();
  forgetOrgs();
  render();
});

signOutButton.addEventListener("click", () => {
  signOut();
  forgetOrgs();
  history.replaceState(null, "", location.pathname);
  render();
});

document.getElementById("skip").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});

window.addEventListener("hashchange", () => {
  render().then(() => main.focus({ preventScroll: true }));
});

async function start() {
  try {
    if (await finishOidc()) forgetOrgs();
  } catch (error) {
    replace(main, errorBox(error), await signInPage(render));
    return;
  }
  await render();
}

start();
