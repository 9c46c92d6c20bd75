// The field capture app: sign in, choose the search, capture with the quality loop, search,
// show the answer; captures taken offline wait in an encrypted queue.

import { api, ApiError, forgetToken, imageUrl, isNetworkFailure, savedToken, saveToken } from "/shared/api.js";
import { bestOfInWords, element, fingerName, fmrInWords, humanise, showScreen, when } from "/shared/words.js";
import { drawFingertips } from "/shared/boxes.js";
import { closeCamera, grabFrame, openCamera, setTorch, torchSupported } from "./camera.js";
import * as offline from "./queue.js";

const $ = (id) => document.getElementById(id);
const state = { capabilities: null, search: null, stream: null, still: null, torch: false, draining: false };

// Short headlines for the face plug-in's named checks; the server's message follows.
const HEADLINES = {
  face_count: "No single face",
  inter_eye_distance_px: "Move closer",
  sharpness: "Blurred",
  brightness_min: "Too dark",
  brightness_max: "Too bright",
  clipped_fraction: "Uneven light",
  yaw_deg: "Face turned",
  pitch_deg: "Head tilted",
  parts_passed: "Too few usable fingertips",
};

// -- sign in --------------------------------------------------------------------------------

async function signIn(event) {
  event.preventDefault();
  const token = $("token").value.trim();
  $("signin-error").textContent = "";
  if (!token) {
    $("signin-error").textContent = "Enter your operator token.";
    return;
  }
  try {
    await loadCapabilities(token);
    saveToken(token);
    $("token").value = "";
    showSetup();
  } catch (error) {
    $("signin-error").textContent = isNetworkFailure(error)
      ? "The service cannot be reached: check the network and try again."
      : error.message;
  }
}

async function loadCapabilities(token) {
  const capabilities = await api("/capabilities", { token });
  if (!capabilities.may.includes("search")) {
    throw new ApiError(403, "forbidden", `This app is for field operators; you are signed in as ${humanise(capabilities.role).toLowerCase()}.`);
  }
  state.capabilities = capabilities;
  sessionStorage.setItem("biomatch.capabilities", JSON.stringify(capabilities));
  $("sign-out").hidden = false;
}

function signOut() {
  forgetToken();
  sessionStorage.removeItem("biomatch.capabilities");
  stopCamera();
  state.capabilities = null;
  $("sign-out").hidden = true;
  $("training-banner").hidden = true;
  showScreen("signin");
}

// -- the search: gallery, mode, purpose, authority, case reference ---------------------------

function showSetup() {
  stopCamera();
  fillSetup();
  showScreen("setup");
}

function fillSetup() {
  const caps = state.capabilities;
  const training = $("training").checked;
  $("training-banner").hidden = !training;
  const galleries = caps.galleries.filter((g) => g.training === training);
  const gallery = $("gallery");
  const previous = gallery.value;
  gallery.replaceChildren(
    ...galleries.map((g) => element("option", { value: g.name, text: g.description ? `${g.name}: ${g.description}` : g.name })),
  );
  if (!galleries.length) {
    gallery.append(element("option", { value: "", text: training ? "No training gallery is open to you" : "No gallery is open to you" }));
  }
  if (galleries.some((g) => g.name === previous)) gallery.value = previous;
  fillChoice($("purpose"), caps.purposes);
  const authorities = caps.legal_authorities;
  $("authority").hidden = !authorities.length;
  $("authority-text").hidden = Boolean(authorities.length);
  $("authority").required = Boolean(authorities.length);
  $("authority-text").required = !authorities.length;
  $("authority-label").htmlFor = authorities.length ? "authority" : "authority-text";
  if (authorities.length) fillChoice($("authority"), authorities, false);
  const finger = contactlessFinger();
  $("modality-group").hidden = !finger;
  if (!finger) document.querySelector('input[name="modality"][value="face"]').checked = true;
  showHandChoice();
  applyPolicy();
}

function chosenModality() {
  return document.querySelector('input[name="modality"]:checked').value;
}

function showHandChoice() {
  $("hand-group").hidden = chosenModality() !== "finger-hand";
}

function fillChoice(select, values, humanised = true) {
  const previous = select.value;
  select.replaceChildren(element("option", { value: "", text: "Choose…" }));
  for (const value of values) select.append(element("option", { value, text: humanised ? humanise(value) : value }));
  if (values.includes(previous)) select.value = previous;
}

function contactlessFinger() {
  return state.capabilities.plugins.find((p) => p.modality === "finger" && p.capture_kind === "contactless") || null;
}

function chosenGallery() {
  return state.capabilities.galleries.find((g) => g.name === $("gallery").value) || null;
}

function applyPolicy() {
  const gallery = chosenGallery();
  const modes = gallery ? gallery.modes : [];
  for (const mode of ["verify", "identify"]) {
    const radio = $(`mode-${mode}`);
    radio.disabled = !modes.includes(mode);
    radio.closest("label").hidden = !modes.includes(mode);
    if (radio.disabled) radio.checked = false;
  }
  if (!document.querySelector('input[name="mode"]:checked') && modes.length) $(`mode-${modes[0]}`).checked = true;
  const mode = selectedMode();
  $("subject-field").hidden = mode !== "verify";
  $("subject").required = mode === "verify";
  const caseRequired = Boolean(gallery && gallery.case_reference_required);
  $("case-ref").required = caseRequired;
  $("case-required").textContent = caseRequired ? "(required by this gallery's policy)" : "(optional)";
  $("policy").textContent = gallery ? policyWords(gallery) : "";
}

function policyWords(gallery) {
  const allowed = gallery.modes.map((m) => (m === "verify" ? "1:1 verification" : "1:N identification")).join(" and ");
  const parts = [`This gallery's policy allows ${allowed}.`];
  parts.push(gallery.case_reference_required ? "Every search needs a case reference." : "A case reference is optional.");
  if (gallery.modes.includes("identify")) {
    const n = gallery.confirmations_required;
    parts.push(`A 1:N lead needs ${n} reviewer confirmation${n > 1 ? "s" : ""}.`);
  }
  if (gallery.training) parts.push("Practice only: searches are audited and flagged training.");
  return parts.join(" ");
}

function selectedMode() {
  const checked = document.querySelector('input[name="mode"]:checked');
  return checked ? checked.value : null;
}

function readSearch() {
  const gallery = chosenGallery();
  const authorities = state.capabilities.legal_authorities;
  const search = {
    gallery: gallery ? gallery.name : "",
    training: $("training").checked,
    mode: selectedMode(),
    subject: $("subject").value.trim(),
    purpose: $("purpose").value,
    authority: (authorities.length ? $("authority").value : $("authority-text").value).trim(),
    caseRef: $("case-ref").value.trim(),
    modality: chosenModality(),
    hand: document.querySelector('input[name="hand"]:checked')?.value || null,
  };
  if (search.modality !== "finger-hand") search.hand = null;
  const missing = [];
  if (!gallery) missing.push("a gallery");
  if (!search.mode) missing.push("verify or identify");
  if (search.modality === "finger-hand" && !search.hand) missing.push("which hand");
  if (search.mode === "verify" && !search.subject) missing.push("the claimed identity");
  if (!search.purpose) missing.push("the purpose");
  if (search.authority.length < 3) missing.push("the legal authority");
  if (gallery && gallery.case_reference_required && !search.caseRef) missing.push("the case reference");
  return { search, missing };
}

async function startCapture(event) {
  event.preventDefault();
  const { search, missing } = readSearch();
  if (missing.length) {
    $("setup-error").textContent = `Before searching, give ${missing.join(", ")}.`;
    return;
  }
  $("setup-error").textContent = "";
  state.search = search;
  await showCapture();
}

// -- capture and the quality loop -----------------------------------------------------------

async function showCapture() {
  const search = state.search;
  const finger = search.modality !== "face";
  const tip = search.modality === "finger-tip";
  $("capture-title").textContent = finger ? "Finger capture" : "Face capture";
  $("capture-instructions").textContent = !finger
    ? "Hold the phone at arm's length with the face inside the oval, in even light."
    : `Hold ${tip ? "one fingertip" : `the four fingers of the ${search.hand} hand, pads to the camera, together and flat,`} inside the outline, 10 to 15 cm from the rear camera.`;
  $("guide").className = `guide ${finger ? (tip ? "tip" : "hand") : "face"}`;
  $("capture-summary").textContent = `${search.mode === "verify" ? `Verify ${search.subject}` : "Identify"} in ${search.gallery} · ${humanise(search.purpose)}${search.training ? " · training" : ""}`;
  $("search").textContent = search.mode === "verify" ? "Verify identity" : "Search gallery";
  resetShot();
  showScreen("capture");
  try {
    state.stream = await openCamera($("preview"), finger ? "environment" : "user");
    $("torch").hidden = !(finger && torchSupported(state.stream));
    if (finger && !$("torch").hidden) await toggleTorch(true);
  } catch (error) {
    showVerdict([element("p", { class: "error", text: `The camera could not start: ${error.message}. Allow camera access for this site.` })]);
  }
}

function resetShot() {
  state.still = null;
  $("still").hidden = true;
  drawVerdictFingertips(null);
  $("preview").hidden = false;
  $("shoot").hidden = false;
  $("shoot").disabled = false;
  $("retake").hidden = true;
  $("search").hidden = true;
  $("verdict").hidden = true;
}

async function toggleTorch(on = !state.torch) {
  try {
    await setTorch(state.stream, on);
    state.torch = on;
    $("torch").setAttribute("aria-pressed", String(on));
    $("torch").textContent = on ? "Torch off" : "Torch on";
  } catch {
    $("torch").hidden = true;
  }
}

function stopCamera() {
  closeCamera(state.stream);
  state.stream = null;
  $("preview").srcObject = null;
}

function showVerdict(children) {
  $("verdict").replaceChildren(...children);
  $("verdict").hidden = false;
}

async function shoot() {
  $("shoot").disabled = true;
  const frame = await grabFrame($("preview"));
  state.still = frame;
  $("still").src = URL.createObjectURL(frame);
  $("still").hidden = false;
  $("preview").hidden = true;
  $("shoot").hidden = true;
  $("retake").hidden = false;
  if (!navigator.onLine) {
    await queueCapture(frame);
    return;
  }
  showVerdict([element("p", { text: "Checking the capture…" })]);
  try {
    const form = new FormData();
    form.append("image", frame, "capture.jpg");
    appendCapture(form, { ...state.search, plugin: pluginName() });
    const verdict = await api("/quality-check", { method: "POST", form });
    showQuality(verdict);
  } catch (error) {
    if (isNetworkFailure(error)) await queueCapture(frame);
    else refused(error);
  }
}

// The service's refusal, in its words; a token that stopped working leads back to sign-in.
function refused(error) {
  if (error.status === 401) {
    signOut();
    $("signin-error").textContent = `${error.message} Sign in again.`;
    return;
  }
  showVerdict([element("p", { class: "error", text: error.message })]);
}

function pluginName() {
  return state.search.modality === "face" ? "face" : contactlessFinger().plugin;
}

// The plug-in, and for a four-finger photo its layout and hand: what the service splits by.
function appendCapture(form, search) {
  form.append("modality", search.plugin);
  if (search.modality === "finger-hand") {
    form.append("layout", "four_finger");
    form.append("hand", search.hand);
  }
}

function reasonItem(reason) {
  const headline = HEADLINES[reason.name];
  return element("li", {}, headline ? element("strong", { text: `${headline}. ` }) : null, reason.message);
}

// A four-finger photo's fingertips, each usable or left out with what to do about it.
function partsList(parts) {
  if (!parts.length) return [];
  const items = parts.map((part) => {
    const name = fingerName(part.position);
    if (part.passed) return element("li", { class: "ok" }, element("strong", { text: `${name}: ` }), "usable.");
    return element("li", {}, element("strong", { text: `${name}: ` }), `not usable. ${part.reasons.map((r) => r.message).join(" ")}`);
  });
  return [element("ul", { id: "fingertips", "aria-label": "Fingertips" }, ...items)];
}

function drawVerdictFingertips(verdict) {
  drawFingertips($("fingertip-boxes"), verdict ? verdict.parts : [], verdict?.width, verdict?.height);
}

function showQuality(verdict) {
  const parts = verdict.parts || [];
  drawVerdictFingertips(verdict);
  if (verdict.passed) {
    const usable = parts.filter((part) => part.passed).length;
    const text = parts.length && usable < parts.length
      ? `Good capture: ${usable} of ${parts.length} fingertips usable, ready to search (retake for all ${parts.length}).`
      : "Good capture: ready to search.";
    showVerdict([element("p", { class: "ok", text }), ...partsList(parts)]);
    $("search").hidden = false;
    $("search").focus();
    return;
  }
  // With the fingertips listed, the summary reason says the rest; each fingertip says why.
  const reasons = parts.length ? verdict.reasons.filter((r) => r.name === "parts_passed") : verdict.reasons;
  showVerdict([
    element("p", { class: "error", text: "Please retake the photo:" }),
    element("ul", { id: "reasons" }, ...reasons.map(reasonItem)),
    ...partsList(parts),
  ]);
  $("retake").focus();
}

function searchForm(search, image) {
  const form = new FormData();
  form.append("image", image, "capture.jpg");
  appendCapture(form, search);
  form.append("purpose", search.purpose);
  form.append("legal_authority", search.authority);
  if (search.caseRef) form.append("case_reference", search.caseRef);
  if (search.training) form.append("training", "true");
  if (search.mode === "verify") form.append("subject_id", search.subject);
  return form;
}

async function searchNow() {
  $("search").disabled = true;
  const search = { ...state.search, plugin: pluginName() };
  try {
    const result = await api(`/galleries/${encodeURIComponent(search.gallery)}/${search.mode}`, {
      method: "POST",
      form: searchForm(search, state.still),
    });
    stopCamera();
    await showResult(search, result);
  } catch (error) {
    if (isNetworkFailure(error)) await queueCapture(state.still);
    else refused(error);
  } finally {
    $("search").disabled = false;
  }
}

// -- results --------------------------------------------------------------------------------

async function showResult(search, result) {
  $("result-body").replaceChildren(...(await resultNodes(search, result)));
  showScreen("result");
}

// Fingertips of a four-finger photo that the service left out for failing its gate.
function leftOutNote(result) {
  const left = (result.probe_quality || []).filter((q) => !q.passed);
  if (!left.length) return [];
  const names = left.map((q) => fingerName(q.position).toLowerCase());
  return [element("p", { class: "hint", id: "left-out", text: `Searched without the ${names.join(", ")} fingertip${left.length > 1 ? "s" : ""}: not usable in this photo.` })];
}

async function resultNodes(search, result) {
  const training = [
    ...(search.training ? [element("p", { class: "badge training", text: "Training search" })] : []),
    ...leftOutNote(result),
  ];
  if (search.mode === "verify") {
    const matched = result.decision === "match";
    return [
      ...training,
      element("p", { class: `outcome ${matched ? "good" : "bad"}`, text: matched ? "Verified" : "Not verified" }),
      element("p", { text: `${matched ? "The capture matches" : "The capture does not match"} ${result.subject_id}: ${fmrInWords(result.estimated_fmr, result.fmr_is_upper_bound)}.` }),
      facts([
        ["Score", result.score === null ? "fused" : `${result.score.toFixed(3)}${bestOfInWords(result.contributions)}`],
        ["Decision rule", `verified where fewer than 1 in ${Math.round(1 / result.target_fmr).toLocaleString("en-GB")} unrelated people would score as high`],
        ["Encounter", result.encounter_id],
      ]),
    ];
  }
  const gallery = state.capabilities.galleries.find((g) => g.name === search.gallery);
  const banner = element("p", { class: "banner", role: "note", id: "leads-banner" },
    element("strong", { text: "Leads, not identifications. " }),
    "Each candidate is an investigative lead that a trained reviewer must examine; never act on it as an identification.");
  const items = [];
  for (const candidate of result.candidates) items.push(await candidateNode(result, candidate, gallery));
  const list = items.length
    ? element("ol", { class: "candidates", "aria-label": "Candidates, best first" }, ...items)
    : element("p", { text: "No candidates: nobody in the gallery could be compared with the capture." });
  return [
    ...training,
    banner,
    element("p", { text: `${result.candidates.length} candidate(s) from a gallery of ${result.gallery_size}. Encounter ${result.encounter_id}.` }),
    list,
  ];
}

async function candidateNode(result, candidate, gallery) {
  let photo = null;
  if (gallery && gallery.keeps_reference_images) {
    try {
      const url = await imageUrl(`/encounters/${result.encounter_id}/candidates/${encodeURIComponent(candidate.subject_id)}/reference-image`);
      photo = element("img", { class: "photo", src: url, alt: `Enrolled reference photo of ${candidate.subject_id}` });
    } catch {
      photo = element("p", { class: "hint", text: "No reference photo kept." });
    }
  }
  return element("li", { class: "candidate" },
    element("h3", { text: `${candidate.rank}. ${candidate.subject_id}` }),
    candidate.strong ? element("p", { class: "badge good", text: "Strong lead" }) : element("p", { class: "badge", text: "Weak lead" }),
    photo,
    facts([
      ["Score", candidate.score === null ? "fused" : `${candidate.score.toFixed(3)}${bestOfInWords(candidate.contributions)}`],
      ["False match rate", fmrInWords(candidate.estimated_fmr, candidate.fmr_is_upper_bound)],
    ]));
}

function facts(rows) {
  return element("dl", { class: "facts" }, ...rows.flatMap(([term, value]) => [element("dt", { text: term }), element("dd", { text: value })]));
}

// -- the offline queue ----------------------------------------------------------------------

async function queueCapture(image) {
  const search = { ...state.search, plugin: pluginName() };
  await offline.enqueue(
    { gallery: search.gallery, mode: search.mode, purpose: search.purpose, training: search.training },
    search,
    image,
  );
  showVerdict([element("p", { text: "You are offline: the capture is queued on this device, encrypted, and will be checked and searched when the network returns." })]);
  await renderQueue();
}

async function renderQueue() {
  const items = await offline.queued();
  $("queue").hidden = !items.length && !$("sent").childElementCount;
  $("queue-title").textContent = `Waiting to send (${items.length})`;
  $("queue-list").replaceChildren(
    ...items.map((item) => {
      const label = `${item.summary.mode === "verify" ? "Verify" : "Identify"} in ${item.summary.gallery}, queued ${when(item.queuedAt)}`;
      const button = element("button", { type: "button", class: "danger", "aria-label": `Discard: ${label}`, text: "Discard" });
      button.addEventListener("click", () => discardItem(item));
      return element("li", {}, `${label} `, button);
    }),
  );
}

async function discardItem(item) {
  await offline.discard(item, "discarded by the operator");
  await renderQueue();
  if (navigator.onLine) await drain();
}

async function drain() {
  if (state.draining || !navigator.onLine || !savedToken()) return;
  state.draining = true;
  try {
    const discards = await offline.pendingDiscards();
    if (discards.length) {
      await api("/offline-discards", { method: "POST", json: { discards: discards.map(({ id, ...rest }) => rest) } });
      await offline.clearDiscards(discards.map((d) => d.id));
    }
    for (const item of await offline.queued()) {
      if (!(await sendQueued(item))) break;
    }
  } catch {
    // still offline, or the service is unreachable: try again on the next reconnect
  } finally {
    state.draining = false;
    await renderQueue();
  }
}

async function sendQueued(item) {
  const { fields, image } = await offline.open(item);
  const label = `${fields.mode === "verify" ? `Verify ${fields.subject}` : "Identify"} in ${fields.gallery} (queued ${when(item.queuedAt)})`;
  let outcome;
  try {
    const result = await api(`/galleries/${encodeURIComponent(fields.gallery)}/${fields.mode}`, { method: "POST", form: searchForm(fields, image) });
    outcome = fields.mode === "verify"
      ? `${result.decision === "match" ? "verified" : "not verified"}`
      : `${result.candidates.length} lead(s), top: ${result.candidates.length ? result.candidates[0].subject_id : "none"}; leads need review`;
  } catch (error) {
    if (isNetworkFailure(error) || error.status === 401 || error.status === 429) return false;
    outcome = `refused: ${error.message}`;
  }
  await offline.remove(item.id);
  $("sent").append(element("p", { class: "sent-item", text: `Sent: ${label}: ${outcome}.` }));
  return true;
}

function showConnection() {
  $("connection").textContent = navigator.onLine ? "Online" : "Offline: captures are queued";
}

// -- wiring ---------------------------------------------------------------------------------

function wire() {
  $("signin-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  $("setup-form").addEventListener("submit", startCapture);
  $("setup-form").addEventListener("input", () => ($("setup-error").textContent = ""));
  $("training").addEventListener("change", fillSetup);
  $("gallery").addEventListener("change", applyPolicy);
  for (const radio of document.querySelectorAll('input[name="mode"]')) radio.addEventListener("change", applyPolicy);
  for (const radio of document.querySelectorAll('input[name="modality"]')) radio.addEventListener("change", showHandChoice);
  $("shoot").addEventListener("click", shoot);
  $("retake").addEventListener("click", () => {
    resetShot();
    $("shoot").focus();
  });
  $("search").addEventListener("click", searchNow);
  $("torch").addEventListener("click", () => toggleTorch());
  $("back-to-setup").addEventListener("click", showSetup);
  $("again").addEventListener("click", showCapture);
  $("new-search").addEventListener("click", showSetup);
  window.addEventListener("online", () => {
    showConnection();
    drain();
  });
  window.addEventListener("offline", showConnection);
}

async function start() {
  wire();
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/app/sw.js", { scope: "/app/" }).catch(() => {});
  }
  showConnection();
  const cached = sessionStorage.getItem("biomatch.capabilities");
  if (savedToken() && cached) {
    state.capabilities = JSON.parse(cached);
    $("sign-out").hidden = false;
    showSetup();
  } else {
    showScreen("signin");
  }
  await renderQueue();
  await drain();
}

start();
