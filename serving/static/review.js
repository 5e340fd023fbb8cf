// trueframe review desk: sign in with a reviewer key, work through the appeal and flagged queues,
// open an item, take an appeal, record a decision. Plain JavaScript, no inline code (strict CSP).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const MODEL = {
    authentic: "Authentic", likely_authentic: "Likely authentic", uncertain: "Uncertain",
    likely_manipulated: "Likely manipulated", manipulated: "Manipulated",
    ai_generated: "AI-generated", out_of_scope: "No verdict",
  };
  const HUMAN = { authentic: "Authentic", manipulated: "Manipulated", ai_generated: "AI-generated", inconclusive: "Inconclusive" };
  const STATES = { open: "Waiting", in_review: "In review", upheld: "Upheld", overturned: "Overturned" };
  // item: the queue row opened; appeal: the pending appeal of its job (also for a row of the flagged
  // queue, which names no appeal: taking it from there did nothing until 2026-12-04)
  const desk = { kind: "appeal", item: null, appeal: null };

  function show(id, visible) { $(id).hidden = !visible; }

  const { el, clear, chance, span } = window.TrueframeDom;

  function age(seconds) {
    const s = Math.max(0, Date.now() / 1000 - seconds);
    if (s < 90) return Math.round(s) + " s";
    if (s < 5400) return Math.round(s / 60) + " min";
    if (s < 172800) return Math.round(s / 3600) + " h";
    return Math.round(s / 86400) + " days";
  }

  const pct = (p) => (p === null || p === undefined ? "–" : chance(p));

  function api(method, url, body) {
    const init = { method, credentials: "same-origin", headers: {} };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(url, init).then((r) => r.json().catch(() => null).then((data) => ({ status: r.status, data })));
  }

  function message(answer) {
    const err = answer.data && answer.data.error;
    return err ? err.message + " (" + err.code + ")" : "The service answered HTTP " + answer.status + ".";
  }

  function signedIn(who) {
    if (who.role !== "reviewer" && who.role !== "admin") {
      $("key-error").textContent = "This key has the role " + who.role + ": the review desk needs a reviewer or admin key.";
      show("key-error", true);
      show("key-panel", true);
      show("desk", false);
      return;
    }
    $("whoami").textContent = "Signed in as " + who.owner + " (" + who.role + ")";
    show("key-panel", false);
    show("desk", true);
    loadQueue();
  }

  function start() {
    api("GET", "/v1/session").then((answer) => {
      if (answer.status === 200 && answer.data.via !== "anonymous") return signedIn(answer.data);
      show("key-panel", true);
      $("key-input").focus();
    });
  }

  function submitKey(event) {
    event.preventDefault();
    const key = $("key-input").value.trim();
    if (!key) return;
    fetch("/v1/session", { method: "POST", credentials: "same-origin", headers: { Authorization: "Bearer " + key } })
      .then((r) => {
        if (r.status !== 204) throw new Error("This key was not accepted. Check it and try again.");
        $("key-input").value = "";
        show("key-error", false);
        return api("GET", "/v1/session");
      })
      .then((answer) => signedIn(answer.data))
      .catch((err) => {
        $("key-error").textContent = err.message;
        show("key-error", true);
      });
  }

  function signOut() {
    fetch("/v1/session", { method: "DELETE", credentials: "same-origin" }).then(() => window.location.reload());
  }

  function selectTab(kind) {
    desk.kind = kind;
    document.querySelectorAll(".tab").forEach((tab) => tab.setAttribute("aria-selected", String(tab.dataset.kind === kind)));
    show("item", false);
    loadQueue();
  }

  function loadQueue() {
    api("GET", "/v1/reviews/queue?kind=" + desk.kind).then((answer) => {
      const body = clear($("queue-body"));
      if (answer.status !== 200) {
        body.appendChild(el("tr")).appendChild(el("td", message(answer), "error"));
        return;
      }
      const items = answer.data.items;
      show("queue-empty", items.length === 0);
      show("queue-table", items.length > 0);
      items.forEach((item) => body.appendChild(queueRow(item)));
    });
  }

  function queueRow(item) {
    const row = el("tr");
    row.appendChild(el("td", item.name || item.job_id));
    row.appendChild(el("td", item.kind || ""));
    row.appendChild(el("td", MODEL[item.verdict] || item.verdict || ""));
    row.appendChild(el("td", pct(item.score)));
    row.appendChild(el("td", age(item.appealed_at || item.created_at)));
    row.appendChild(el("td", item.state ? STATES[item.state] || item.state : unreviewed(item.appeal_state)));
    const cell = el("td");
    const open = el("button", "Open", "small");
    open.type = "button";
    open.addEventListener("click", () => openItem(item));
    cell.appendChild(open);
    row.appendChild(cell);
    return row;
  }

  // a flagged row: no decision yet, but its submitter may have appealed the detectors' verdict
  function unreviewed(appealState) {
    return appealState ? "Not reviewed; appeal " + STATES[appealState].toLowerCase() : "Not reviewed";
  }

  function detail(dl, term, value) {
    if (value === undefined || value === null || value === "") return;
    dl.appendChild(el("dt", term));
    dl.appendChild(el("dd", String(value)));
  }

  function openItem(item) {
    // both are set again once the job is read: a failed read must keep neither the last item's
    // appeal nor a decision form that would record on this item under the last item's details
    desk.item = null;
    desk.appeal = null;
    Promise.all([api("GET", "/v1/jobs/" + item.job_id), api("GET", "/v1/jobs/" + item.job_id + "/reviews")]).then(([job, history]) => {
      if (job.status !== 200) return unreadItem(item, job);
      desk.item = item;
      renderItem(item, job.data, history.status === 200 ? history.data.reviews : []);
    });
  }

  function unreadItem(item, answer) {
    $("item-id").textContent = item.job_id;
    $("item-title").textContent = item.name || item.job_id;
    clear($("item-details"));
    clear($("item-history"));
    ["item-known", "item-appeal", "decision-form", "decision-done"].forEach((id) => show(id, false));
    $("decision-error").textContent = "This item could not be opened: " + message(answer);
    show("decision-error", true);
    show("item", true);
  }

  function renderItem(item, job, reviews) {
    const report = job.report || {};
    const score = report.score || {};
    $("item-id").textContent = job.job_id;
    $("item-title").textContent = job.name || (report.media && report.media.name) || job.job_id;
    const dl = clear($("item-details"));
    detail(dl, "Detectors said", (MODEL[score.verdict] || score.verdict) + " (" + pct(score.manipulated) + " chance manipulated)");
    if (score.manipulated_range) detail(dl, "Calibration range (95%)", span(score.manipulated_range));
    detail(dl, "Summary", score.summary);
    if (report.media) detail(dl, "File", report.media.kind + ", " + report.media.width + " × " + report.media.height + " px, " + report.media.format);
    detail(dl, "Submitted by", item.owner);
    detail(dl, "Uploaded", new Date(job.created_at * 1000).toLocaleString());
    const known = report.known_match;
    show("item-known", Boolean(known));
    if (known) {
      $("item-known-text").textContent = "A near-duplicate was judged " + HUMAN[known.verdict] + " on " +
        new Date(known.reviewed_at).toLocaleDateString() + " (" + known.distance + " of 256 bits differ, list " + known.list_name + ").";
    }
    const appeal = job.appeal;
    const pending = appeal && (appeal.state === "open" || appeal.state === "in_review");
    desk.appeal = pending ? appeal.appeal_id : null;
    show("item-appeal", Boolean(pending));
    if (pending) {
      $("appeal-statement").textContent = appeal.statement;
      $("appeal-meta").textContent = STATES[appeal.state] + (appeal.assigned_to ? ", taken by " + appeal.assigned_to : "") +
        "; it contests the decision " + (HUMAN[appeal.contested_verdict] || appeal.contested_verdict) + ".";
      show("take-appeal", appeal.state === "open");
    }
    const list = clear($("item-history"));
    if (reviews.length === 0) list.appendChild(el("li", "None yet.", "muted"));
    reviews.forEach((r) => list.appendChild(el("li", new Date(r.reviewed_at).toLocaleString() + ": " + HUMAN[r.verdict] +
      " by " + (r.reviewer || "a reviewer") + " (" + r.reason + ")")));
    $("item-report").href = "/?job=" + encodeURIComponent(job.job_id);
    $("decision-form").reset();
    show("decision-form", true);
    show("decision-done", false);
    show("decision-error", false);
    show("item", true);
    $("item-title").setAttribute("tabindex", "-1");
    $("item-title").focus();
  }

  function takeAppeal() {
    const appeal = desk.appeal;
    const item = desk.item;  // another row opened while this is in flight sets desk.item to null
    if (!appeal || !item) return;
    api("POST", "/v1/appeals/" + encodeURIComponent(appeal) + "/start").then((answer) => {
      if (answer.status !== 200) {
        $("decision-error").textContent = message(answer);
        show("decision-error", true);
        return;
      }
      openItem(item);
      loadQueue();
    });
  }

  function submitDecision(event) {
    event.preventDefault();
    const chosen = document.querySelector("input[name=verdict]:checked");
    const reason = $("decision-reason").value.trim();
    if (!chosen || !reason || !desk.item) return;
    const body = { verdict: chosen.value, reason };
    const notes = $("decision-notes").value.trim();
    if (notes) body.notes = notes;
    api("POST", "/v1/jobs/" + desk.item.job_id + "/review", body).then((answer) => {
      if (answer.status !== 201) {
        $("decision-error").textContent = message(answer);
        show("decision-error", true);
        return;
      }
      const decided = answer.data.appeals.map((a) => " The appeal is " + STATES[a.state].toLowerCase() + ".").join("");
      $("decision-done").textContent = "Recorded: " + HUMAN[answer.data.review.verdict] + "." + decided;
      show("decision-done", true);
      show("decision-form", false);
      show("take-appeal", false);
      loadQueue();
    });
  }

  function wire() {
    $("key-form").addEventListener("submit", submitKey);
    $("sign-out").addEventListener("click", signOut);
    document.querySelectorAll(".tab").forEach((tab) => tab.addEventListener("click", () => selectTab(tab.dataset.kind)));
    $("take-appeal").addEventListener("click", takeAppeal);
    $("decision-form").addEventListener("submit", submitDecision);
    start();
  }

  document.addEventListener("DOMContentLoaded", wire);
})();
