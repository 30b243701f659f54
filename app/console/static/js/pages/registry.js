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
  const [role, skus] = await Promise.all([roleIn(org), get("/skus")]);
  const details = h("div");
  const progress = liveRegion({ id: "settings-progress" });
  const problem = h("div", { id: "settings-problem" });
  const page = h("section", {}, h("h1", {}, `Registry ${name}`), registryTabs(org, name), details);

  // The registry as it is now; drawn again after each change, so the page shows what was stored.
  async function draw() {
    const registry = await get(registryPath(org, name));
    replace(details, h("dl", { class: "facts" },
      fact("Status", registry.status), fact("Visibility", registry.visibility), fact("SKU", registry.sku),
      fact("Endpoint", registry.endpoint), fact("Path endpoint", registry.path_endpoint),
      fact("Stored", registry.usage ? bytes(registry.usage.stored_bytes) : "—"),
      fact("Created", `${when(registry.created_at)} by ${registry.created_by || "—"}`)));
    if (registry.custom_domain) details.append(customDomain(org, registry, role, progress, problem, draw));
    details.append(progress, problem); // the same two regions each time: what they say stays
    if (can(role, "create_registry")) {
      details.append(settingsForm(org, registry, can(role, "change_sku") ? skus.skus : null, progress, problem, draw));
    }
  }

  await draw();
  return page;
}

function fact(term, value) {
  return [h("dt", {}, term), h("dd", {}, value === null || value === undefined ? "—" : String(value))];
}

// Run a change: its operation followed to the end when it has one, then the page drawn again.
async function change(progress, problem, request, done, draw) {
  problem.replaceChildren();
  progress.replaceChildren();
  try {
    const answer = await request();
    if (answer && answer.operation) await followInto(progress, answer.operation);
    await draw();
    progress.append(h("p", { class: "notice" }, done(answer)));
    progress.scrollIntoView({ block: "nearest" });
  } catch (error) {
    problem.replaceChildren(errorBox(error));
    problem.scrollIntoView({ block: "nearest" });
  }
}

function customDomain(org, registry, role, progress, problem, draw) {
  const box = h("div", { id: "custom-domain" }, h("h2", {}, "Custom domain"),
    h("p", {}, `${registry.custom_domain}: `,
      h("strong", { id: "custom-domain-status" }, registry.custom_domain_status || "—")));
  if (registry.custom_domain_verification && registry.custom_domain_status !== "verified") {
    const v = registry.custom_domain_verification;
    box.append(h("p", {}, "Publish this TXT record, then verify:"),
      copyable("Verification record (DNS)", `${v.name}. ${v.type} "${v.value}"`, { id: "custom-domain-record" }));
  }
  if (can(role, "create_registry") && registry.custom_domain_status !== "verified") {
    box.append(h("button", { type: "button", id: "verify-domain", onclick: () => change(progress, problem,
      () => api("POST", registryPath(org, registry.name, "/custom-domain/verify")),
      (answer) => `Custom domain ${answer.custom_domain}: ${answer.custom_domain_status}.`, draw) },
    "Verify the custom domain now"));
  }
  return box;
}

function settingsForm(org, registry, skus, progress, problem, draw) {
  const visibility = select([["private", "Private"], ["public", "Public"]], registry.visibility,
    { id: "settings-visibility" });
  const sku = skus ? select(skus.map((s) => [s.name, `${s.title} (${s.name})`]), registry.sku, { id: "settings-sku" }) : null;
  const immutable = h("textarea", { rows: 3, id: "settings-immutable-tags" }, (registry.immutable_tags || []).join("\n"));
  const mode = select([["strict", "strict"], ["index-sparse", "index-sparse"], ["sparse", "sparse"]],
    registry.manifest_policy ? registry.manifest_policy.mode : "strict", { id: "settings-manifest-policy" });
  const platforms = h("input", { id: "settings-required-platforms",
    value: registry.manifest_policy ? registry.manifest_policy.required_platforms.join(", ") : "" });
  const domain = h("input", { id: "settings-custom-domain", value: registry.custom_domain || "", autocomplete: "off" });
  const form = h("form", { id: "registry-settings" }, h("h2", {}, "Settings"),
    field("Visibility", visibility), sku ? field("SKU", sku) : null,
    field("Immutable tags", immutable, "Repositories whose tags never move to another digest: one pattern per line, e.g. release/* or prod-*"),
    field("Manifest policy", mode), field("Required platforms", platforms, "Comma-separated, e.g. linux/amd64, linux/arm64"),
    field("Custom domain", domain, "Leave empty for none"),
    h("button", { type: "submit", class: "primary" }, "Save"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const patterns = immutable.value.split("\n").map((s) => s.trim()).filter(Boolean);
    const required = platforms.value.split(",").map((s) => s.trim()).filter(Boolean);
    const changes = {
      visibility: visibility.value, immutable_tags: patterns,
      manifest_policy: { mode: mode.value, required_platforms: required },
      custom_domain: domain.value.trim() || null,
    };
    if (sku) changes.sku = sku.value;
    const before = { ...registry, custom_domain: registry.custom_domain || null };
    for (const key of Object.keys(changes)) {
      if (JSON.stringify(changes[key]) === JSON.stringify(before[key])) delete changes[key];
    }
    change(progress, problem, () => api("PATCH", registryPath(org, registry.name), changes),
      () => (Object.keys(changes).length ? `Saved: ${Object.keys(changes).join(", ")}.` : "Nothing to change."), draw);
  });
  return form;
}
