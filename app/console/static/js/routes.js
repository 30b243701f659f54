// Hash routes: #/orgs/{org}/registries/{registry}/... with each name one encoded segment.

export function href(...segments) {
  return `#/${segments.map((s) => encodeURIComponent(s)).join("/")}`;
}

export function current() {
  const hash = location.hash.startsWith("#/") ? location.hash.slice(2) : "";
  return hash ? hash.split("/").map((s) => decodeURIComponent(s)) : [];
}

export const orgHref = (org, ...rest) => href("orgs", org, ...rest);
export const registryHref = (org, registry, ...rest) => href("orgs", org, "registries", registry, ...rest);
