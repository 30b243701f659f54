// A list fetched a page at a time with the API's cursor pagination (?limit=&cursor=, the body's
// next_cursor): the first page is shown, and a "More" button appends the next one to the same
// table, so no list is cut off at a fixed size.

import { h, table, tableRow, errorBox, replace } from "./dom.js";
import { get } from "./api.js";
import { pageSize } from "./routes.js";

// path: the API list (no query); items: the body's field holding the list; row(item): its cells;
// params(): the list's own query (filters), read at each (re)load.
export function pagedTable({ caption, headings, path, items, row, params = () => ({}), more = "More", id }) {
  const region = h("div", { class: "paged" });
  const status = h("p", { class: "page-status", role: "status" });
  const button = h("button", { type: "button", class: "more", hidden: true, "aria-label": `${more}: ${caption}` }, more);
  const problem = h("div");
  const element = h("div", { id }, region, status, button, problem);
  let cursor = null;
  let query = {};
  let shown = 0;

  async function fetchPage() {
    const q = new URLSearchParams({ ...query, limit: String(pageSize()) });
    if (cursor) q.set("cursor", cursor);
    return get(`${path}?${q}`);
  }

  function show(page, first) {
    const list = page[items];
    if (first) replace(region, table(caption, headings, list.map(row)));
    else region.querySelector("tbody").append(...list.map((item) => tableRow(row(item))));
    shown = first ? list.length : shown + list.length;
    cursor = page.next_cursor;
    button.hidden = !cursor;
    status.textContent = cursor ? `${shown} shown; more to load.` : `${shown} shown.`;
  }

  // The first page again (after a change, or with new filters); its errors are the caller's.
  async function reload() {
    cursor = null;
    query = params();
    problem.replaceChildren();
    show(await fetchPage(), true);
  }

  button.addEventListener("click", async () => {
    button.disabled = true;
    problem.replaceChildren();
    try {
      show(await fetchPage(), false);
    } catch (error) {
      problem.replaceChildren(errorBox(error));
    } finally {
      button.disabled = false;
    }
  });
  return { element, reload };
}
