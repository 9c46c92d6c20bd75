// Where the service found each fingertip of a four-finger photo, drawn over the photo: a box
// labelled with its finger, green where it was used, red dashed where it was left out. The
// SVG is in the photo's own pixels and crops as the photo does (object-fit: cover).

import { fingerName } from "/shared/words.js";

const SVG = "http://www.w3.org/2000/svg";

function svgElement(tag, attributes, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

// parts: [{position, region: [left, top, right, bottom], passed}]; width, height: the photo's.
export function drawFingertips(svg, parts, width, height) {
  svg.replaceChildren();
  const shown = Boolean(parts && parts.length && width && height);
  svg.toggleAttribute("hidden", !shown); // an SVG element has no .hidden property
  if (!shown) return;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("preserveAspectRatio", "xMidYMid slice");
  const size = Math.round(Math.max(width, height) / 28);
  for (const part of parts) {
    if (!part.region) continue;
    const [left, top, right, bottom] = part.region;
    svg.append(svgElement("g", { class: part.passed ? "ok" : "bad", "data-position": part.position },
      svgElement("rect", { x: left, y: top, width: right - left, height: bottom - top }),
      svgElement("text", { x: left + size / 3, y: top + size * 1.1, "font-size": size },
        fingerName(part.position).split(" ").pop())));
  }
}

// The photo in a frame with its fingertips drawn over it once it has loaded (its own size).
export function photoWithFingertips(img, parts) {
  const svg = svgElement("svg", { class: "boxes", "aria-hidden": "true", hidden: "" });
  const frame = document.createElement("div");
  frame.className = "photo-frame";
  frame.append(img, svg);
  const draw = () => drawFingertips(svg, parts, img.naturalWidth, img.naturalHeight);
  if (img.complete && img.naturalWidth) draw();
  else img.addEventListener("load", draw, { once: true });
  return frame;
}
