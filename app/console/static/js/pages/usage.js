import { h, field, select, table, bytes } from "../dom.js";
import { get, registryPath } from "../api.js";
import { dailyChart, everyDay } from "../chart.js";
import { registryTabs } from "./registry.js";

const GiB = 1024 ** 3;

function price(sku, used) {
  if (sku.price_per_gib === null || sku.price_per_gib === undefined) return "free";
  const billable = Math.max(0, used - sku.included_bytes) / GiB;
  return `${(billable * sku.price_per_gib).toFixed(2)} ${sku.currency} a month at ${sku.price_per_gib} ${sku.currency}/GiB `
    + `past the ${bytes(sku.included_bytes)} included`;
}

export async function usagePage(org, registry, windowDays = 14) {
  const since = new Date(Date.now() - (windowDays - 1) * 86400000).toISOString().slice(0, 10);
  const [usage, catalog] = await Promise.all([get(registryPath(org, registry, `/usage?since=${since}`)), get("/skus")]);
  const sku = catalog.skus.find((s) => s.name === usage.quota.sku);
  const range = select([["7", "7 days"], ["14", "14 days"], ["30", "30 days"], ["90", "90 days"]], String(windowDays),
    { id: "usage-window" });
  const page = h("section", {}, h("h1", {}, `Usage of ${registry}`), registryTabs(org, registry));
  range.addEventListener("change", async () => page.replaceWith(await usagePage(org, registry, Number(range.value))));
  page.append(
    h("dl", { class: "facts" },
      h("dt", {}, "Stored"), h("dd", { id: "usage-stored" }, bytes(usage.storage.stored_bytes)),
      h("dt", {}, "Quota"), h("dd", {}, usage.quota.limit_bytes === null ? "no limit"
        : `${bytes(usage.quota.used_bytes)} of ${bytes(usage.quota.limit_bytes)} (${bytes(usage.quota.remaining_bytes)} left)`),
      h("dt", {}, "SKU"), h("dd", {}, sku ? `${sku.title} (${sku.name})` : usage.quota.sku),
      h("dt", {}, "Price"), h("dd", { id: "usage-price" }, sku ? price(sku, usage.storage.stored_bytes) : "—"),
      h("dt", {}, "Traffic"), h("dd", {}, `${usage.traffic.pulls} pulls (${bytes(usage.traffic.pull_bytes)}), `
        + `${usage.traffic.pushes} pushes (${bytes(usage.traffic.push_bytes)})`)),
    h("h2", {}, "Pulls and pushes per day"), field("Window", range),
    dailyChart(everyDay(usage.since, usage.until, usage.days), [["pulls", "Pulls", "pulls"], ["pushes", "Pushes", "pushes"]]),
    h("h2", {}, "Stored bytes per repository"),
    table("Repositories", ["Repository", "Stored", "Blobs", "Tags", "Manifests"],
      usage.repositories.map((r) => [r.name, bytes(r.stored_bytes), String(r.blobs), String(r.tags), String(r.manifests)])),
    h("h2", {}, "SKU catalog"),
    table("Storage SKUs", ["SKU", "Included", "Hard limit", "Price per GiB"],
      catalog.skus.map((s) => [`${s.title} (${s.name})${s.name === usage.quota.sku ? " · current" : ""}`,
        bytes(s.included_bytes), s.hard_limit_bytes === null ? "none" : bytes(s.hard_limit_bytes),
        s.price_per_gib === null ? "free" : `${s.price_per_gib} ${s.currency}`])));
  return page;
}
