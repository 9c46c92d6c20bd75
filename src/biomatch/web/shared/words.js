// Numbers said in plain words, for people who are not biometrics experts.

export function oneIn(fmr) {
  if (!(fmr > 0)) return null;
  const n = 1 / fmr;
  const digits = Math.max(0, Math.floor(Math.log10(n)) - 1);
  const step = 10 ** digits;
  return Math.max(1, Math.round(n / step) * step);
}

// "about 1 in 10,000 unrelated people would score this high"
export function fmrInWords(fmr, isUpperBound = false) {
  const n = oneIn(fmr);
  if (n === null) return "no estimate of how often unrelated people score this high";
  const count = n.toLocaleString("en-GB");
  if (isUpperBound) {
    return `fewer than 1 in ${count} unrelated people would score this high`;
  }
  if (n <= 1) return "most unrelated people would score this high";
  return `about 1 in ${count} unrelated people would score this high`;
}

// ", the best of its 3 templates" where one probe item was compared with several of the
// subject's templates (its false match rate counts each of them as a chance).
export function bestOfInWords(contributions) {
  const items = contributions || [];
  const count = items.length === 1 ? items[0].comparisons : 0;
  return count > 1 ? `, the best of its ${count} templates` : "";
}

// ANSI/NIST-ITL finger position codes.
const FINGERS = ["Right thumb", "Right index", "Right middle", "Right ring", "Right little",
  "Left thumb", "Left index", "Left middle", "Left ring", "Left little"];

export function fingerName(position) {
  return FINGERS[position - 1] || `Finger ${position}`;
}

export function humanise(name) {
  const text = String(name).replaceAll("_", " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function when(iso) {
  const moment = new Date(iso);
  return Number.isNaN(moment.getTime()) ? String(iso) : moment.toLocaleString("en-GB");
}

// Show exactly one of the screens (sections marked data-screen) and move focus to its heading.
export function showScreen(id) {
  for (const screen of document.querySelectorAll("[data-screen]")) {
    screen.hidden = screen.id !== id;
  }
  const heading = document.querySelector(`#${id} h2`);
  if (heading) {
    heading.tabIndex = -1;
    heading.focus();
  }
}

export function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}
