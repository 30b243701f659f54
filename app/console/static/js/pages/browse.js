// The folder tree -> a repository's tags -> one manifest, with copyable pull commands.

import { h, table, link, bytes, when, shortDigest, copyable } from "../dom.js";
import { get, registryPath, repositoryPath } from "../api.js";
import { registryHref } from "../routes.js";
import { registryTabs } from "./registry.js";

function breadcrumbs(org, registry, path) {
  const parts = path.split("/").filter(Boolean);
  const crumbs = [link(registryHref(org, registry, "tree"), registry)];
  let prefix = "";
  for (const part of parts) {
    prefix += `${part}/`;
    crumbs.push(" / ", link(registryHref(org, registry, "tree", prefix), part));
  }
  return h("nav", { class: "crumbs", "aria-label": "Folder" }, crumbs);
}

export async function treePage(org, registry, path) {
  const query = path ? `?path=${encodeURIComponent(path)}&limit=500` : "?limit=500";
  const listing = await get(registryPath(org, registry, `/repositories${query}`));
  return h("section", {}, h("h1", {}, `Repositories in ${registry}`), registryTabs(org, registry),
    breadcrumbs(org, registry, path),
    table(path ? `Folder ${path}` : "Top level", ["Name", "Kind", "Tags", "Stored", "Last push"],
      listing.entries.map((e) => e.type === "folder"
        ? [link(registryHref(org, registry, "tree", e.path), `${e.name}/`), `folder (${e.repositories} repositories)`, "", "", ""]
        : [link(registryHref(org, registry, "repo", e.path), e.name), "repository", String(e.tags), bytes(e.size),
          when(e.last_push)])));
}

function pullHost(registryDoc) {
  return registryDoc.path_endpoint;
}

function platforms(list) {
  return (list || []).map((p) => p.platform || "unknown").join(", ") || "—";
}

export async function repositoryPage(org, registry, repository) {
  const [registryDoc, repo, tags] = await Promise.all([
    get(registryPath(org, registry)), get(repositoryPath(org, registry, repository)),
    get(repositoryPath(org, registry, repository, "/tags?limit=500")),
  ]);
  const host = pullHost(registryDoc);
  const page = h("section", {}, h("h1", {}, `Repository ${repo.name}`), registryTabs(org, registry),
    breadcrumbs(org, registry, repository.split("/").slice(0, -1).map((s) => `${s}/`).join("")),
    h("p", {}, `${repo.tags} tags, ${bytes(repo.stored_bytes ?? repo.size)} stored, last push ${when(repo.last_push)}`));
  page.append(table("Tags", ["Tag", "Digest", "Size", "Platforms", "Pushed", "Artifact type", "Pull"],
    tags.tags.map((t) => [
      link(registryHref(org, registry, "repo", repository, t.digest), t.name),
      h("code", { title: t.digest }, shortDigest(t.digest)), bytes(t.size), platforms(t.platforms), when(t.pushed_at),
      t.artifact_type || "image",
      copyable(`docker pull ${t.name}`, `docker pull ${host}/${repository}:${t.name}`, { class: "pull" }),
    ])));
  return page;
}

function descriptorRows(list) {
  return list.map((d) => [h("code", { title: d.digest }, shortDigest(d.digest)), d.media_type || "—", bytes(d.size),
    d.present === false ? "not held here" : "held"]);
}

export async function manifestPage(org, registry, repository, digest) {
  const [registryDoc, m] = await Promise.all([
    get(registryPath(org, registry)), get(repositoryPath(org, registry, repository, `/manifests/${digest}`)),
  ]);
  const page = h("section", {}, h("h1", {}, `Manifest of ${repository}`), registryTabs(org, registry),
    h("p", {}, link(registryHref(org, registry, "repo", repository), `← tags of ${repository}`)),
    h("dl", { class: "facts" },
      [["Digest", m.digest], ["Media type", m.media_type], ["Artifact type", m.artifact_type || "—"],
        ["Size", bytes(m.size)], ["Platforms", platforms(m.platforms)], ["Tags", (m.tags || []).join(", ") || "—"],
        ["Pushed", when(m.pushed_at)], ["Subject", m.subject || "—"]]
        .map(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))])),
    copyable("docker pull by digest", `docker pull ${pullHost(registryDoc)}/${repository}@${m.digest}`));
  if (m.config) {
    page.append(h("h2", {}, "Config"), table("Config", ["Digest", "Media type", "Size", ""], descriptorRows([m.config])));
    const image = m.config.image;
    if (image) {
      page.append(h("dl", { class: "facts" },
        [["Platform", [image.os, image.architecture, image.variant].filter(Boolean).join("/")],
          ["Created", when(image.created)], ["Entrypoint", JSON.stringify(image.entrypoint)],
          ["Cmd", JSON.stringify(image.cmd)], ["Labels", JSON.stringify(image.labels)]]
          .map(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))])));
    }
  }
  if (m.layers) page.append(h("h2", {}, "Layers"), table("Layers", ["Digest", "Media type", "Size", ""], descriptorRows(m.layers)));
  if (m.platforms && m.platforms.length) {
    page.append(h("h2", {}, "Platform manifests"), table("Platform manifests", ["Digest", "Platform", "Size"],
      m.platforms.map((d) => [link(registryHref(org, registry, "repo", repository, d.digest), shortDigest(d.digest)),
        d.platform || "unknown", bytes(d.size)])));
  }
  page.append(h("h2", {}, "Referrers"), table("Referrers (signatures, SBOMs, attestations)",
    ["Digest", "Artifact type", "Size", "Annotations"],
    (m.referrers || []).map((r) => [link(registryHref(org, registry, "repo", repository, r.digest), shortDigest(r.digest)),
      r.artifact_type || r.media_type || "—", bytes(r.size), r.annotations ? JSON.stringify(r.annotations) : "—"])));
  if (m.annotations) page.append(h("h2", {}, "Annotations"), table("Annotations", ["Key", "Value"],
    Object.entries(m.annotations).map(([k, v]) => [k, String(v)])));
  return page;
}
