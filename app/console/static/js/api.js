// The console's only data source: /api/v1 on this origin, with the session's bearer token.

import { token } from "./session.js";

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

let onUnauthorized = () => {};
export function whenUnauthorized(callback) {
  onUnauthorized = callback;
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const bearer = token();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const url = path.startsWith("/api/") ? path : `/api/v1${path}`;
  const answer = await fetch(url, {
    method, headers, cache: "no-store", credentials: "omit",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (answer.status === 204) return null;
  const doc = await answer.json().catch(() => null);
  if (!answer.ok) {
    if (answer.status === 401) onUnauthorized();
    throw new ApiError(answer.status, doc);
  }
  return doc;
}

export const get = (path) => api("GET", path);

export function orgPath(org, rest = "") {
  return `/orgs/${encodeURIComponent(org)}${rest}`;
}

export function registryPath(org, registry, rest = "") {
  return orgPath(org, `/registries/${encodeURIComponent(registry)}${rest}`);
}

export function repositoryPath(org, registry, repository, rest = "") {
  // Repository names hold '/', which the API takes as is after repositories/.
  return registryPath(org, registry, `/repositories/${repository.split("/").map(encodeURIComponent).join("/")}${rest}`);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Follow a lifecycle operation to its end, reporting each state it passes through.
export async function follow(operation, onUpdate) {
  let current = operation;
  onUpdate(current);
  while (current.state !== "succeeded" && current.state !== "failed") {
    await sleep(400);
    current = await get(current.links.self);
    onUpdate(current);
  }
  return current;
}

// What each role may do; mirrors app/auth/roles.py so pages hide what the API would refuse.
const WRITE = ["push", "pull", "delete", "create_registry", "delete_registry", "browse", "create_token"];
const MATRIX = {
  owner: [...WRITE, "manage_members"],
  admin: [...WRITE, "manage_members"],
  developer: WRITE,
  reader: ["pull", "browse", "create_token"],
};

export function can(role, action) {
  return Boolean(role && MATRIX[role] && MATRIX[role].includes(action));
}

let orgs = null;
export async function myOrgs(refresh = false) {
  if (!orgs || refresh) orgs = (await get("/orgs")).orgs;
  return orgs;
}

export async function roleIn(org) {
  const found = (await myOrgs()).find((o) => o.name === org);
  return found ? found.role : null;
}

export function forgetOrgs() {
  orgs = null;
}
