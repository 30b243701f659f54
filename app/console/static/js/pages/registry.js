import { h, field, select, copyable, bytes, when, liveRegion, errorBox, replace } from "../dom.js";
import { api, get, can, roleIn, registryPath } from "../api.js";
import { registryHref } from "../routes.js";
import { followInto } from "./operation.js";

export function registryTabs(org, registry) {
  return h("nav", { class: "tabs", "aria-label": `Registry ${registry}` }, h("ul", {},
    [["", "Overview"], ["tree", "Repositories"], ["credentials", "Credentials"], ["usage", "Usage"]].map(([view, text]) =>
      h("li", {}, h("a", { href: view ? registryHref(org, registry, view) : registryHref(org, registry) }, text)))));
}

export async function registryPage(org, name) {
  const [registry, role, skus] = await Promise.all([get(registryPath(org, name)), roleIn(org), get("/skus")]);
  const page = h("section", {}, h("h1", {}, `Registry ${registry.name}`), registryTabs(org, name));
  page.append(h("dl", { class: "facts" },
    fact("Status", registry.status), fact("Visibility", registry.visibility), fact("SKU", registry.sku),
    fact("Endpoint", registry.endpoint), fact("Path endpoint", registry.path_endpoint),
    fact("Stored", registry.usage ? bytes(registry.usage.stored_bytes) : "—"),
    fact("Created", `${when(registry.created_at)} by ${registry.created_by || "—"}`)));
  if (registry.custom_domain) {
    page.append(h("h2", {}, "Custom domain"),
      h("p", {}, `${registry.custom_domain}: `, h("strong", {}, registry.custom_domain_status || "—")));
    if (registry.custom_domain_verification) {
      const v = registry.custom_domain_verification;
      page.append(copyable("Verification record (DNS)", `${v.name}. ${v.type} "${v.value}"`));
    }
  }
  if (can(role, "create_registry")) page.append(settingsForm(org, registry, skus.skus));
  return page;
}

function fact(term, value) {
  return [h("dt", {}, term), h("dd", {}, value === null || value === undefined ? "—" : String(value))];
}

function settingsForm(org, registry, skus) {
  const visibility = select([["private", "Private"], ["public", "Public"]], registry.visibility);
  const sku = select(skus.map((s) => [s.name, `${s.title} (${s.name})`]), registry.sku);
  const immutable = h("textarea", { rows: 3 }, (registry.immutable_tags || []).join("\n"));
  const mode = select([["strict", "strict"], ["index-sparse", "index-sparse"], ["sparse", "sparse"]],
    registry.manifest_policy ? registry.manifest_policy.mode : "strict");
  const platforms = h("input", { value: registry.manifest_policy ? registry.manifest_policy.required_platforms.join(", ") : "" });
  const domain = h("input", { value: registry.custom_domain || "", autocomplete: "off" });
  const progress = liveRegion();
  const problem = h("div");
  const form = h("form", { id: "registry-settings" }, h("h2", {}, "Settings"),
    field("Visibility", visibility), field("SKU", sku),
    field("Immutable tag patterns", immutable, "One pattern per line, e.g. v* or release-*"),
    field("Manifest policy", mode), field("Required platforms", platforms, "Comma-separated, e.g. linux/amd64, linux/arm64"),
    field("Custom domain", domain, "Leave empty for none"),
    h("button", { type: "submit", class: "primary" }, "Save"), progress, problem);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.replaceChildren();
    const patterns = immutable.value.split("\n").map((s) => s.trim()).filter(Boolean);
    const required = platforms.value.split(",").map((s) => s.trim()).filter(Boolean);
    const changes = {
      visibility: visibility.value, sku: sku.value, immutable_tags: patterns,
      manifest_policy: { mode: mode.value, required_platforms: required },
    };
    changes.custom_domain = domain.value.trim() || null;
    const before = { ...registry, custom_domain: registry.custom_domain || null };
    for (const key of Object.keys(changes)) {
      if (JSON.stringify(changes[key]) === JSON.stringify(before[key])) delete changes[key];
    }
    try {
      const updated = await api("PATCH", registryPath(org, registry.name), changes);
      if (updated.operation) await followInto(progress, updated.operation);
      else replace(progress, "Saved.");
    } catch (error) {
      problem.replaceChildren(errorBox(error));
    }
  });
  if (registry.custom_domain && registry.custom_domain_status !== "verified") {
    form.append(h("button", { type: "button", onclick: async () => {
      try {
        const answer = await api("POST", registryPath(org, registry.name, "/custom-domain/verify"));
        if (answer.operation) await followInto(progress, answer.operation);
        else replace(progress, `Custom domain: ${answer.custom_domain_status}`);
      } catch (error) {
        problem.replaceChildren(errorBox(error));
      }
    } }, "Verify the custom domain now"));
  }
  return form;
}
