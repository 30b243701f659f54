// The signed-in session: an access token (pasted, or an OpenID Connect access token) kept in
// sessionStorage only: never in a URL, a cookie or localStorage. Sign-out removes it.

const TOKEN = "berth.token";
const PENDING = "berth.oidc"; // the PKCE verifier and state while the provider is visited

export function token() {
  return sessionStorage.getItem(TOKEN);
}

export function keep(value) {
  sessionStorage.setItem(TOKEN, value);
}

export function signOut() {
  sessionStorage.removeItem(TOKEN);
  sessionStorage.removeItem(PENDING);
}

export async function consoleConfig() {
  const answer = await fetch("config.json", { cache: "no-store", credentials: "omit" });
  return answer.ok ? answer.json() : { oidc: null };
}

function base64url(bytes) {
  let text = "";
  for (const b of new Uint8Array(bytes)) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function random(n) {
  return base64url(crypto.getRandomValues(new Uint8Array(n)));
}

function redirectUri() {
  return `${location.origin}/console/`;
}

// Off to the provider: authorization code with an S256 PKCE challenge.
export async function startOidc(oidc) {
  const verifier = random(32);
  const state = random(16);
  const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state }));
  const url = new URL(oidc.authorization_endpoint);
  url.searchParams.set("response_type", "code");
  url.searchParams.set("client_id", oidc.client_id);
  url.searchParams.set("redirect_uri", redirectUri());
  url.searchParams.set("scope", oidc.scope);
  url.searchParams.set("state", state);
  url.searchParams.set("code_challenge", challenge);
  url.searchParams.set("code_challenge_method", "S256");
  location.assign(url.toString());
}

// Back from the provider (?code=&state= or ?error=): the URL is cleaned at once, then the code
// is exchanged (through Berth) for the access token. False when this is no such return.
export async function finishOidc() {
  const query = new URLSearchParams(location.search);
  if (!query.has("code") && !query.has("error")) return false;
  history.replaceState(null, "", location.pathname + location.hash);
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
  sessionStorage.removeItem(PENDING);
  if (query.has("error")) throw new Error(`The identity provider refused the sign-in: ${query.get("error")}`);
  if (!pending || pending.state !== query.get("state")) {
    throw new Error("This sign-in was not started here (its state does not match); sign in again.");
  }
  const answer = await fetch("oidc/token", {
    method: "POST",
    cache: "no-store",
    credentials: "omit",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ code: query.get("code"), code_verifier: pending.verifier, redirect_uri: redirectUri() }),
  });
  const doc = await answer.json().catch(() => ({}));
  if (!answer.ok) throw new Error(doc.detail || `Sign-in failed (HTTP ${answer.status})`);
  keep(doc.access_token);
  return true;
}
