import { h, table, link, when } from "../dom.js";
import { myOrgs } from "../api.js";
import { orgHref } from "../routes.js";

export async function orgsPage() {
  const orgs = await myOrgs(true);
  return h("section", {}, h("h1", {}, "Organizations"),
    table("Your organizations", ["Organization", "Your role", "Created"],
      orgs.map((o) => [link(orgHref(o.name), o.name), o.role, when(o.created_at)])));
}
