// Members of an organization and its access tokens.

import { h, field, select, table, when, copyable, errorBox, replace } from "../dom.js";
import { api, get, can, roleIn, orgPath } from "../api.js";

const ROLES = [["reader", "reader"], ["developer", "developer"], ["admin", "admin"], ["owner", "owner"]];

export async function membersPage(org) {
  const role = await roleIn(org);
  const manage = can(role, "manage_members");
  const page = h("section", {}, h("h1", {}, `Members of ${org}`));
  const list = h("div");
  const problem = h("div");

  async function refresh() {
    const { members } = await get(orgPath(org, "/members?limit=500"));
    replace(list, table("Members", ["Subject", "Role", "Added", ...(manage ? [""] : [])], members.map((m) => {
      const cells = [m.subject, m.role, `${when(m.created_at)} by ${m.created_by || "—"}`];
      if (manage) {
        cells.push(h("button", { type: "button", class: "danger", "aria-label": `Remove ${m.subject}`, onclick: async () => {
          try {
            await api("DELETE", orgPath(org, `/members/${encodeURIComponent(m.subject)}`));
            await refresh();
          } catch (error) {
            problem.replaceChildren(errorBox(error));
          }
        } }, "Remove"));
      }
      return cells;
    })));
  }

  if (manage) {
    const subject = h("input", { id: "member-subject", required: true, autocomplete: "off" });
    const memberRole = select(ROLES, "reader", { id: "member-role" });
    const form = h("form", { id: "member-form", class: "inline-form" }, h("h2", {}, "Add or change a member"),
      field("Subject", subject, "The identity provider's subject (sub)"), field("Role", memberRole),
      h("button", { type: "submit", class: "primary" }, "Save member"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      problem.replaceChildren();
      try {
        await api("PUT", orgPath(org, `/members/${encodeURIComponent(subject.value.trim())}`), { role: memberRole.value });
        subject.value = "";
        await refresh();
      } catch (error) {
        problem.replaceChildren(errorBox(error));
      }
    });
    page.append(form);
  }
  page.append(problem, list);
  await refresh();
  return page;
}

export async function tokensPage(org) {
  const role = await roleIn(org);
  const page = h("section", {}, h("h1", {}, `Access tokens of ${org}`));
  if (!can(role, "create_token")) return page;
  const list = h("div");
  const problem = h("div");
  const secret = h("div", { id: "token-secret" });

  async function refresh() {
    const { tokens } = await get(orgPath(org, "/tokens?limit=500"));
    replace(list, table("Access tokens", ["Name", "Scope", "Registry", "Created", "Expires", "Last used", ""],
      tokens.map((t) => [t.name, t.scope || t.role, t.registry || "all", when(t.created_at), when(t.expires_at),
        when(t.last_used_at), t.revoked_at ? `revoked ${when(t.revoked_at)}`
          : h("button", { type: "button", class: "danger", "aria-label": `Revoke ${t.name}`, onclick: async () => {
            try {
              await api("DELETE", orgPath(org, `/tokens/${t.id}`));
              await refresh();
            } catch (error) {
              problem.replaceChildren(errorBox(error));
            }
          } }, "Revoke")])));
  }

  const name = h("input", { id: "token-name", required: true, autocomplete: "off" });
  const scope = select([["pull", "pull"], ...(can(role, "push") ? [["push", "push"]] : [])], "pull", { id: "token-scope" });
  const registry = h("input", { id: "token-registry", autocomplete: "off" });
  const expires = select([["7d", "7 days"], ["30d", "30 days"], ["90d", "90 days"], ["365d", "1 year"]], "30d",
    { id: "token-expiry" });
  const form = h("form", { id: "token-form-create", class: "inline-form" }, h("h2", {}, "Create an access token"),
    field("Name", name), field("Scope", scope), field("Registry", registry, "Optional: limit the token to one registry"),
    field("Expires in", expires), h("button", { type: "submit", class: "primary" }, "Create token"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.replaceChildren();
    const body = { name: name.value, scope: scope.value, expires_in: expires.value };
    if (registry.value.trim()) body.registry = registry.value.trim();
    try {
      const created = await api("POST", orgPath(org, "/tokens"), body);
      replace(secret, h("p", { class: "notice" }, "Shown once: copy it now."), copyable(`Token ${created.name}`, created.token));
      name.value = "";
      await refresh();
    } catch (error) {
      problem.replaceChildren(errorBox(error));
    }
  });
  page.append(form, secret, problem, list);
  await refresh();
  return page;
}
