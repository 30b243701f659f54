import { h, field, errorBox } from "../dom.js";
import { consoleConfig, keep, startOidc } from "../session.js";
import { get } from "../api.js";

export async function signInPage(rerender) {
  const config = await consoleConfig();
  const page = h("section", { class: "sign-in" }, h("h1", {}, "Sign in to Berth"));
  if (config.oidc) {
    page.append(h("button", { type: "button", id: "sign-in-oidc", class: "primary",
      onclick: () => startOidc(config.oidc) }, "Sign in with your identity provider"));
    page.append(h("p", { class: "or" }, "or use an access token:"));
  }
  const input = h("input", { type: "password", id: "access-token", autocomplete: "off", spellcheck: "false",
    required: true });
  const problem = h("div");
  const form = h("form", { id: "token-form" },
    field("Access token", input, "An access token (berth token create) or an identity-provider JWT. "
      + "It stays in this tab only and is cleared when you sign out."),
    h("button", { type: "submit" }, "Sign in"), problem);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    keep(input.value.trim());
    input.value = "";
    try {
      await get("/orgs");
      rerender();
    } catch (error) {
      problem.replaceChildren(errorBox(error));
    }
  });
  page.append(form);
  return page;
}
