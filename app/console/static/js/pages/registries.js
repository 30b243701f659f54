import { h, field, select, table, link, bytes, liveRegion, errorBox, replace } from "../dom.js";
import { api, get, can, roleIn, orgPath, registryPath } from "../api.js";
import { registryHref } from "../routes.js";
import { followInto } from "./operation.js";

export async function registriesPage(org) {
  const role = await roleIn(org);
  const progress = liveRegion({ id: "operation-progress" });
  const list = h("div");
  const page = h("section", {}, h("h1", {}, `Registries of ${org}`));

  async function refresh() {
    const { registries } = await get(orgPath(org, "/registries?limit=200"));
    replace(list, table("Registries", ["Name", "Visibility", "Status", "SKU", "Repositories", "Stored", ""],
      registries.map((r) => [
        link(registryHref(org, r.name), r.name), r.visibility, r.status, r.sku,
        r.usage ? String(r.usage.repositories) : "—", r.usage ? bytes(r.usage.stored_bytes) : "—",
        can(role, "delete_registry") ? deleteControl(org, r.name, progress, refresh) : "",
      ])));
  }

  if (can(role, "create_registry")) page.append(createForm(org, progress, refresh));
  page.append(progress, list);
  await refresh();
  return page;
}

function createForm(org, progress, refresh) {
  const name = h("input", { id: "new-registry-name", required: true, pattern: "[a-z0-9]([a-z0-9-]*[a-z0-9])?",
    autocomplete: "off" });
  const visibility = select([["private", "Private (every call authenticated)"], ["public", "Public (anonymous pulls)"]],
    "private", { id: "new-registry-visibility" });
  const problem = h("div");
  const form = h("form", { class: "inline-form", id: "create-registry" },
    h("h2", {}, "Create a registry"),
    field("Name", name, "Lowercase letters, digits and '-'"), field("Visibility", visibility),
    h("button", { type: "submit", class: "primary" }, "Create"), problem);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.replaceChildren();
    try {
      const created = await api("POST", orgPath(org, "/registries"), { name: name.value, visibility: visibility.value });
      name.value = "";
      await followInto(progress, created.operation);
      await refresh();
    } catch (error) {
      problem.replaceChildren(errorBox(error));
    }
  });
  return form;
}

// Delete asks for the registry's name, typed, before the button works.
function deleteControl(org, name, progress, refresh) {
  const box = h("div", { class: "delete" });
  const open = h("button", { type: "button", class: "danger", "aria-label": `Delete ${name}`,
    onclick: () => {
      const typed = h("input", { autocomplete: "off", "data-confirm-for": name });
      const confirm = h("button", { type: "button", class: "danger", disabled: true }, "Delete for good");
      typed.addEventListener("input", () => { confirm.disabled = typed.value !== name; });
      confirm.addEventListener("click", async () => {
        try {
          const answer = await api("DELETE", registryPath(org, name));
          await followInto(progress, answer.operation);
          await refresh();
        } catch (error) {
          box.append(errorBox(error));
        }
      });
      replace(box, field(`Type ${name} to delete it and everything in it`, typed), confirm,
        h("button", { type: "button", onclick: () => replace(box, open) }, "Cancel"));
      typed.focus();
    } }, "Delete…");
  box.append(open);
  return box;
}
