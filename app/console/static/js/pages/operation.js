// An operation's progress, drawn as it changes: state, each step, the error if it failed.

import { h, replace } from "../dom.js";
import { follow } from "../api.js";

export function operationView(region, operation) {
  replace(region, h("div", { class: `operation ${operation.state}` },
    h("p", {}, `${operation.kind} of ${operation.registry}: `, h("strong", { class: "op-state" }, operation.state)),
    h("ol", { class: "steps" }, (operation.steps || []).map((s) =>
      h("li", { class: s.state }, `${s.name}: ${s.state}`))),
    operation.error ? h("p", { class: "error" }, operation.error) : null));
}

export function followInto(region, operation) {
  return follow(operation, (op) => operationView(region, op));
}
