import { h, field, table, when, errorBox, replace } from "../dom.js";
import { get, orgPath } from "../api.js";

export async function auditPage(org) {
  const inputs = {
    actor: h("input", { id: "audit-actor", autocomplete: "off" }),
    action: h("input", { id: "audit-action", autocomplete: "off", placeholder: "registry.create" }),
    registry: h("input", { id: "audit-registry", autocomplete: "off" }),
    since: h("input", { id: "audit-since", type: "date" }),
    until: h("input", { id: "audit-until", type: "date" }),
  };
  const results = h("div", { id: "audit-results" });
  let cursor = null;
  const more = h("button", { type: "button", hidden: true }, "Older events");

  function query() {
    const q = new URLSearchParams({ limit: "50" });
    for (const [key, input] of Object.entries(inputs)) {
      if (input.value.trim()) q.set(key, key === "until" ? `${input.value}T23:59:59Z` : input.value.trim());
    }
    if (cursor) q.set("cursor", cursor);
    return q;
  }

  async function load(reset) {
    if (reset) cursor = null;
    try {
      const page = await get(orgPath(org, `/audit?${query()}`));
      const rows = page.events.map((e) => [when(e.time), e.actor, e.action, e.registry || "—",
        [e.repository, e.tag || e.digest].filter(Boolean).join(":") || "—", `${e.outcome} (${e.status})`,
        e.detail ? JSON.stringify(e.detail) : "—"]);
      const shown = table("Audit events, newest first", ["Time", "Actor", "Action", "Registry", "Target", "Outcome", "Detail"], rows);
      if (reset) replace(results, shown);
      else results.append(shown);
      cursor = page.next_cursor;
      more.hidden = !cursor;
    } catch (error) {
      replace(results, errorBox(error));
    }
  }

  more.addEventListener("click", () => load(false));
  const form = h("form", { id: "audit-filters", class: "inline-form" }, h("h2", {}, "Filters"),
    field("Actor", inputs.actor), field("Action", inputs.action), field("Registry", inputs.registry),
    field("Since", inputs.since), field("Until", inputs.until), h("button", { type: "submit" }, "Apply filters"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load(true);
  });
  await load(true);
  return h("section", {}, h("h1", {}, `Audit log of ${org}`), form, results, more);
}
