// Building DOM from data without innerHTML: every value from the API is text, never
// markup (booking codes, names and HubSpot's messages are not ours to trust).

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "text") element.textContent = value;
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

function append(parent, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(target, ...children) {
  const element = typeof target === "string" ? document.getElementById(target) : target;
  element.replaceChildren();
  append(element, children);
  return element;
}

export function byId(id) {
  return document.getElementById(id);
}

export function empty(message, className = "empty") {
  return h("p", { class: className }, message);
}

// A table from column definitions: [{label, value: (row) => node|text, numeric?, nowrap?}].
export function table(columns, rows, { caption, rowAttributes } = {}) {
  return h(
    "table",
    { class: "data" },
    caption ? h("caption", { class: "visually-hidden" }, caption) : null,
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        columns.map((c) => h("th", { scope: "col", class: c.numeric ? "numeric" : null }, c.label)),
      ),
    ),
    h(
      "tbody",
      {},
      rows.map((row) =>
        h(
          "tr",
          rowAttributes ? rowAttributes(row) : {},
          columns.map((c) =>
            h("td", { class: [c.numeric ? "numeric" : "", c.nowrap ? "nowrap" : ""].join(" ").trim() || null }, c.value(row)),
          ),
        ),
      ),
    ),
  );
}

const SVG = "http://www.w3.org/2000/svg";

export function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined) continue;
    if (name === "text") element.textContent = value;
    else element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}
