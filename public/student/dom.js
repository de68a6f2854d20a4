// A few DOM helpers. Text from the server only ever goes in through textContent
// (h() children and props), never as HTML.

/** h("p", {className: "x", "aria-live": "polite"}, "text", childNode, [more]) */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "className") el.className = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "text") el.textContent = value;
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/** Put text in a live region so screen readers announce it (cleared first so the
 *  same message twice is announced twice). */
export function announce(region, text) {
  region.textContent = "";
  window.setTimeout(() => {
    region.textContent = text;
  }, 50);
}
