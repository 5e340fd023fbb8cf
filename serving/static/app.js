// trueframe web form: upload with progress, job polling, access key, then the result view
// (rendered by report.js). Plain JavaScript, no build step, no inline code (strict CSP).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const POLL_MS = 700;
  const STAGES = {
    queued: "Waiting for a free worker…",
    media: "Reading the file…",
    faces: "Looking for faces…",
    models: "Scoring the faces…",
    report: "Writing the report…",
  };
  const state = { file: null, pending: null, jobId: null, pendingJob: null };

  function show(id, visible) {
    $(id).hidden = !visible;
  }

  function reset() {
    state.file = null;
    state.jobId = null;
    if (window.location.search) window.history.replaceState(null, "", "/");
    ["progress-panel", "error-panel", "result"].forEach((id) => show(id, false));
    show("upload-panel", true);
    $("file-input").value = "";
    $("drop-zone").focus();
  }

  function fail(message) {
    show("progress-panel", false);
    show("upload-panel", false);
    $("error-text").textContent = message;
    show("error-panel", true);
    document.querySelector("#error-panel .again").focus();
  }

  function errorMessage(xhrOrBody, status) {
    const body = xhrOrBody && xhrOrBody.error ? xhrOrBody : null;
    if (body) return body.error.message + " (" + body.error.code + ")";
    if (status === 0) return "The service could not be reached. Check your connection and try again.";
    return "The service answered with an unexpected error (HTTP " + status + ").";
  }

  function parse(text) {
    try {
      return JSON.parse(text);
    } catch (e) {
      return null;
    }
  }

  function setAnalysis(fraction, text) {
    $("analysis-progress").value = Math.max(0, Math.min(1, fraction));
    $("analysis-text").textContent = text;
  }

  function stageText(status, partial) {
    const p = partial || {};
    if (status === "queued") return STAGES.queued;
    if (p.stage === "faces" && p.frames_sampled) {
      const done = p.frames_done !== undefined ? p.frames_done + " of " : "";
      return "Looking for faces (" + done + p.frames_sampled + " frames)…";
    }
    if (p.stage === "models" && p.faces_found !== undefined) {
      return "Scoring " + p.faces_found + " face crop(s)…";
    }
    return STAGES[p.stage] || "Analysing…";
  }

  function upload(file) {
    state.file = file;
    show("upload-panel", false);
    show("error-panel", false);
    show("result", false);
    $("progress-name").textContent = file.name;
    $("upload-progress").value = 0;
    $("upload-text").textContent = "";
    setAnalysis(0, "Starts when the upload is done");
    show("progress-panel", true);

    const params = new URLSearchParams({ name: file.name });
    if ($("heatmaps").checked) params.set("heatmaps", "true");
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/analyze?" + params.toString());
    xhr.responseType = "text";
    xhr.upload.addEventListener("progress", (e) => {
      if (!e.lengthComputable) return;
      $("upload-progress").value = e.loaded / e.total;
      $("upload-text").textContent = Math.round((100 * e.loaded) / e.total) + "%";
    });
    xhr.upload.addEventListener("load", () => {
      $("upload-progress").value = 1;
      $("upload-text").textContent = "done";
      setAnalysis(0.02, STAGES.media);
    });
    xhr.addEventListener("load", () => {
      state.jobId = xhr.getResponseHeader("X-Trueframe-Job");
      onAnswer(xhr.status, parse(xhr.responseText));
    });
    xhr.addEventListener("error", () => fail(errorMessage(null, 0)));
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  }

  function onAnswer(status, body) {
    if (status === 200 && body) return done(body);
    if (status === 202 && body && body.job_id) {
      state.jobId = body.job_id;
      return poll(body.job_id);
    }
    if (status === 401) return askForKey();
    if (status === 429) return fail("The service is busy right now. Please try again in a minute.");
    fail(errorMessage(body, status));
  }

  function poll(jobId) {
    fetch("/v1/jobs/" + encodeURIComponent(jobId), { credentials: "same-origin" })
      .then((r) => r.json().then((body) => ({ status: r.status, body })))
      .then(({ status, body }) => {
        if (status !== 200) return fail(errorMessage(body, status));
        if (body.status === "succeeded") return done(body.report, body.appeal);
        if (body.status === "failed") return fail(errorMessage(body, 500));
        if (body.status === "cancelled") return fail("The analysis was cancelled.");
        setAnalysis(body.progress || 0, stageText(body.status, body.partial));
        window.setTimeout(() => poll(jobId), POLL_MS);
      })
      .catch(() => fail(errorMessage(null, 0)));
  }

  function done(report, appeal) {
    // the address names the job, so a reload or a bookmark brings this result back ("/?job=<id>")
    if (state.jobId) window.history.replaceState(null, "", "/?job=" + encodeURIComponent(state.jobId));
    setAnalysis(1, "Done");
    show("progress-panel", false);
    show("upload-panel", false);
    window.TrueframeReport.render(report, state.file);
    showAppeal(appeal || null);
    show("result", true);
    $("verdict-title").setAttribute("tabindex", "-1");
    $("verdict-title").focus();
  }

  const APPEAL_STATES = {
    open: "You asked for a human review. It is waiting for a reviewer.",
    in_review: "A reviewer is looking at your appeal now.",
    upheld: "A reviewer looked again and kept the decision.",
    overturned: "A reviewer looked again and changed the decision.",
  };

  function showAppeal(appeal) {
    // Appeals need the job the result is kept as (every answered upload has one).
    show("appeal-card", Boolean(state.jobId));
    const pending = appeal && (appeal.state === "open" || appeal.state === "in_review");
    $("appeal-state").textContent = appeal ? APPEAL_STATES[appeal.state] || appeal.state : "";
    show("appeal-form", !pending);
    show("appeal-error", false);
  }

  function submitAppeal(event) {
    event.preventDefault();
    const statement = $("appeal-text").value.trim();
    if (!statement || !state.jobId) return;
    fetch("/v1/jobs/" + encodeURIComponent(state.jobId) + "/appeal", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ statement }),
    })
      .then((r) => r.json().then((body) => ({ status: r.status, body })))
      .then(({ status, body }) => {
        if (status !== 201) {
          $("appeal-error").textContent = errorMessage(body, status);
          show("appeal-error", true);
          return;
        }
        $("appeal-text").value = "";
        showAppeal(body);
      })
      .catch(() => {
        $("appeal-error").textContent = errorMessage(null, 0);
        show("appeal-error", true);
      });
  }

  function openJob(jobId) {
    // "/?job=<id>": the result of an earlier analysis, with its human decision and appeal.
    state.jobId = jobId;
    show("upload-panel", false);
    fetch("/v1/jobs/" + encodeURIComponent(jobId), { credentials: "same-origin" })
      .then((r) => r.json().then((body) => ({ status: r.status, body })))
      .then(({ status, body }) => {
        if (status === 401) {
          state.pendingJob = jobId;
          return askForKey();
        }
        if (status !== 200) return fail(errorMessage(body, status));
        if (body.status !== "succeeded") return poll(jobId);
        done(body.report, body.appeal);
      })
      .catch(() => fail(errorMessage(null, 0)));
  }

  function askForKey() {
    state.pending = state.file;
    show("progress-panel", false);
    show("key-panel", true);
    $("key-input").focus();
  }

  function submitKey(event) {
    event.preventDefault();
    const key = $("key-input").value.trim();
    if (!key) return;
    fetch("/v1/session", {
      method: "POST",
      credentials: "same-origin",
      headers: { Authorization: "Bearer " + key },
    }).then((r) => {
      if (r.status !== 204) {
        $("key-error").textContent = "This key was not accepted. Check it and try again.";
        show("key-error", true);
        return;
      }
      $("key-input").value = "";
      show("key-error", false);
      show("key-panel", false);
      if (state.pendingJob) openJob(state.pendingJob);
      else if (state.pending) upload(state.pending);
      else show("upload-panel", true);
      state.pending = null;
      state.pendingJob = null;
    }).catch(() => {
      $("key-error").textContent = errorMessage(null, 0);
      show("key-error", true);
    });
  }

  function pick(files) {
    if (files && files.length > 0) upload(files[0]);
  }

  function wire() {
    const zone = $("drop-zone");
    const input = $("file-input");
    input.addEventListener("change", () => pick(input.files));
    zone.addEventListener("click", (e) => {
      if (e.target.tagName !== "LABEL" && e.target !== input) input.click();
    });
    zone.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        input.click();
      }
    });
    ["dragenter", "dragover"].forEach((type) =>
      zone.addEventListener(type, (e) => {
        e.preventDefault();
        zone.classList.add("dragging");
      })
    );
    ["dragleave", "drop"].forEach((type) =>
      zone.addEventListener(type, () => zone.classList.remove("dragging"))
    );
    zone.addEventListener("drop", (e) => {
      e.preventDefault();
      pick(e.dataTransfer.files);
    });
    document.querySelectorAll(".again").forEach((b) => b.addEventListener("click", reset));
    $("key-form").addEventListener("submit", submitKey);
    $("download-json").addEventListener("click", () => window.TrueframeReport.download());
    $("appeal-form").addEventListener("submit", submitAppeal);
    const jobId = new URLSearchParams(window.location.search).get("job");
    if (jobId) openJob(jobId);
  }

  document.addEventListener("DOMContentLoaded", wire);
})();
