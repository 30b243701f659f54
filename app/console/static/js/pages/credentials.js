import { h, field, select, copyable, when, errorBox, replace } from "../dom.js";
import { api, can, roleIn, registryPath } from "../api.js";
import { registryTabs } from "./registry.js";

// A Kubernetes object as YAML: plain maps and strings only (what the API's Secret holds).
export function yaml(value, indent = "") {
  return Object.entries(value).map(([key, v]) => {
    if (v !== null && typeof v === "object") return `${indent}${key}:\n${yaml(v, `${indent}  `)}`;
    return `${indent}${key}: ${JSON.stringify(v)}`;
  }).join("\n");
}

export async function credentialsPage(org, registry) {
  const role = await roleIn(org);
  const page = h("section", {}, h("h1", {}, `Credentials for ${registry}`), registryTabs(org, registry));
  if (!can(role, "create_token")) {
    page.append(h("p", {}, "Your role may not create credentials here."));
    return page;
  }
  const push = h("input", { type: "checkbox", id: "credentials-push" });
  const expires = select([["1d", "1 day"], ["7d", "7 days"], ["30d", "30 days"], ["90d", "90 days"]], "30d",
    { id: "credentials-expiry" });
  const secretName = h("input", { id: "credentials-secret-name", value: `${registry}-pull`, autocomplete: "off" });
  const namespace = h("input", { id: "credentials-namespace", autocomplete: "off" });
  const out = h("div", { id: "credentials-result" });
  const form = h("form", { id: "credentials-form" },
    can(role, "push") ? h("div", { class: "field check" }, push, h("label", { for: push.id }, "Allow pushes too")) : null,
    field("Expires in", expires), field("Kubernetes Secret name", secretName),
    field("Kubernetes namespace", namespace, "Optional"),
    h("button", { type: "submit", class: "primary" }, "Create credentials"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { push: push.checked, expires_in: expires.value, k8s_secret_name: secretName.value };
    if (namespace.value.trim()) body.namespace = namespace.value.trim();
    try {
      const issued = await api("POST", registryPath(org, registry, "/credentials"), body);
      replace(out, h("p", { class: "notice" }, "Shown once: copy what you need now."),
        h("dl", { class: "facts" }, h("dt", {}, "Username"), h("dd", { id: "credentials-username" }, issued.username),
          h("dt", {}, "Expires"), h("dd", { id: "credentials-expires" }, when(issued.token.expires_at)),
          h("dt", {}, "Scope"), h("dd", {}, issued.token.scope || issued.token.role)),
        copyable("Password", issued.password, { id: "credentials-password" }),
        copyable("docker login", `${issued.docker_login}\n# then paste the password`),
        copyable("dockerconfigjson", JSON.stringify(issued.dockerconfigjson, null, 2)),
        copyable("Kubernetes Secret", yaml(issued.kubernetes_secret), { id: "credentials-secret" }));
    } catch (error) {
      replace(out, errorBox(error));
    }
  });
  page.append(form, out);
  return page;
}
