import { h, field, when, errorBox, replace } from "../dom.js";
import { orgPath } from "../api.js";
import { pagedTable } from "../paging.js";

export async function auditPage(org) {
  const inputs = {
    actor: h("input", { id: "audit-actor", autocomplete: "off" }),
    action: h("input", { id: "audit-action", autocomplete: "off", placeholder: "registry.create" }),
    registry: h("input", { id: "audit-registry", autocomplete: "off" }),
    since: h("input", { id: "audit-since", type: "date" }),
    until: h("input", { id: "audit-until", type: "date" }),
  };
  // The filters as the API's query; `until` is a whole day.
  function filters() {
    const q = {};
    for (const [key, input] of Object.entries(inputs)) {
      if (input.value.trim()) q[key] = key === "until" ? `${input.value}T23:59:59Z` : input.value.trim();
    }
    return q;
  }

  const results = h("div", { id: "audit-results" });
  const list = pagedTable({
    id: "audit-list", caption: "Audit events, newest first", path: orgPath(org, "/audit"), items: "events",
    params: filters, more: "Older events",
    headings: ["Time", "Actor", "Action", "Registry", "Target", "Outcome", "Detail"],
    row: (e) => [when(e.time), e.actor, e.action, e.registry || "—",
      [e.repository, e.tag || e.digest].filter(Boolean).join(":") || "—", `${e.outcome} (${e.status})`,
      e.detail ? JSON.stringify(e.detail) : "—"],
  });

  async function load() {
    try {
      await list.reload();
      replace(results, list.element);
    } catch (error) {
      replace(results, errorBox(error));
    }
  }

  const form = h("form", { id: "audit-filters", class: "inline-form" }, h("h2", {}, "Filters"),
    field("Actor", inputs.actor), field("Action", inputs.action), field("Registry", inputs.registry),
    field("Since", inputs.since), field("Until", inputs.until), h("button", { type: "submit" }, "Apply filters"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  await load();
  return h("section", {}, h("h1", {}, `Audit log of ${org}`), form, results);
}
