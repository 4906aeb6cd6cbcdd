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

  async function api(method, path, body, { signOutOn401 = true } = {}) {
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
      if (response.status === 401 && signOutOn401) {
        signOut("Your sign-in is not valid any more (" + err.message + "). Paste a new token.");
      }
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

  // --- the figures: how each batch is doing, drawn as inline SVG ------------------

  const SVG_NS = "http://www.w3.org/2000/svg";
  // The progress report's Progress in four bands. Each fill is a pattern (index.html) as well as a
  // colour, so a band keeps its meaning without colour vision; every chart has its numbers in text too.
  const BANDS = [
    { key: "not_started", name: "Not started", range: "0 %", fill: "url(#fill-not-started)" },
    { key: "started", name: "Started", range: "1–49 %", fill: "url(#fill-started)" },
    { key: "past_half", name: "Past half", range: "50–99 %", fill: "url(#fill-past-half)" },
    { key: "completed", name: "Completed", range: "100 %", fill: "#166534" },
  ];

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    for (const child of children) node.append(child);
    return node;
  }

  function share(n, total) {
    return total ? `${Math.round((100 * n) / total)} %` : "—";
  }

  function bandsSentence(bands) {
    return BANDS.map((b) => `${formatCount(bands[b.key])} ${b.name.toLowerCase()} (${b.range})`).join(", ");
  }

  // A stacked bar, each band as wide as its share of the learners. Widths are percentages of the
  // bar, so it fits any width without stretching its patterns.
  function bandsBar(bands, height) {
    const total = BANDS.reduce((sum, b) => sum + (bands[b.key] || 0), 0);
    const bar = svg("svg", { class: "bands-bar", width: "100%", height, focusable: "false" });
    let before = 0;
    for (const b of BANDS) {
      const n = bands[b.key] || 0;
      if (!n || !total) continue;
      const x = (100 * before) / total;
      before += n;
      bar.append(svg("rect", {
        x: `${x.toFixed(3)}%`, y: 0, width: `${((100 * before) / total - x).toFixed(3)}%`, height: "100%",
        fill: b.fill, class: "band", "data-band": b.key, "data-count": n,
      }));
    }
    bar.append(svg("rect", { x: 0, y: 0, width: "100%", height: "100%", class: "bar-frame" }));
    return bar;
  }

  function swatch(band) {
    return svg("svg", { class: "swatch", viewBox: "0 0 14 14", width: 14, height: 14, "aria-hidden": "true",
      focusable: "false" }, svg("rect", { x: 0.5, y: 0.5, width: 13, height: 13, fill: band.fill, class: "swatch-box" }));
  }

  // In a batch's row: the bar, named by its numbers for a screen reader (and as a tooltip).
  function progressCell(b) {
    if (!b.progress_bands) return el("td", { "data-label": "Progress", class: "muted", text: "Not computed yet" });
    if (!b.enrolment_count) return el("td", { "data-label": "Progress", class: "muted", text: "No learners yet" });
    const label = `Progress of ${formatCount(b.enrolment_count)} learners: ${bandsSentence(b.progress_bands)}`;
    const bar = bandsBar(b.progress_bands, 16);
    bar.setAttribute("role", "img");
    bar.setAttribute("aria-label", label);
    bar.prepend(svg("title", {}, label));
    return el("td", { "data-label": "Progress", class: "bar-cell" }, bar);
  }

  // The chosen batch's panel: the bands with counts and shares, the figures, and the weekly curve.
  function showFigures(b) {
    const computed = Boolean(b.progress_bands);
    $("figures-body").hidden = !computed;
    if (!computed) {
      $("figures-time").textContent = "These figures have not been computed yet: they appear after the next " +
        "nightly run.";
      return;
    }
    $("figures-time").textContent = `As of ${formatTime(b.figures_as_of)}, from the learners and formulas ` +
      "of this batch's Course Progress report.";
    const total = b.enrolment_count;
    // The table below says what the bar shows: the bar itself is hidden from screen readers.
    const bar = total ? bandsBar(b.progress_bands, 28) : el("p", { class: "hint", text: "No learners yet." });
    if (total) bar.setAttribute("aria-hidden", "true");
    $("bands-chart").replaceChildren(bar);
    $("bands-table").tBodies[0].replaceChildren(...BANDS.map((band) => el("tr", { "data-band": band.key },
      el("th", { scope: "row" }, swatch(band), band.name),
      el("td", { text: band.range }),
      el("td", { class: "num", text: formatCount(b.progress_bands[band.key]) }),
      el("td", { class: "num", text: share(b.progress_bands[band.key], total) }))));
    $("stat-enrolled").textContent = formatCount(total);
    $("stat-completed").textContent = formatCount(b.completed_count);
    $("stat-certificates").textContent = formatCount(b.certificates_issued);
    $("stat-score").textContent = b.average_total_score === null ? "None yet" : b.average_total_score.toFixed(2);
    weeklyFigures(b.weekly_enrolments || []);
  }

  let weekly = { weeks: [], width: 0 };

  function weeklyFigures(weeks) {
    weekly = { weeks, width: 0 };
    drawWeekly();
    $("weekly-table").tBodies[0].replaceChildren(...weeks.map((w) => el("tr", {},
      el("th", { scope: "row", text: formatDate(w.week_start) }), el("td", { class: "num", text: formatCount(w.count) }))));
    const top = Math.max(0, ...weeks.map((w) => w.count));
    $("weekly-axis").textContent = weeks.length
      ? `From the week of ${formatDate(weeks[0].week_start)} to the week of ` +
        `${formatDate(weeks[weeks.length - 1].week_start)}; the dashed line marks the busiest week's ` +
        `${formatCount(top)} enrolment${top === 1 ? "" : "s"}.`
      : "";
  }

  // Drawn to the box's width (and again when it changes), so that the points stay round.
  function drawWeekly() {
    const box = $("weekly-chart");
    const weeks = weekly.weeks;
    weekly.width = box.clientWidth;
    if (!weeks.length) {
      box.replaceChildren(el("p", { class: "hint", text: "No enrolment with a date yet." }));
      return;
    }
    const width = Math.max(weekly.width, 160);
    const height = 140;
    const pad = 8;
    const top = Math.max(1, ...weeks.map((w) => w.count));
    const x = (i) => (weeks.length === 1 ? width / 2 : pad + (i * (width - 2 * pad)) / (weeks.length - 1));
    const y = (n) => height - pad - (n * (height - 2 * pad)) / top;
    const peak = weeks.reduce((a, w) => (w.count > a.count ? w : a), weeks[0]);
    const all = weeks.reduce((sum, w) => sum + w.count, 0);
    const chart = svg("svg", {
      class: "weekly", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
      "aria-label": `Enrolments per week: ${weeks.length} week${weeks.length === 1 ? "" : "s"} from the week of ` +
        `${formatDate(weeks[0].week_start)} to the week of ${formatDate(weeks[weeks.length - 1].week_start)}, ` +
        `${formatCount(all)} in all, at most ${formatCount(peak.count)} (the week of ${formatDate(peak.week_start)}). ` +
        "The table below lists every week.",
    });
    const points = weeks.map((w, i) => `${x(i).toFixed(1)},${y(w.count).toFixed(1)}`);
    chart.append(svg("line", { x1: 0, x2: width, y1: y(top), y2: y(top), class: "grid-line" }));
    if (weeks.length > 1) {
      chart.append(svg("polygon", {
        points: [`${x(0).toFixed(1)},${y(0)}`, ...points, `${x(weeks.length - 1).toFixed(1)},${y(0)}`].join(" "),
        class: "weekly-area",
      }));
      chart.append(svg("polyline", { points: points.join(" "), class: "weekly-line" }));
    } else {
      chart.append(svg("line", { x1: x(0), x2: x(0), y1: y(0), y2: y(weeks[0].count), class: "weekly-line" }));
    }
    chart.append(svg("line", { x1: 0, x2: width, y1: y(0), y2: y(0), class: "axis-line" }));
    weeks.forEach((w, i) => chart.append(svg("circle", {
      cx: x(i).toFixed(1), cy: y(w.count).toFixed(1), r: weeks.length > 40 ? 2 : 3.5, class: "weekly-point",
      "data-week": w.week_start, "data-count": w.count,
    }, svg("title", {}, `Week of ${formatDate(w.week_start)}: ${formatCount(w.count)}`))));
    box.replaceChildren(chart);
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
      await api("GET", "/api/v1/courses?q=", undefined, { signOutOn401: false });
    } catch (err) {
      signOut(err.status === 401
        ? "This token was not accepted (" + err.message + "). Paste the whole output of coursedash token YOUR_USER_ID."
        : "Could not sign in: " + err.message);
      return;
    }
    $("token").value = "";
    say("sign-in-message", "");
    showSignedIn(true);
    $("q").focus();
    await restore(); // a deep link opened before signing in, or else the caller's courses
  }

  // --- courses and batches ---------------------------------------------------------

  function search(event) {
    event.preventDefault();
    listCourses($("q").value.trim());
  }

  // With an empty q the API lists every course the caller may see: shown on sign-in.
  async function listCourses(q, notice) {
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
    let text;
    if (q) {
      text = courses.length ? `${courses.length} of your courses match “${q}”.` : `None of your courses matches “${q}”.`;
    } else {
      text = courses.length
        ? `Your courses (${courses.length}): those you created, or where you created or mentor a batch. ` +
          "Type part of a name or id to narrow the list."
        : "You have no course yet: none that you created, and no batch that you created or mentor.";
    }
    say("courses-message", notice ? `${notice} ${text}` : text, notice ? "error" : "");
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
        el("td", { "data-label": "Start date", text: formatDate(b.start_date) }),
        el("td", { "data-label": "End date", text: b.end_date ? formatDate(b.end_date) : "No end date" }),
        el("td", { "data-label": "Status" },
          el("span", { class: "pill " + b.status, text: BATCH_STATUS[b.status] || b.status })),
        el("td", { class: "num", "data-label": "Total enrolment", text: formatCount(b.enrolment_count) }),
        el("td", { class: "num", "data-label": "Completed", text: formatCount(b.completed_count) }),
        progressCell(b),
        el("td", {}, el("button", {
          type: "button", "aria-label": `Choose batch ${b.name || b.batch_id}`, onclick: () => chooseBatch(b),
        }, "Choose")),
      ));
    }
    const times = state.batches.map((b) => b.figures_as_of).filter(Boolean).sort();
    $("figures-as-of").textContent = times.length
      ? `Enrolment figures as of ${formatTime(times[0])}.`
      : "Enrolment figures have not been computed yet.";
    if (!batchId) return;
    const again = state.batches.find((b) => b.batch_id === batchId);
    if (again) chooseBatch(again);
    else say("batches-message", `Batch “${batchId}” is not one you can see in this course: it does not exist, ` +
      "or you are not its creator or mentor. Choose one of the batches below.", "error");
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
    showFigures(batch);
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
    for (const r of rows) body.append(downloadRow(r));
  }

  function requester(r) {
    return r.requested_by === userOf(token()) ? "you" : r.requested_by;
  }

  function sentence(text) {
    const s = text.trim();
    return s.charAt(0).toUpperCase() + s.slice(1) + (/[.!?]$/.test(s) ? "" : ".");
  }

  // Why a request failed; the stored message also says whether and when it is tried again.
  function statusDetail(r) {
    if (r.status !== "FAILED") return null;
    return el("span", { class: "detail" }, sentence(r.error || "the report could not be built"));
  }

  function lockIcon() {
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 16 16");
    svg.setAttribute("class", "lock");
    svg.setAttribute("aria-hidden", "true");
    const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    path.setAttribute("d", "M4 7V5a4 4 0 0 1 8 0v2h1v8H3V7h1zm2 0h4V5a2 2 0 0 0-4 0v2z");
    svg.append(path);
    return svg;
  }

  // Whose password opens the zip: a mentor needs to know it is the creator's.
  function passwordCell(r) {
    if (r.password_protected === true) {
      const whose = requester(r) === "you" ? "yours" : `set by ${r.requested_by}`;
      return el("td", { class: "password" }, lockIcon(), `password: ${whose}`);
    }
    // null: failed for good or expired, there is no zip to open.
    return el("td", { class: "password", text: r.password_protected === false ? "no password" : "" });
  }

  // What the report left out or showed as it came, beside its download: counts and reasons only.
  function dataNotes(r) {
    const notes = r.data_notes || [];
    if (!notes.length) return "";
    return el("div", { class: "notes" },
      el("span", { class: "detail", text: "About the data:" }),
      el("ul", {}, ...notes.map((n) => el("li", { text: sentence(n.reason) }))));
  }

  function actionCell(r) {
    const parts = [];
    if (r.status === "SUCCESS") {
      parts.push(el("button", {
        type: "button", "aria-label": `Download ${r.report_name} requested ${formatTime(r.submitted_at)}`,
        onclick: () => download(r),
      }, "Download"));
    }
    if (r.cancellable && r.requested_by === userOf(token())) {
      parts.push(el("button", {
        type: "button", class: "cancel", "aria-label": `Cancel ${r.report_name} requested ${formatTime(r.submitted_at)}`,
        onclick: () => cancelRequest(r),
      }, "Cancel"));
    }
    const hint = noticeHint(r);
    if (hint) parts.push(el("span", { class: "hint notice", text: hint }));
    return el("td", {}, ...parts, dataNotes(r));
  }

  function downloadRow(r) {
    return el("tr", { "data-request-id": r.request_id },
      el("th", { scope: "row", text: r.report_name }),
      el("td", { "data-label": "Requested" }, formatTime(r.submitted_at),
        el("span", { class: "detail", text: `by ${requester(r)}` })),
      el("td", { "data-label": "Status" },
        el("span", { class: "pill " + r.status.toLowerCase(), text: r.status_label }), statusDetail(r) || ""),
      el("td", { "data-label": "Generated",
        text: r.status === "SUCCESS" || r.status === "EXPIRED" ? formatTime(r.completed_at) : "—" }),
      el("td", { class: "num", "data-label": "Rows", text: formatCount(r.row_count) }),
      passwordCell(r),
      actionCell(r),
    );
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

  // Back to the course and batch of the address (a reload or a shared link), else the caller's courses.
  async function restore() {
    const where = readHash();
    if (!where.course) return listCourses("");
    let courses;
    try {
      courses = await api("GET", "/api/v1/courses?q=" + encodeURIComponent(where.course));
    } catch (err) {
      say("courses-message", refusal(err), "error");
      return;
    }
    const course = courses.find((c) => c.course_id === where.course);
    if (course) return chooseCourse(course, where.batch);
    history.replaceState(null, "", "#");
    return listCourses("", `Course “${where.course}” is not one you can see: it does not exist, ` +
      "or you have no role on it.");
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("sign-in-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", () => signOut());
    $("search-form").addEventListener("submit", search);
    $("request-form").addEventListener("submit", requestReport);
    $("report-type").addEventListener("change", passwordNeed);
    $("refresh").addEventListener("click", loadDownloads);
    $("bands-legend").replaceChildren(...BANDS.map((b) => el("li", {}, swatch(b), `${b.name} (${b.range})`)));
    new ResizeObserver(() => {
      if ($("weekly-chart").clientWidth !== weekly.width) drawWeekly();
    }).observe($("weekly-chart"));
    showSignedIn(Boolean(token()));
    if (token()) restore();
  });
})();
