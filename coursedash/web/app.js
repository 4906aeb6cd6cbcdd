// Course Dashboard page: plain JavaScript, no build step, talks only to this server's API.
"use strict";

(function () {
  const TOKEN_KEY = "coursedash.token";
  const BATCH_STATUS = { upcoming: "Upcoming", live: "Live", expired: "Expired" };

  const $ = (id) => document.getElementById(id);
  const state = { course: null, batches: [], batch: null };

  class ApiError extends Error {
    constructor(status, body) {
      const error = (body && body.error) || {};
      super(error.message || `The server answered ${status}.`);
      this.status = status;
      this.code = error.code || "error";
      this.requestId = error.request_id || (body && body.request_id) || null;
    }
  }

  // --- talking to the API ----------------------------------------------------------

  function token() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json", Authorization: `Bearer ${token()}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
    let data = null;
    try {
      data = await response.json();
    } catch (e) {
      data = null;
    }
    if (!response.ok) {
      const err = new ApiError(response.status, data);
      if (response.status === 401) signOut("Your sign-in is not valid any more (" + err.message + "). Paste a new token.");
      throw err;
    }
    return data;
  }

  // --- formatting ------------------------------------------------------------------

  const pad = (n) => String(n).padStart(2, "0");

  function formatDate(iso) {
    if (!iso) return "—";
    const [y, m, d] = iso.split("-");
    return `${d}/${m}/${y}`;
  }

  function formatTime(iso) {
    if (!iso) return "—";
    const t = new Date(iso);
    if (isNaN(t)) return iso;
    return `${pad(t.getUTCDate())}/${pad(t.getUTCMonth() + 1)}/${t.getUTCFullYear()} ` +
      `${pad(t.getUTCHours())}:${pad(t.getUTCMinutes())} UTC`;
  }

  function formatCount(n) {
    return n === null || n === undefined ? "—" : Number(n).toLocaleString("en");
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children) node.append(child);
    return node;
  }

  function say(id, text, kind) {
    const node = $(id);
    node.textContent = text || "";
    node.className = "message" + (kind ? " " + kind : "");
  }

  function refusal(err) {
    switch (err.code) {
      case "open_request_exists":
        return "This report is already requested and being processed" +
          (err.requestId ? ` (request ${err.requestId})` : "") +
          ". You can request it again once it has finished.";
      case "forbidden":
        return "You are not allowed to do this for this batch. " + err.message;
      case "not_found":
        return "Not found, or you have no role on it.";
      case "not_requestable":
        return "This report cannot be requested for this course: " + err.message;
      case "not_ready":
        return "This report is not ready yet.";
      case "expired":
        return "This report has expired; request it again.";
      case "not_cancellable":
        return "This request can no longer be cancelled: " + err.message;
      default:
        return err.message;
    }
  }

  // --- where we are: #course=..&batch=.. so that a reload comes back here ----------

  function readHash() {
    const params = new URLSearchParams(location.hash.slice(1));
    return { course: params.get("course"), batch: params.get("batch") };
  }

  function writeHash() {
    const params = new URLSearchParams();
    if (state.course) params.set("course", state.course.course_id);
    if (state.batch) params.set("batch", state.batch.batch_id);
    history.replaceState(null, "", "#" + params.toString());
  }

  // --- sign in ---------------------------------------------------------------------

  function userOf(jwt) {
    try {
      const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part)).sub || "?";
    } catch (e) {
      return "?";
    }
  }

  function showSignedIn(signedIn) {
    $("sign-in").hidden = signedIn;
    $("who").hidden = !signedIn;
    $("courses").hidden = !signedIn;
    if (!signedIn) {
      $("batches").hidden = true;
      $("batch").hidden = true;
    } else {
      $("who-name").textContent = userOf(token());
    }
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    state.course = state.batch = null;
    showSignedIn(false);
    say("sign-in-message", message || "", message ? "error" : "");
    $("token").focus();
  }

  async function signIn(event) {
    event.preventDefault();
    const value = $("token").value.trim().replace(/^Bearer\s+/i, "");
    if (!value) {
      say("sign-in-message", "Paste a token first.", "error");
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, value);
    try {
      await api("GET", "/api/v1/courses?q=");
    } catch (err) {
      if (err.status !== 401) signOut("Could not sign in: " + err.message);
      return;
    }
    $("token").value = "";
    say("sign-in-message", "");
    showSignedIn(true);
    $("q").focus();
  }

  // --- courses and batches ---------------------------------------------------------

  async function search(event) {
    event.preventDefault();
    const q = $("q").value.trim();
    const list = $("course-list");
    list.replaceChildren();
    say("courses-message", "Searching…");
    let courses;
    try {
      courses = await api("GET", "/api/v1/courses?q=" + encodeURIComponent(q));
    } catch (err) {
      say("courses-message", refusal(err), "error");
      return;
    }
    say("courses-message", courses.length ? `${courses.length} course(s) found.` :
      "No course found that you created or mentor.");
    for (const course of courses) {
      list.append(el("li", {}, el("button", {
        type: "button", class: "choice", onclick: () => chooseCourse(course),
      }, el("span", { class: "name", text: course.name || course.course_id }),
        el("span", { class: "id", text: course.course_id }))));
    }
  }

  async function chooseCourse(course, batchId) {
    state.course = course;
    state.batch = null;
    writeHash();
    $("batch").hidden = true;
    $("batches").hidden = false;
    $("batches-title").textContent = `Batches of ${course.name || course.course_id}`;
    $("batches-title").focus();
    const body = $("batch-table").tBodies[0];
    body.replaceChildren();
    $("figures-as-of").textContent = "";
    say("batches-message", "Loading…");
    try {
      state.batches = await api("GET", `/api/v1/courses/${encodeURIComponent(course.course_id)}/batches`);
    } catch (err) {
      say("batches-message", refusal(err), "error");
      return;
    }
    say("batches-message", state.batches.length ? "" : "This course has no batch you can see.");
    for (const b of state.batches) {
      body.append(el("tr", {},
        el("th", { scope: "row", text: b.name || b.batch_id }),
        el("td", { text: formatDate(b.start_date) }),
        el("td", { text: b.end_date ? formatDate(b.end_date) : "No end date" }),
        el("td", {}, el("span", { class: "pill " + b.status, text: BATCH_STATUS[b.status] || b.status })),
        el("td", { class: "num", text: formatCount(b.enrolment_count) }),
        el("td", { class: "num", text: formatCount(b.completed_count) }),
        el("td", {}, el("button", {
          type: "button", "aria-label": `Choose batch ${b.name || b.batch_id}`, onclick: () => chooseBatch(b),
        }, "Choose")),
      ));
    }
    const times = state.batches.map((b) => b.figures_as_of).filter(Boolean).sort();
    $("figures-as-of").textContent = times.length
      ? `Enrolment figures as of ${formatTime(times[0])}.`
      : "Enrolment figures have not been computed yet.";
    const again = batchId && state.batches.find((b) => b.batch_id === batchId);
    if (again) chooseBatch(again);
  }

  function chooseBatch(batch) {
    state.batch = batch;
    writeHash();
    $("batch").hidden = false;
    $("batch-title").textContent = `${batch.name || batch.batch_id} (${BATCH_STATUS[batch.status] || batch.status})`;
    const select = $("report-type");
    select.replaceChildren(...batch.report_types.map((t) =>
      el("option", { value: t.report_type, text: t.name })));
    const none = batch.report_types.length === 0;
    select.disabled = $("password").disabled = $("request-button").disabled = none;
    say("request-message", none ? "You may not request reports for this batch." : "");
    passwordNeed();
    $("batch-title").focus();
    loadDownloads();
  }

  // --- requests and downloads ------------------------------------------------------

  function selectedType() {
    return (state.batch.report_types || []).find((t) => t.report_type === $("report-type").value);
  }

  function passwordNeed() {
    const t = state.batch && selectedType();
    const required = Boolean(t && t.password_required);
    $("password-need").textContent = required ? "(required)" : "(optional)";
    $("password").required = required;
  }

  async function requestReport(event) {
    event.preventDefault();
    const t = selectedType();
    if (!t) return;
    const password = $("password").value;
    if (t.password_required && !password) {
      say("request-message", `A password is required for the ${t.name}.`, "error");
      $("password").focus();
      return;
    }
    const body = { course_id: state.course.course_id, batch_id: state.batch.batch_id, report_type: t.report_type };
    if (password) body.password = password;
    $("request-button").disabled = true;
    try {
      const created = await api("POST", "/api/v1/reports", body);
      $("password").value = "";
      say("request-message", `${t.name} requested. It will be ready to download after tonight's run.` +
        (noticeHint(created) ? " " + noticeHint(created) : ""), "ok");
    } catch (err) {
      say("request-message", refusal(err), "error");
    } finally {
      $("request-button").disabled = false;
    }
    loadDownloads();
  }

  // Whether someone will be told when this request is final; never says to whom.
  function noticeHint(r) {
    const notify = r.notify || {};
    if (notify.email === "pending") {
      return r.requested_by === userOf(token()) ? "We will e-mail you when it is ready."
        : "The requester will be e-mailed when it is ready.";
    }
    return notify.webhook === "pending" ? "A notice will be sent when it is ready." : "";
  }

  async function cancelRequest(r) {
    try {
      await api("DELETE", `/api/v1/reports/${encodeURIComponent(r.request_id)}`);
    } catch (err) {
      await loadDownloads();
      say("downloads-message", refusal(err), "error");
      return;
    }
    say("request-message", ""); // its "requested" line no longer holds
    await loadDownloads();
    say("downloads-message", `${r.report_name} request cancelled. You can request it again.`, "ok");
  }

  async function loadDownloads() {
    const batch = state.batch;
    if (!batch) return;
    const body = $("download-table").tBodies[0];
    say("downloads-message", "Loading…");
    let rows;
    try {
      rows = await api("GET", `/api/v1/courses/${encodeURIComponent(state.course.course_id)}` +
        `/batches/${encodeURIComponent(batch.batch_id)}/reports`);
    } catch (err) {
      say("downloads-message", refusal(err), "error");
      return;
    }
    if (state.batch !== batch) return; // another batch was chosen meanwhile
    body.replaceChildren();
    say("downloads-message", rows.length ? `Updated ${formatTime(new Date().toISOString())}.` :
      "No report has been requested for this batch yet.");
    const me = userOf(token());
    for (const r of rows) {
      const action = r.status === "SUCCESS"
        ? el("button", { type: "button", "aria-label": `Download ${r.report_name} requested ${formatTime(r.submitted_at)}`,
          onclick: () => download(r) }, "Download")
        : (r.status === "FAILED" && r.error ? el("span", { class: "hint", text: r.error }) : "");
      const more = [];
      if (r.cancellable && r.requested_by === me) {
        more.push(el("button", { type: "button", class: "cancel",
          "aria-label": `Cancel ${r.report_name} requested ${formatTime(r.submitted_at)}`,
          onclick: () => cancelRequest(r) }, "Cancel"));
      }
      if (noticeHint(r)) more.push(el("span", { class: "hint notice", text: noticeHint(r) }));
      body.append(el("tr", {},
        el("th", { scope: "row", text: r.report_name }),
        el("td", { text: formatTime(r.submitted_at) }),
        el("td", {}, el("span", { class: "pill " + r.status.toLowerCase(), text: r.status_label })),
        el("td", { text: r.status === "SUCCESS" || r.status === "EXPIRED" ? formatTime(r.completed_at) : "—" }),
        el("td", { class: "num", text: formatCount(r.row_count) }),
        el("td", {}, action, ...more),
      ));
    }
  }

  async function download(r) {
    // The API hands out a one-minute link for this report; the browser follows it like any
    // download (no token in the URL, no file held in memory, works for signed S3 links too).
    try {
      const link = await api("POST", `/api/v1/reports/${encodeURIComponent(r.request_id)}/download-link`);
      window.location.assign(link.url);
      say("downloads-message", `Downloading ${r.report_name}…`, "ok");
    } catch (err) {
      say("downloads-message", refusal(err), "error");
      loadDownloads();
    }
  }

  // --- start -----------------------------------------------------------------------

  async function restore() {
    const where = readHash();
    if (!where.course) return;
    try {
      const courses = await api("GET", "/api/v1/courses?q=" + encodeURIComponent(where.course));
      const course = courses.find((c) => c.course_id === where.course);
      if (course) await chooseCourse(course, where.batch);
    } catch (err) {
      say("courses-message", refusal(err), "error");
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("sign-in-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", () => signOut());
    $("search-form").addEventListener("submit", search);
    $("request-form").addEventListener("submit", requestReport);
    $("report-type").addEventListener("change", passwordNeed);
    $("refresh").addEventListener("click", loadDownloads);
    showSignedIn(Boolean(token()));
    if (token()) restore();
  });
})();
