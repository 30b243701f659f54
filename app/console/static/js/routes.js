// Hash routes: #/orgs/{org}/registries/{registry}/... with each name one encoded segment.

export function href(...segments) {
  return `#/${segments.map((s) => encodeURIComponent(s)).join("/")}`;
}

// The address's own options after '?', e.g. #/orgs/acme/members?limit=20.
function hashQuery() {
  const at = location.hash.indexOf("?");
  return new URLSearchParams(at < 0 ? "" : location.hash.slice(at + 1));
}

export function current() {
  const path = location.hash.startsWith("#/") ? location.hash.slice(2).split("?")[0] : "";
  return path ? path.split("/").map((s) => decodeURIComponent(s)) : [];
}

// Items per page of a list: the API's default, or the address's ?limit= (1-1000).
export const DEFAULT_PAGE_SIZE = 100;

export function pageSize() {
  const asked = Number(hashQuery().get("limit"));
  return Number.isInteger(asked) && asked >= 1 && asked <= 1000 ? asked : DEFAULT_PAGE_SIZE;
}

export const orgHref = (org, ...rest) => href("orgs", org, ...rest);
export const registryHref = (org, registry, ...rest) => href("orgs", org, "registries", registry, ...rest);
