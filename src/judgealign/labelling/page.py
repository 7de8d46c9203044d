"""The labelling page: one self-contained HTML document (inline CSS and vanilla JS, offline).

Rubric strings, rationales and text items reach the DOM through ``textContent``. A notebook
arrives as the HTML of ``render.notebook_html`` (sanitized on the server by nh3) and is
parsed with ``DOMParser`` into an inert document before its nodes are moved in; the
Content-Security-Policy is the second wall: only this page's script runs (by hash, so no
inline handler or injected script does), images load only from ``data:`` URIs, and requests
go only back to the serving origin. Nothing is fetched from anywhere else: it works offline.

Two views: **Label** (the item, one card per dimension: levels, justification, Save) and
**Agreement** (per dimension: inter-rater MAE, Krippendorff's alpha, the items where raters
disagree side by side, and the adjudicated label). The layout holds from 1024 px: below
1280 px the item list folds into a drawer.

>>> html = page_html()
>>> html.startswith("<!doctype html>") and content_security_policy() in html
True
"""

from __future__ import annotations

import base64
import hashlib

from judgealign.render.notebook_html import notebook_css

_CSS = """
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2430;
background:#f4f5f7;height:100vh;display:flex;flex-direction:column;min-width:1000px}
header{display:flex;gap:12px;align-items:center;flex-wrap:wrap;padding:6px 12px;
background:#1d2430;color:#fff}header h1{font-size:15px;margin:0;white-space:nowrap}
header .grow{flex:1}header label{font-size:13px;white-space:nowrap}
header button{font:inherit;font-size:13px;padding:2px 10px;cursor:pointer;border-radius:4px;
border:1px solid #55606f;background:#2b3442;color:#fff}
header button.on{background:#3b73c4;border-color:#3b73c4}
#who{font-size:12.5px;color:#c8ced8;overflow:hidden;text-overflow:ellipsis;max-width:28em;
white-space:nowrap}
.bar{height:6px;background:#d6dae1;border-radius:3px;overflow:hidden;min-width:40px}
.bar>span{display:block;height:100%;background:#2f9e5b}#overall{width:120px}
main{flex:1;display:flex;min-height:0;position:relative}
nav{width:250px;flex:none;overflow:auto;background:#fff;border-right:1px solid #d6dae1}
nav button{display:block;width:100%;text-align:left;border:0;border-bottom:1px solid #eef0f3;
background:none;padding:6px 10px;cursor:pointer;font:inherit}
nav button:hover{background:#f0f4fa}nav button.current{background:#dce8fb}
nav .t{display:block;word-break:break-all;font-size:13px}
nav .m{display:flex;gap:6px;align-items:center;font-size:12px;color:#5b6573}nav .m .bar{flex:1}
.done{color:#2f7d4d}
.badge{background:#c0392b;color:#fff;border-radius:8px;padding:0 6px;font-size:11px}
.unsure{background:#7d5bbf;color:#fff;border-radius:8px;padding:0 6px;font-size:11px}
.dirty-dot{color:#d9822b;font-weight:bold}
#content{flex:1;display:flex;min-width:0}
#textpane{flex:1;overflow:auto;padding:10px 14px;min-width:0;background:#fff}
#textpane h2{font-size:15px;margin:0 0 8px;word-break:break-all}
#itemtext{white-space:pre-wrap;overflow-wrap:anywhere;background:#fff;border:1px solid #d6dae1;
padding:10px;border-radius:4px;font:12.5px/1.4 ui-monospace,Menlo,Consolas,monospace;margin:0}
#dims{width:380px;flex:none;overflow:auto;padding:10px;border-left:1px solid #d6dae1}
.dim{background:#fff;border:2px solid #d6dae1;border-radius:6px;padding:9px;margin-bottom:10px}
.dim:focus,.dim.focused{outline:none;border-color:#3b73c4}
.dim.saved{border-left:6px solid #2f9e5b}.dim.dirty{border-left:6px solid #d9822b}
.dim h3{margin:0 0 4px;font-size:14px;display:flex;justify-content:space-between;gap:8px}
.status{font-weight:normal;font-size:12px;white-space:nowrap}.saved .status{color:#2f7d4d}
.dirty .status{color:#b3621b}.desc,.guide{margin:4px 0;color:#3a4452;white-space:pre-wrap}
details{margin:4px 0;font-size:13px}
.level{display:flex;gap:8px;width:100%;text-align:left;margin:3px 0;padding:4px 7px;
font:inherit;border:1px solid #c4cad3;border-radius:4px;background:#fafbfc;cursor:pointer}
.level b{min-width:2.2em}.level:hover{background:#eef3fb}
.level.picked{background:#3b73c4;border-color:#3b73c4;color:#fff}
.level.was{border-color:#2f9e5b}
textarea{width:100%;min-height:64px;margin-top:6px;font:inherit;padding:6px;resize:vertical}
input[type=number]{width:90px;font:inherit;padding:4px}
.actions{display:flex;gap:8px;align-items:center;margin-top:6px}
.actions button{font:inherit;padding:4px 14px;cursor:pointer}.msg{font-size:12px}
.msg.err{color:#c0392b}.msg.ok{color:#2f7d4d}
.judge{margin-top:8px;padding:7px;border-radius:4px;background:#f3f0fa;font-size:13px}
.judge.differ{background:#fbeceb}.judge .r{white-space:pre-wrap;margin-top:3px}
.hint{font-size:12px;color:#c8ced8}
#error{background:#c0392b;color:#fff;padding:6px 14px;display:none}
#agreement{flex:1;overflow:auto;padding:12px 16px;display:none}
#agreement .figs{display:flex;flex-wrap:wrap;gap:10px;margin:8px 0 14px}
#agreement .fig{background:#fff;border:1px solid #d6dae1;border-radius:6px;padding:6px 12px}
#agreement .fig b{display:block;font-size:18px}
.case{background:#fff;border:1px solid #d6dae1;border-radius:6px;padding:10px;margin-bottom:12px}
.case h3{margin:0 0 6px;font-size:14px;display:flex;gap:10px;align-items:center}
.case h3 button{font:inherit;font-size:12px;cursor:pointer}
.raters{display:grid;grid-template-columns:repeat(auto-fit,minmax(220px,1fr));gap:8px}
.rater{border:1px solid #e3e6ea;border-radius:4px;padding:6px 8px;background:#fafbfc}
.rater .s{font-weight:bold}.rater .r{white-space:pre-wrap;font-size:13px;margin-top:3px}
.adj{margin-top:8px;border-top:1px dashed #c4cad3;padding-top:6px}
.adj .levels{display:flex;gap:4px;flex-wrap:wrap}.adj .level{width:auto}
.settled{color:#2f7d4d;font-size:13px}
@media (min-width:1280px){#listtoggle{display:none}}
@media (max-width:1279px){header .hint{display:none}#who{max-width:16em}
nav{position:absolute;z-index:5;top:0;bottom:0;left:0;box-shadow:2px 0 8px #0003;display:none}
body.drawer nav{display:block}}
"""

_SCRIPT = r"""
"use strict";
const S = {state: null, order: "file", idx: 0, view: null, focus: 0, drafts: {},
           showJudge: false, tab: "label", token: null, agreeDim: null, adjDrafts: {}};
const $ = (id) => document.getElementById(id);
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
function showError(message) {
  $("error").textContent = message || "";
  $("error").style.display = message ? "block" : "none";
}
async function api(method, path, body) {
  const opts = {method: method, headers: {}};
  if (S.token) opts.headers["Authorization"] = "Bearer " + S.token;
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const resp = await fetch(path, opts);
  const data = await resp.json().catch(() => null);
  if (!resp.ok) throw new Error((data && data.error) || ("HTTP " + resp.status));
  return data;
}
function hashParams() { return new URLSearchParams(location.hash.slice(1)); }
function setHash(itemId) {
  const p = new URLSearchParams();
  if (itemId) p.set("item", itemId);
  if (S.tab !== "label") p.set("view", S.tab);
  history.replaceState(null, "", "#" + p.toString());
}
const draftKey = (item, dim) => item + "\u0000" + dim;
function hasDrafts(item) {
  return Object.keys(S.drafts).some((k) => k.startsWith(item + "\u0000"));
}
function scoreText(dim, score) {
  if (score === null || score === undefined) return "-";
  if (dim.scale.na_value !== null && score === dim.scale.na_value) return "N/A";
  return String(Math.round(score * 100) / 100);
}
function dimById(id) { return S.state.dimensions.find((d) => d.id === id); }
async function loadState() {
  S.state = await api("GET", "/api/state?order=" + S.order);
  const st = S.state;
  $("title").textContent = "judgealign label: " + st.rubric_name;
  $("who").textContent = "rater " + st.rater + " \u2192 " + st.labels_path;
  $("who").title = $("who").textContent;
  const judged = st.has_judgements ? "" : "none";
  for (const id of ["ordering", "judgetoggle"]) $(id).style.display = judged;
  renderList();
}
function renderList() {
  const st = S.state, nav = $("list");
  nav.replaceChildren();
  const complete = st.items.filter((r) => r.labelled === r.total).length;
  $("progress").textContent = st.labelled + " / " + st.total + " labels, " + complete +
    " / " + st.items.length + " items done";
  $("overallbar").style.width = (st.total ? 100 * st.labelled / st.total : 0) + "%";
  st.items.forEach((row, i) => {
    const b = el("button", i === S.idx ? "current" : "");
    b.type = "button";
    b.dataset.item = row.id;
    b.append(el("span", "t", row.title));
    const meta = el("span", "m");
    meta.append(el("span", row.labelled === row.total ? "done" : "",
                   row.labelled + "/" + row.total));
    const bar = el("span", "bar"), fill = el("span");
    fill.style.width = (100 * row.labelled / row.total) + "%";
    bar.append(fill); meta.append(bar);
    if (row.disagreements) {
      const badge = el("span", "badge", "\u2260" + row.disagreements);
      badge.title = "dimensions where your label differs from the judge";
      meta.append(badge);
    }
    if (S.order === "uncertain" && row.uncertainty !== null && row.labelled < row.total) {
      const u = el("span", "unsure", "?" + row.uncertainty.toFixed(2));
      u.title = "how unsure the judges are on what you have not labelled (0-1)";
      meta.append(u);
    }
    if (hasDrafts(row.id)) meta.append(el("span", "dirty-dot", "\u25cf"));
    b.append(meta);
    b.addEventListener("click", () => { document.body.classList.remove("drawer"); openItem(i); });
    nav.append(b);
  });
}
async function openItem(i) {
  const rows = S.state.items;
  if (!rows.length) return;
  S.idx = Math.max(0, Math.min(rows.length - 1, i));
  const id = rows[S.idx].id;
  try {
    S.view = await api("GET", "/api/items/" + encodeURIComponent(id));
    showError("");
  } catch (e) { showError(e.message); return; }
  setHash(id);
  S.focus = 0;
  renderList();
  renderItem();
  $("textpane").scrollTop = 0;
  $("dims").scrollTop = 0;
}
function showItemBody(v) {
  const pane = $("itembody");
  pane.replaceChildren();
  if (v.html) {
    // Sanitized on the server; parsed inert (no script runs in a DOMParser document), and
    // the page's CSP would refuse any script or remote image that slipped through.
    const doc = new DOMParser().parseFromString(v.html, "text/html");
    for (const node of Array.from(doc.body.childNodes)) pane.append(document.adoptNode(node));
  } else {
    const pre = el("pre", "", v.text);
    pre.id = "itemtext";
    pane.append(pre);
  }
}
function renderItem() {
  const v = S.view;
  $("itemtitle").textContent = v.title + (v.kind === "notebook" ? "  (notebook)" : "");
  showItemBody(v);
  const box = $("dims");
  box.replaceChildren();
  S.state.dimensions.forEach((dim, n) => box.append(dimCard(dim, n)));
  focusDim(S.focus, false);
}
function current(dim) {
  const d = S.drafts[draftKey(S.view.id, dim.id)];
  const saved = S.view.labels[dim.id];
  return {
    score: d ? d.score : (saved ? saved.score : null),
    rationale: d ? d.rationale : (saved ? saved.rationale : ""),
    dirty: !!d, saved: saved || null,
  };
}
function setDraft(dim, change) {
  const key = draftKey(S.view.id, dim.id), cur = current(dim);
  const next = Object.assign({score: cur.score, rationale: cur.rationale}, change);
  const saved = S.view.labels[dim.id];
  // An edit back to the saved state (or to nothing) is no longer a draft.
  const same = saved ? saved.score === next.score && saved.rationale === next.rationale
    : next.score === null && !next.rationale;
  if (same) delete S.drafts[key]; else S.drafts[key] = next;
}
function levelsOf(dim) {
  const sc = dim.scale, out = [];
  const wide = sc.max - sc.min + 1 > 11;  // a 0-100 scale gets a number box, not 101 buttons
  for (let lv = sc.min; !wide && lv <= sc.max; lv++) out.push([lv, String(lv), sc.anchors[lv]]);
  if (sc.na_value !== null) out.push([sc.na_value, "N/A", sc.na_description]);
  return {wide: wide, buttons: out};
}
function statusText(dim, c) {
  if (c.dirty) return "\u25cf unsaved";
  return c.saved ? "\u2713 saved: " + scoreText(dim, c.saved.score) : "not labelled";
}
function judgeBox(dim, j, mine) {
  const differ = mine !== null && j.score !== null && judgeDiffers(dim, mine, j.score);
  const jb = el("div", "judge" + (differ ? " differ" : ""));
  const who = j.name ? "Judge " + j.name : "Judge";
  const head = j.error ? who + " failed: " + j.error :
    who + ": " + scoreText(dim, j.score) + (differ ? "  (differs from your label)" : "") +
    (j.uncertainty !== null ? "  (unsure " + j.uncertainty.toFixed(2) + ")" : "");
  jb.append(el("b", "", head));
  if (j.rationale) jb.append(el("div", "r", j.rationale));
  return jb;
}
function dimCard(dim, n) {
  const cur = current(dim);
  const card = el("div", "dim" + (cur.dirty ? " dirty" : (cur.saved ? " saved" : "")));
  card.tabIndex = 0;
  card.dataset.n = String(n);
  card.dataset.dim = dim.id;
  card.addEventListener("focusin", () => { S.focus = n; markFocus(); });
  card.addEventListener("mousedown", () => { S.focus = n; markFocus(); });
  const h = el("h3");
  h.append(el("span", "", dim.name), el("span", "status", statusText(dim, cur)));
  card.append(h, el("p", "desc", dim.description));
  if (dim.guidance) {
    const det = el("details");
    det.append(el("summary", "", "Guidance"), el("p", "guide", dim.guidance));
    card.append(det);
  }
  const lv = levelsOf(dim);
  if (lv.wide) {
    const sc = dim.scale, list = el("div", "desc");
    Object.keys(sc.anchors).forEach((k) => list.append(el("div", "", k + ": " + sc.anchors[k])));
    card.append(list);
    const inp = el("input");
    inp.type = "number"; inp.min = sc.min; inp.max = sc.max; inp.step = "1";
    inp.value = cur.score === null || cur.score === sc.na_value ? "" : String(cur.score);
    inp.addEventListener("input", () => {
      setDraft(dim, {score: inp.value === "" ? null : Number(inp.value)});
      markEdited(card, dim);
    });
    card.append(inp);
  }
  lv.buttons.forEach(([value, label, anchor]) => {
    const b = el("button", "level");
    b.type = "button";
    b.dataset.value = String(value);
    if (cur.score === value) b.classList.add("picked");
    if (cur.saved && cur.saved.score === value) b.classList.add("was");
    b.append(el("b", "", label), el("span", "", anchor || ""));
    b.addEventListener("click", () => pick(n, value));
    card.append(b);
  });
  const ta = el("textarea");
  ta.placeholder = "Justification: what in the item decides this score?";
  ta.maxLength = 20000;
  ta.value = cur.rationale;
  ta.addEventListener("input", () => {
    setDraft(dim, {rationale: ta.value});
    markEdited(card, dim);
  });
  card.append(ta);
  const actions = el("div", "actions"), save = el("button", "save", "Save");
  save.type = "button";
  save.addEventListener("click", () => saveDim(n));
  actions.append(save, el("span", "msg"));
  card.append(actions);
  const judges = (S.view.judges || {})[dim.id] || [];
  if (judges.length && (cur.saved || S.showJudge)) {
    judges.forEach((j) => card.append(judgeBox(dim, j, cur.saved ? cur.saved.score : null)));
  }
  return card;
}
function markEdited(card, dim) {
  // Typing keeps its focus: mark the card instead of rebuilding it.
  const before = hasDrafts(S.view.id), c = current(dim);
  card.classList.toggle("dirty", c.dirty);
  card.classList.toggle("saved", !c.dirty && !!c.saved);
  card.querySelector(".status").textContent = statusText(dim, c);
  if (before !== hasDrafts(S.view.id) || c.dirty) renderList();
}
function judgeDiffers(dim, mine, judge) {
  const na = dim.scale.na_value;
  const a = na !== null && mine === na, b = na !== null && judge === na;
  if (a || b) return a !== b;
  return Math.abs(mine - judge) >= 0.5;
}
function refreshCard(n) {
  const fresh = dimCard(S.state.dimensions[n], n);
  document.querySelector('.dim[data-n="' + n + '"]').replaceWith(fresh);
  markFocus(); renderList();
  return fresh;
}
function markFocus() {
  document.querySelectorAll(".dim").forEach((c) => {
    c.classList.toggle("focused", Number(c.dataset.n) === S.focus);
  });
}
function focusDim(n, scroll) {
  const count = S.state.dimensions.length;
  S.focus = Math.max(0, Math.min(count - 1, n));
  const card = document.querySelector('.dim[data-n="' + S.focus + '"]');
  markFocus();
  if (card && scroll) { card.focus(); card.scrollIntoView({block: "nearest"}); }
}
function pick(n, value) {
  S.focus = n;
  setDraft(S.state.dimensions[n], {score: value});
  refreshCard(n).focus();
}
async function saveDim(n) {
  const dim = S.state.dimensions[n], cur = current(dim), itemId = S.view.id;
  const msg = document.querySelector('.dim[data-n="' + n + '"] .msg');
  const fail = (text) => { msg.className = "msg err"; msg.textContent = text; };
  if (cur.score === null) { fail("pick a score first"); return; }
  try {
    const view = S.view, saved = await api("POST", "/api/labels",
      {item: itemId, dimension: dim.id, score: cur.score, rationale: cur.rationale});
    view.labels[dim.id] = saved;
    const key = draftKey(itemId, dim.id), d = S.drafts[key];
    // Keep edits typed while the request was in flight.
    if (d && d.score === saved.score && d.rationale === saved.rationale) delete S.drafts[key];
    await loadState();
    if (S.view.id !== itemId) return;
    S.idx = Math.max(0, S.state.items.findIndex((r) => r.id === itemId));
    refreshCard(n);
    const next = S.state.dimensions.findIndex((d, i) => i > n && !current(d).saved);
    focusDim(next >= 0 ? next : n, true);
  } catch (e) { fail(e.message); }
}
// -- agreement and adjudication --------------------------------------------------------------
function fig(label, value, title) {
  const f = el("div", "fig");
  f.append(el("b", "", value === null || value === undefined ? "-" : value), el("span", "", label));
  if (title) f.title = title;
  return f;
}
async function showAgreement() {
  const box = $("agreement");
  const dims = S.state.dimensions;
  if (!S.agreeDim) S.agreeDim = dims[0].id;
  let a;
  try { a = await api("GET", "/api/agreement/" + encodeURIComponent(S.agreeDim)); showError(""); }
  catch (e) { showError(e.message); return; }
  box.replaceChildren();
  const pickDim = el("select");
  pickDim.id = "agreedim";
  dims.forEach((d) => {
    const o = el("option", "", d.name); o.value = d.id; o.selected = d.id === S.agreeDim;
    pickDim.append(o);
  });
  pickDim.addEventListener("change", () => { S.agreeDim = pickDim.value; showAgreement(); });
  const head = el("h2", "", "Agreement on ");
  head.append(pickDim);
  box.append(head);
  const f = (x) => x === null ? null : x.toFixed(2);
  const figs = el("div", "figs");
  figs.append(
    fig("raters", a.raters.length ? a.raters.join(", ") : "none yet"),
    fig("items labelled twice+", a.n_labelled_twice),
    fig("rater vs others MAE", f(a.mae), "each rater against the mean of the others, " +
        a.n_items + " items with 2+ applicable scores"),
    fig("pairwise MAE", f(a.pairwise_mae)),
    fig("Krippendorff \u03b1 (interval)", f(a.alpha_interval)),
    fig("\u03b1 (ordinal)", f(a.alpha_ordinal)),
    fig("agree N/A or not", a.na_agreement === null ? null :
        Math.round(100 * a.na_agreement) + "%"),
    fig("adjudicated", a.adjudicated));
  box.append(figs);
  box.append(el("h3", "", a.disagreements.length ?
    a.disagreements.length + (a.disagreements.length === 1 ? " item" : " items") +
    " where raters disagree (a level or more apart)" :
    "No disagreements on this dimension yet"));
  const dim = dimById(a.dimension);
  a.disagreements.forEach((d) => box.append(caseCard(dim, d)));
}
function caseCard(dim, d) {
  const card = el("div", "case");
  card.dataset.item = d.item;
  const h = el("h3");
  const open = el("button", "", "open item");
  open.type = "button";
  open.addEventListener("click", () => {
    const at = S.state.items.findIndex((r) => r.id === d.item);
    switchTab("label"); openItem(at);
  });
  h.append(el("span", "", d.title), el("span", "badge", "spread " + d.spread), open);
  card.append(h);
  const grid = el("div", "raters");
  d.scores.forEach((s) => {
    const r = el("div", "rater");
    r.append(el("div", "s", s.rater + ": " + scoreText(dim, s.score)));
    r.append(el("div", "r", s.rationale || "(no justification)"));
    grid.append(r);
  });
  card.append(grid);
  const adj = el("div", "adj");
  if (d.adjudication) {
    adj.append(el("div", "settled", "\u2713 adjudicated " + scoreText(dim, d.adjudication.score) +
      " by " + d.adjudication.adjudicator + ": " + (d.adjudication.rationale || "")));
  }
  const key = d.item, draft = S.adjDrafts[key] || {score: d.adjudication ? d.adjudication.score :
    null, rationale: d.adjudication ? d.adjudication.rationale : ""};
  S.adjDrafts[key] = draft;
  const levels = el("div", "levels");
  levelsOf(dim).buttons.forEach(([value, label]) => {
    const b = el("button", "level" + (draft.score === value ? " picked" : ""));
    b.type = "button";
    b.dataset.value = String(value);
    b.append(el("b", "", label));
    b.addEventListener("click", () => {
      draft.score = value;
      levels.querySelectorAll(".level").forEach((x) => x.classList.toggle(
        "picked", x.dataset.value === String(value)));
    });
    levels.append(b);
  });
  const ta = el("textarea");
  ta.placeholder = "Why this label settles it";
  ta.maxLength = 20000;
  ta.value = draft.rationale;
  ta.addEventListener("input", () => { draft.rationale = ta.value; });
  const actions = el("div", "actions"), save = el("button", "adjudicate",
    "Record adjudicated label");
  save.type = "button";
  const msg = el("span", "msg");
  save.addEventListener("click", async () => {
    if (draft.score === null) {
      msg.className = "msg err"; msg.textContent = "pick a score"; return;
    }
    try {
      await api("POST", "/api/adjudications", {item: d.item, dimension: dim.id,
        score: draft.score, rationale: draft.rationale});
      delete S.adjDrafts[key];
      await showAgreement();
    } catch (e) { msg.className = "msg err"; msg.textContent = e.message; }
  });
  actions.append(save, msg);
  adj.append(levels, ta, actions);
  card.append(adj);
  return card;
}
function switchTab(tab) {
  S.tab = tab;
  $("tablabel").classList.toggle("on", tab === "label");
  $("tabagree").classList.toggle("on", tab === "agreement");
  $("labelview").style.display = tab === "label" ? "flex" : "none";
  $("agreement").style.display = tab === "agreement" ? "block" : "none";
  setHash(S.view ? S.view.id : null);
  if (tab === "agreement") showAgreement();
}
function onKey(ev) {
  if (!S.view || S.tab !== "label") return;
  if ((ev.ctrlKey || ev.metaKey) && ev.key === "Enter") {
    ev.preventDefault(); saveDim(S.focus); return;
  }
  const tag = (ev.target.tagName || "").toLowerCase();
  if (ev.key === "Escape" && (tag === "textarea" || tag === "input")) {
    ev.target.blur(); return;
  }
  if (tag === "textarea" || tag === "input" || tag === "select") return;
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (ev.key === "n" || ev.key === "p") { openItem(S.idx + (ev.key === "n" ? 1 : -1)); return; }
  if (ev.key === "j" || ev.key === "k") {
    ev.preventDefault(); focusDim(S.focus + (ev.key === "j" ? 1 : -1), true); return;
  }
  if (ev.key === "Enter" && ev.target.classList && ev.target.classList.contains("dim")) {
    ev.preventDefault(); ev.target.querySelector("textarea").focus(); return;
  }
  if (/^[0-9]$/.test(ev.key)) {
    const dim = S.state.dimensions[S.focus], v = Number(ev.key);
    if (levelsOf(dim).buttons.some(([value]) => value === v)) {
      ev.preventDefault(); pick(S.focus, v);
    }
  }
}
async function start() {
  const params = hashParams();
  if (params.get("token")) sessionStorage.setItem("judgealign-token", params.get("token"));
  S.token = sessionStorage.getItem("judgealign-token");
  document.addEventListener("keydown", onKey);
  $("listtoggle").addEventListener("click", () => document.body.classList.toggle("drawer"));
  $("tablabel").addEventListener("click", () => switchTab("label"));
  $("tabagree").addEventListener("click", () => switchTab("agreement"));
  $("order").addEventListener("change", async () => {
    S.order = $("order").value;
    const id = S.view ? S.view.id : null;
    await loadState();
    S.idx = Math.max(0, S.state.items.findIndex((r) => r.id === id));
    renderList();
  });
  $("showjudge").addEventListener("change", () => {
    S.showJudge = $("showjudge").checked;
    if (S.view) renderItem();
  });
  window.addEventListener("beforeunload", (ev) => {
    if (Object.keys(S.drafts).length) { ev.preventDefault(); ev.returnValue = ""; }
  });
  try { await loadState(); } catch (e) { showError(e.message); return; }
  const at = S.state.items.findIndex((r) => r.id === params.get("item"));
  await openItem(at >= 0 ? at : 0);
  if (params.get("view") === "agreement") switchTab("agreement");
}
start();
"""

_BODY = """
<header>
  <button type="button" id="listtoggle" title="the item list">&#9776; Items</button>
  <h1 id="title">judgealign label</h1>
  <button type="button" id="tablabel" class="on">Label</button>
  <button type="button" id="tabagree">Agreement</button>
  <span id="who"></span>
  <span class="grow"></span>
  <span id="progress"></span>
  <span class="bar" id="overall"><span id="overallbar"></span></span>
  <label id="ordering">order
    <select id="order"><option value="file">as loaded</option>
    <option value="disagreements">disagreements first</option>
    <option value="uncertain">judge least sure first</option></select></label>
  <label id="judgetoggle"><input type="checkbox" id="showjudge"> show judge</label>
  <span class="hint">digits score &middot; j/k dimension &middot; n/p item &middot;
  Ctrl+Enter save</span>
</header>
<div id="error"></div>
<main>
  <nav id="list" aria-label="items"></nav>
  <div id="labelview" style="display:flex;flex:1;min-width:0">
    <div id="content">
      <section id="textpane"><h2 id="itemtitle"></h2><div id="itembody"></div></section>
      <section id="dims" aria-label="dimensions"></section>
    </div>
  </div>
  <section id="agreement" aria-label="agreement"></section>
</main>
"""


def content_security_policy(*, header: bool = False) -> str:
    """The page's CSP: nothing external; only this page's own script, by its hash.

    ``header=True`` adds ``frame-ancestors``, which browsers honour only in the HTTP header.
    """
    digest = base64.b64encode(hashlib.sha256(_SCRIPT.encode("utf-8")).digest()).decode("ascii")
    policy = (
        "default-src 'none'; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{digest}'; connect-src 'self'; img-src data:; "
        "base-uri 'none'; form-action 'none'"
    )
    return policy + "; frame-ancestors 'none'" if header else policy


def page_html() -> str:
    """The whole page; item data arrives later from the JSON API."""
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{content_security_policy()}\">"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>judgealign label</title><style>{_CSS}{notebook_css()}</style></head><body>"
        f"{_BODY}<script>{_SCRIPT}</script></body></html>\n"
    )
