// The review console: reviewers adjudicate 1:N leads; auditors read the audit log, check
// its chain and read the transparency report. Nothing here edits the record.

import { api, forgetToken, imageUrl, isNetworkFailure, savedToken, saveToken } from "/shared/api.js";
import { bestOfInWords, element, fingerName, fmrInWords, humanise, showScreen, when } from "/shared/words.js";
import { photoWithFingertips } from "/shared/boxes.js";
import { barChart, perDayChart } from "./charts.js";

const $ = (id) => document.getElementById(id);
const PAGE = 25;
const state = { me: null, logPages: [null], filter: {} };

async function signIn(event) {
  event.preventDefault();
  const token = $("token").value.trim();
  $("signin-error").textContent = "";
  try {
    const me = await api("/me", { token });
    if (!["reviewer", "auditor"].includes(me.role)) {
      $("signin-error").textContent = `This console is for reviewers and auditors; you are signed in as ${humanise(me.role).toLowerCase()}.`;
      return;
    }
    saveToken(token);
    $("token").value = "";
    await enter(me);
  } catch (error) {
    $("signin-error").textContent = isNetworkFailure(error) ? "The service cannot be reached." : error.message;
  }
}

async function enter(me) {
  state.me = me;
  $("who").textContent = `${me.name} (${humanise(me.role).toLowerCase()})`;
  $("sign-out").hidden = false;
  $("auditor-nav").hidden = me.role !== "auditor";
  if (me.role === "reviewer") await showQueue();
  else await firstLogPage();
}

function signOut() {
  forgetToken();
  state.me = null;
  $("who").textContent = "";
  $("sign-out").hidden = true;
  $("auditor-nav").hidden = true;
  showScreen("signin");
}

// -- reviewer -------------------------------------------------------------------------------

async function showQueue() {
  const items = await api("/review-queue");
  const table = items.length
    ? element("table", {},
        element("caption", { class: "visually-hidden", text: "Encounters awaiting review" }),
        element("thead", {}, element("tr", {}, ...["Searched", "Gallery", "Purpose", "Case", "Open leads", ""].map((c) => element("th", { scope: "col", text: c })))),
        element("tbody", {}, ...items.map(queueRow)))
    : element("p", { text: "Nothing awaits your review." });
  $("queue-table").replaceChildren(table);
  showScreen("queue");
}

function queueRow(item) {
  const button = element("button", { type: "button", "aria-label": `Review the search of ${when(item.started_at)} in ${item.gallery}`, text: "Review" });
  button.addEventListener("click", () => showReview(item.encounter_id));
  return element("tr", {},
    element("td", { text: when(item.started_at) }),
    element("td", {}, item.gallery, item.training ? element("span", { class: "badge training", text: " training" }) : null),
    element("td", { text: humanise(item.purpose) }),
    element("td", { text: item.case_reference || "—" }),
    element("td", { text: String(item.open_candidates) }),
    element("td", {}, button));
}

async function showReview(encounterId) {
  const encounter = await api(`/encounters/${encounterId}`);
  const results = new Map((encounter.result.candidates || []).map((c) => [c.subject_id, c]));
  $("encounter-facts").replaceChildren(...[
    ["Encounter", encounter.encounter_id],
    ["Searched", `${when(encounter.started_at)} by ${encounter.operator}`],
    ["Gallery", `${encounter.gallery}${encounter.training ? " (training)" : ""}`],
    ["Purpose", humanise(encounter.purpose)],
    ["Legal authority", encounter.legal_authority],
    ["Case reference", encounter.case_reference || "—"],
  ].flatMap(([t, v]) => [element("dt", { text: t }), element("dd", { text: v })]));
  const probe = element("figure", {}, element("figcaption", { text: "Probe (the capture searched)" }));
  if (encounter.probe_image_kept) {
    const photo = element("img", { class: "photo", id: "probe-photo", alt: "Probe photo of this search", src: await imageUrl(`/encounters/${encounterId}/probe-images/1?view=true`) });
    const parts = encounter.result.parts || [];
    probe.append(parts.length ? photoWithFingertips(photo, parts) : photo);
  } else {
    probe.append(element("p", { class: "hint", text: "The gallery's policy did not keep the probe photo." }));
  }
  const leftOut = encounter.result.parts_left_out || [];
  if (leftOut.length) {
    const words = leftOut.map((part) => `${fingerName(part.position)} (${part.reasons.map(humanise).join(", ").toLowerCase()})`);
    probe.append(element("p", { class: "hint", id: "parts-left-out", text: `Searched without these fingertips, which failed the quality gate: ${words.join("; ")}.` }));
  }
  const cards = [];
  for (const candidate of encounter.candidates) cards.push(await candidateCard(encounter, candidate, results.get(candidate.subject_id)));
  $("compare").replaceChildren(probe, ...cards);
  showScreen("review");
}

async function candidateCard(encounter, candidate, recorded) {
  let photo;
  try {
    const src = await imageUrl(`/encounters/${encounter.encounter_id}/candidates/${encodeURIComponent(candidate.subject_id)}/reference-image`);
    photo = element("img", { class: "photo", src, alt: `Enrolled reference photo of candidate ${candidate.subject_id}` });
  } catch {
    photo = element("p", { class: "hint", text: "No reference photo kept." });
  }
  const mine = encounter.adjudications.find((a) => a.subject_id === candidate.subject_id && a.reviewer === state.me.name);
  const status = element("p", { class: "candidate-status", text: statusWords(candidate) });
  const card = element("figure", { class: "candidate-card", "data-subject": candidate.subject_id },
    element("figcaption", { text: `Candidate ${candidate.rank}: ${candidate.subject_id}` }),
    photo,
    element("p", { class: "candidate-score", text: `Score ${candidate.score === null ? "fused" : `${candidate.score.toFixed(3)}${bestOfInWords(recorded && recorded.contributions)}`}; ${fmrInWords(candidate.estimated_fmr, recorded ? recorded.fmr_is_upper_bound : false)}.` }),
    ...evidenceList(recorded),
    status);
  if (mine) card.append(element("p", { text: `You decided: ${mine.decision} (${mine.reason}).` }));
  else if (candidate.status === "lead" || candidate.status === "disputed") card.append(decisionForm(encounter, candidate));
  return card;
}

// A fused candidate's evidence item by item (each finger, or the face), so that a reviewer
// sees whether one finger or several carry the lead.
function evidenceList(recorded) {
  const items = (recorded && recorded.contributions) || [];
  if (items.length < 2) return [];
  return [element("ul", { class: "evidence", "aria-label": "Evidence by finger or face" },
    ...items.map((item) => element("li", {},
      element("strong", { text: `${item.position ? fingerName(item.position) : humanise(item.modality)}: ` }),
      `${fmrInWords(item.estimated_fmr, item.fmr_is_upper_bound)}.`)))];
}

function statusWords(candidate) {
  const count = `${candidate.confirmations} of ${candidate.confirmations_required} confirmation${candidate.confirmations_required > 1 ? "s" : ""}`;
  return `Status: ${candidate.status} (${count})`;
}

function decisionForm(encounter, candidate) {
  const id = `c${candidate.rank}`;
  const radios = ["confirm", "reject", "inconclusive"].map((decision) =>
    element("label", {}, element("input", { type: "radio", name: `${id}-decision`, value: decision, required: true }), humanise(decision)));
  const error = element("p", { class: "error", role: "alert" });
  const form = element("form", { novalidate: true },
    element("fieldset", {}, element("legend", { text: `Your decision on ${candidate.subject_id}` }), ...radios),
    element("label", { for: `${id}-reason`, text: "Reason (required)" }),
    element("textarea", { id: `${id}-reason`, name: "reason", required: true, minlength: 3 }),
    error,
    element("div", { class: "actions" }, element("button", { type: "submit", text: "Record decision" })));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const decision = form.querySelector("input[type=radio]:checked");
    const reason = form.querySelector("textarea").value.trim();
    if (!decision || reason.length < 3) {
      error.textContent = "Choose confirm, reject or inconclusive, and give your reason.";
      return;
    }
    try {
      await api(`/encounters/${encounter.encounter_id}/adjudications`, {
        method: "POST",
        json: { subject_id: candidate.subject_id, decision: decision.value, reason },
      });
      await showReview(encounter.encounter_id);
    } catch (problem) {
      error.textContent = problem.message;
    }
  });
  return form;
}

// -- auditor --------------------------------------------------------------------------------

// Newest first; `pages` holds the before_seq of each page shown (null: the newest).
async function showLog(before = null) {
  const query = new URLSearchParams({ newest_first: "true", limit: String(PAGE) });
  if (before) query.set("before_seq", String(before));
  for (const [name, value] of Object.entries(state.filter)) if (value) query.set(name, value);
  const entries = await api(`/audit?${query}`);
  $("log-table").replaceChildren(entries.length ? logTable(entries) : element("p", { text: "No entries match." }));
  $("log-newer").disabled = state.logPages.length <= 1;
  $("log-older").disabled = entries.length < PAGE;
  $("log-older").dataset.before = entries.length ? String(entries[entries.length - 1].seq) : "";
  showScreen("log");
  checkChain();
}

function logTable(entries) {
  const columns = ["Seq", "Time (UTC)", "Operator", "Role", "Action", "Gallery", "Subject", "Encounter", "Details"];
  return element("table", {},
    element("caption", { class: "visually-hidden", text: "Audit entries" }),
    element("thead", {}, element("tr", {}, ...columns.map((c) => element("th", { scope: "col", text: c })))),
    element("tbody", {}, ...entries.map((e) => element("tr", {},
      ...[e.seq, e.at.replace("T", " ").slice(0, 19), e.actor, e.role, e.action, e.gallery || "", e.subject || "", (e.encounter || "").slice(0, 8)].map((v) => element("td", { text: String(v) })),
      element("td", {}, details(e.details))))));
}

function details(values) {
  const shown = ["purpose", "legal_authority", "case_reference", "decision", "reason", "rule", "passed", "training"];
  const parts = shown.filter((k) => values[k] !== undefined && values[k] !== null).map((k) => `${k}: ${values[k]}`);
  return parts.join("; ");
}

async function checkChain() {
  $("chain").textContent = "Checking the audit chain…";
  try {
    const chain = await api("/audit/verify");
    $("chain").replaceChildren(chain.intact
      ? element("span", { class: "ok", text: `Chain intact: ${chain.entries} entries, ${chain.checkpoints_verified} signed checkpoint(s) verified.` })
      : element("span", { class: "error", text: `Chain broken at entry ${chain.first_broken_seq}: ${chain.problem}` }));
  } catch (error) {
    $("chain").textContent = `The chain could not be checked: ${error.message}`;
  }
}

function firstLogPage() {
  state.logPages = [null];
  return showLog(null);
}

function applyFilter(event) {
  event.preventDefault();
  const form = new FormData($("log-filter"));
  state.filter = Object.fromEntries([...form.entries()].map(([k, v]) => [k, String(v).trim()]));
  firstLogPage();
}

function olderPage() {
  const before = Number($("log-older").dataset.before);
  state.logPages.push(before);
  showLog(before);
}

function newerPage() {
  if (state.logPages.length > 1) state.logPages.pop();
  showLog(state.logPages[state.logPages.length - 1]);
}

async function showReport() {
  const report = await api("/reports/transparency");
  $("report-generated").textContent = `Generated ${when(report.generated_at)}. Training searches are left out (${report.training_searches_excluded} of them).`;
  const delay = report.adjudication_delay_hours;
  const rate = report.adjudication_rate === null ? "—" : `${Math.round(report.adjudication_rate * 100)}%`;
  const figures = element("div", { class: "figures" },
    figure("Searches", report.searches),
    figure("1:N searches", report.identify_searches),
    figure("1:N searches adjudicated", `${report.identify_adjudicated} (${rate})`),
    figure("Time to first adjudication", delay ? `median ${hours(delay.median)}, longest ${hours(delay.max)}` : "—"));
  $("report-body").replaceChildren(
    figures,
    perDayChart("Searches per day, by purpose", report.searches_per_day_by_purpose),
    perDayChart("Searches per day, by gallery", report.searches_per_day_by_gallery),
    barChart("Outcomes", report.outcomes),
    barChart("Adjudication decisions", report.adjudication_decisions),
    barChart("Deletions, by rule", report.deletions_by_rule),
  );
  showScreen("report");
}

function figure(label, value) {
  return element("p", { class: "figure" }, element("span", { class: "value", text: String(value) }), label);
}

function hours(value) {
  if (value * 60 < 1) return "under a minute";
  return value < 1 ? `${Math.round(value * 60)} min` : `${value.toFixed(1)} h`;
}

function wire() {
  $("signin-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  $("refresh-queue").addEventListener("click", showQueue);
  $("back-to-queue").addEventListener("click", showQueue);
  $("log-filter").addEventListener("submit", applyFilter);
  $("log-older").addEventListener("click", olderPage);
  $("log-newer").addEventListener("click", newerPage);
  for (const button of document.querySelectorAll("#auditor-nav button")) {
    button.addEventListener("click", () => (button.dataset.view === "log" ? firstLogPage() : showReport()));
  }
}

async function start() {
  wire();
  if (!savedToken()) {
    showScreen("signin");
    return;
  }
  try {
    await enter(await api("/me"));
  } catch {
    forgetToken();
    showScreen("signin");
  }
}

start();
