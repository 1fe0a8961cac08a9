// aura-actors web page: start video renders, watch every job live, cancel, retry and
// delete them, read their logs.
//
// Plain JavaScript, no build step. One EventSource on /api/events carries the
// events of every job of the caller; GET /api/jobs gives the starting point and
// is fetched again after every reconnect so nothing is missed.
"use strict";

(() => {
  const TOKEN_KEY = "aura-actors.token";
  const VIDEO_STAGES = ["Script", "Voice", "Visuals", "Composition", "Rendering"];
  const TERMINAL = new Set(["Done", "Failed", "Canceled"]);
  const JOB_EVENTS = [
    "job-status",
    "step-status",
    "step-progress",
    "job-completed",
    "job-failed",
    "job-cancelled",
    "warning",
  ];
  const PAGE_SIZE = 50;
  const FIRST_RETRY_MS = 1000;
  const MAX_RETRY_MS = 30000;
  const MAX_WARNINGS = 20;
  const SIZE_UNITS = ["kB", "MB", "GB", "TB"];
  const DELETES_AT_ONCE = 4;

  const $ = (selector, root = document) => root.querySelector(selector);

  const ui = {
    conn: $("#connection"),
    connText: $("#connection .conn-text"),
    connDetail: $("#connection .conn-detail"),
    reconnectNow: $("#reconnect-now"),
    signOut: $("#sign-out"),
    auth: $("#auth"),
    authForm: $("#auth-form"),
    token: $("#token"),
    authError: $("#auth-error"),
    form: $("#new-job"),
    topic: $("#topic"),
    duration: $("#duration"),
    formError: $("#form-error"),
    start: $("#start"),
    list: $("#job-list"),
    empty: $("#empty"),
    summary: $("#summary"),
    notice: $("#notice"),
    older: $("#load-older"),
    clear: $("#clear-finished"),
    announcer: $("#announcer"),
    template: $("#job-template"),
  };

  // -- storage (a browser may refuse it: private mode, disabled storage) ---------------

  const tokenStore = {
    get() {
      try {
        return window.localStorage.getItem(TOKEN_KEY) || "";
      } catch {
        return "";
      }
    },
    set(value) {
      try {
        if (value) window.localStorage.setItem(TOKEN_KEY, value);
        else window.localStorage.removeItem(TOKEN_KEY);
      } catch {
        /* the token then lives for this page only */
      }
    },
  };

  const state = {
    token: tokenStore.get(),
    jobs: new Map(), // id -> job record
    deleted: new Set(), // ids deleted from the server by this page: their news is ignored
    lastEventId: null, // newest id received on the stream
    es: null,
    retryDelay: FIRST_RETRY_MS,
    retryTimer: 0,
    retryAt: 0,
    refreshOnOpen: false,
    nextCursor: null,
    loadedOlder: false,
    authNeeded: false,
    session: 0, // bumped whenever the page starts over (new token)
  };

  // -- event ids: "<unixMillis>-<counter>", compared as a pair of integers --------------

  function parseId(id) {
    const match = /^(\d+)-(\d+)$/.exec(id || "");
    return match ? [Number(match[1]), Number(match[2])] : null;
  }

  function cmpId(a, b) {
    const x = parseId(a);
    const y = parseId(b);
    if (!x || !y) return x ? 1 : y ? -1 : 0;
    return x[0] - y[0] || x[1] - y[1];
  }

  function newerId(a, b) {
    return cmpId(a, b) >= 0 ? a : b;
  }

  // -- HTTP --------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message, details) {
      super(message);
      this.status = status;
      this.code = code;
      this.details = details || [];
    }
  }

  async function api(path, { method = "GET", body } = {}) {
    const session = state.session;
    const headers = { Accept: "application/json" };
    if (state.token) headers.Authorization = `Bearer ${state.token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
      });
    } catch {
      throw new ApiError(0, "network", "Cannot reach the server.");
    }
    const text = await response.text().catch(() => "");
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (response.status === 401) {
      if (session === state.session) needToken(Boolean(state.token));
      throw new ApiError(401, "unauthorized", "An access token is needed.");
    }
    if (!response.ok) {
      const error = (data && data.error) || {};
      throw new ApiError(
        response.status,
        error.code || `http_${response.status}`,
        error.message || response.statusText || `HTTP ${response.status}`,
        error.details,
      );
    }
    return data;
  }

  // -- jobs ----------------------------------------------------------------------------

  function createJob(id) {
    const job = {
      id,
      pipeline: null,
      params: {},
      status: "Queued",
      stage: null,
      stepIndex: null,
      totalSteps: null,
      progressPct: 0,
      message: "",
      etaSeconds: null,
      etaAt: 0,
      currentItem: null,
      totalItems: null,
      createdAt: null,
      startedAt: null,
      finishedAt: null,
      durationSeconds: null,
      artifacts: [],
      error: null,
      warnings: [],
      warningIds: new Set(),
      streamId: null, // newest stream event applied
      snapshotId: null, // lastEventId of the newest snapshot applied
      lost: false, // the server no longer knows it (e.g. it restarted)
      cancelling: false,
      retrying: false,
      loading: false,
      retryOf: null,
      log: { open: false, lines: [], version: 0, loading: false, again: false, error: "" },
      el: null,
    };
    state.jobs.set(id, job);
    return job;
  }

  function jobTitle(job) {
    const topic = job.params && typeof job.params.topic === "string" ? job.params.topic : "";
    if (topic) return topic;
    if (job.pipeline) return `${capitalize(job.pipeline)} job`;
    return `Job ${job.id.slice(0, 6)}`;
  }

  function isFinal(job) {
    return TERMINAL.has(job.status);
  }

  function setStage(job, stage) {
    if (!stage || stage === job.stage) return;
    job.stage = stage;
    job.currentItem = null;
    job.totalItems = null;
    if (job.pipeline === "video" || VIDEO_STAGES.includes(stage)) {
      const index = VIDEO_STAGES.indexOf(stage);
      if (index >= 0) {
        job.stepIndex = index;
        job.totalSteps = VIDEO_STAGES.length;
      }
    }
  }

  function raiseProgress(job, pct) {
    if (typeof pct === "number" && Number.isFinite(pct)) {
      job.progressPct = Math.min(100, Math.max(job.progressPct, pct));
    }
  }

  function setEta(job, seconds) {
    job.etaSeconds = typeof seconds === "number" && Number.isFinite(seconds) ? seconds : null;
    job.etaAt = performance.now();
  }

  function idTime(id) {
    const parsed = parseId(id);
    return parsed ? new Date(parsed[0]).toISOString() : null;
  }

  /** Merge a snapshot from the REST API; older than what the stream told us, keep ours. */
  function applySnapshot(snap) {
    if (!snap || typeof snap.id !== "string" || state.deleted.has(snap.id)) return null;
    const job = state.jobs.get(snap.id) || createJob(snap.id);
    job.pipeline = snap.pipeline || job.pipeline;
    job.retryOf = snap.retryOf || job.retryOf;
    job.params = snap.params || job.params;
    job.createdAt = snap.createdAt || job.createdAt;
    job.startedAt = snap.startedAt || job.startedAt;
    job.lost = false;
    const known = newerId(job.streamId, job.snapshotId);
    // A terminal snapshot always wins over a live state: after a restart the server
    // may have ended a job (e.g. interrupted) without an event this page could see.
    const fresh =
      !known ||
      !snap.lastEventId ||
      cmpId(snap.lastEventId, known) > 0 ||
      (TERMINAL.has(snap.status) && !isFinal(job));
    if (fresh && !(isFinal(job) && !TERMINAL.has(snap.status))) {
      if (snap.stage !== job.stage) setStage(job, snap.stage);
      job.status = snap.status || job.status;
      raiseProgress(job, snap.progressPct);
      job.message = snap.message || "";
      setEta(job, snap.etaSeconds);
      job.finishedAt = snap.finishedAt || job.finishedAt;
      if (snap.error) job.error = snap.error;
      if (job.status === "Done") job.progressPct = 100;
      if (snap.lastEventId) job.snapshotId = snap.lastEventId;
      if (job.log.open) refreshLog(job); // news the stream did not bring (a reconnect)
    }
    if (Array.isArray(snap.artifacts) && snap.artifacts.length >= job.artifacts.length) {
      job.artifacts = snap.artifacts;
    }
    if (isFinal(job)) job.finishedAt = job.finishedAt || snap.finishedAt;
    scheduleRender(job);
    return job;
  }

  /** Apply one stream event. Duplicates (by id) are dropped; older-than-snapshot news is not applied. */
  function applyEvent(type, id, data) {
    if (!data || typeof data.jobId !== "string" || state.deleted.has(data.jobId)) return;
    let job = state.jobs.get(data.jobId);
    if (!job) {
      job = createJob(data.jobId);
      job.createdAt = idTime(id);
      fetchJob(job); // who is it? (its pipeline and params)
    }
    if (id) {
      if (job.streamId && cmpId(id, job.streamId) <= 0) return;
      job.streamId = id;
    }
    job.lost = false;
    const stale = Boolean(id && job.snapshotId && cmpId(id, job.snapshotId) <= 0);
    const final = isFinal(job);
    switch (type) {
      case "job-status":
        if (stale || final) break;
        job.status = data.status;
        setStage(job, data.stage);
        raiseProgress(job, data.progressPct);
        if (data.status === "Running" && !job.startedAt) job.startedAt = idTime(id);
        if (TERMINAL.has(data.status)) {
          job.finishedAt = job.finishedAt || idTime(id);
          setEta(job, null);
        }
        break;
      case "step-status":
        if (stale || final) break;
        setStage(job, data.step);
        if (Number.isInteger(data.stepIndex)) job.stepIndex = data.stepIndex;
        if (Number.isInteger(data.totalSteps)) job.totalSteps = data.totalSteps;
        if (job.status === "Queued") job.status = "Running";
        break;
      case "step-progress":
        if (stale || final) break;
        setStage(job, data.step);
        raiseProgress(job, data.progressPct);
        job.message = data.message || "";
        setEta(job, data.etaSeconds);
        job.currentItem = Number.isInteger(data.currentItem) ? data.currentItem : null;
        job.totalItems = Number.isInteger(data.totalItems) ? data.totalItems : null;
        if (job.status === "Queued") job.status = "Running";
        break;
      case "warning":
        addWarning(job, id, data.step, data.message);
        break;
      case "job-completed":
        if (final && job.status !== "Done") break;
        job.status = "Done";
        job.progressPct = 100;
        job.artifacts = Array.isArray(data.artifacts) ? data.artifacts : job.artifacts;
        job.durationSeconds = typeof data.durationSeconds === "number" ? data.durationSeconds : null;
        job.finishedAt = job.finishedAt || idTime(id);
        job.message = "";
        setEta(job, null);
        if (!stale) announce(`${jobTitle(job)}: done.`);
        break;
      case "job-failed":
        if (final && job.status !== "Failed") break;
        job.status = "Failed";
        setStage(job, data.step);
        job.error = { message: data.errorMessage || "The job failed.", errors: data.errors || [] };
        job.message = "";
        job.finishedAt = job.finishedAt || idTime(id);
        setEta(job, null);
        if (!stale) announce(`${jobTitle(job)}: failed. ${job.error.message}`);
        break;
      case "job-cancelled":
        if (final && job.status !== "Canceled") break;
        job.status = "Canceled";
        job.message = data.message || "Canceled.";
        job.finishedAt = job.finishedAt || idTime(id);
        setEta(job, null);
        if (!stale) announce(`${jobTitle(job)}: canceled.`);
        break;
      default:
        return;
    }
    // An open log follows the job: each event but progress may have added lines.
    if (type !== "step-progress" && job.log.open) refreshLog(job);
    scheduleRender(job);
  }

  function addWarning(job, id, step, message) {
    const key = id || `${step}|${message}`;
    if (job.warningIds.has(key)) return;
    job.warningIds.add(key);
    job.warnings.push({ step: step || null, message: message || "warning" });
    if (job.warnings.length > MAX_WARNINGS) job.warnings.splice(0, job.warnings.length - MAX_WARNINGS);
  }

  async function fetchJob(job) {
    if (job.loading) return;
    job.loading = true;
    try {
      applySnapshot(await api(`/api/jobs/${encodeURIComponent(job.id)}`));
    } catch (error) {
      if (error.status === 404) markLost(job);
    } finally {
      job.loading = false;
    }
  }

  function markLost(job) {
    if (job.lost) return;
    job.lost = true;
    job.cancelling = false;
    if (!isFinal(job)) announce(`${jobTitle(job)}: lost; the server no longer knows it.`);
    scheduleRender(job);
  }

  /** GET /api/jobs: the starting point, and the catch-up after every reconnect. */
  async function loadJobs() {
    const session = state.session;
    const page = await api(`/api/jobs?limit=${PAGE_SIZE}`);
    if (session !== state.session) return null;
    const seen = new Set();
    for (const snap of page.jobs || []) {
      applySnapshot(snap);
      seen.add(snap.id);
    }
    if (!state.loadedOlder) state.nextCursor = page.nextCursor || null;
    // Jobs the page knows but the server did not list: gone (a restarted server
    // forgets them) or merely older than this page of the list.
    for (const job of state.jobs.values()) {
      if (seen.has(job.id) || job.lost) continue;
      if (!isFinal(job)) fetchJob(job);
      else if (!page.nextCursor) markLost(job);
    }
    updateChrome();
    return page;
  }

  async function loadOlder() {
    if (!state.nextCursor) return;
    ui.older.disabled = true;
    try {
      const page = await api(
        `/api/jobs?limit=${PAGE_SIZE}&cursor=${encodeURIComponent(state.nextCursor)}`,
      );
      for (const snap of page.jobs || []) applySnapshot(snap);
      state.nextCursor = page.nextCursor || null;
      state.loadedOlder = true;
    } catch (error) {
      showNotice(error.message);
    } finally {
      ui.older.disabled = false;
      updateChrome();
    }
  }

  // -- the event stream ----------------------------------------------------------------

  /** Where a fresh EventSource should resume. */
  function resumePoint() {
    if (state.lastEventId) return state.lastEventId;
    // First connection: replay from just before the oldest live job began, so its
    // warnings show too (state older than the snapshots is not applied again).
    let resume = null;
    let oldestLive = null;
    for (const job of state.jobs.values()) {
      resume = job.snapshotId ? newerId(resume, job.snapshotId) : resume;
      if (!isFinal(job) && job.createdAt) {
        const millis = Date.parse(job.createdAt);
        if (Number.isFinite(millis) && (oldestLive === null || millis < oldestLive)) oldestLive = millis;
      }
    }
    if (oldestLive !== null) return `${Math.max(0, oldestLive - 1)}-0`;
    return resume;
  }

  function openStream() {
    closeStream();
    const params = new URLSearchParams();
    if (state.token) params.set("access_token", state.token);
    const resume = resumePoint();
    if (resume) params.set("lastEventId", resume);
    const query = params.toString();
    const es = new EventSource(`/api/events${query ? `?${query}` : ""}`);
    state.es = es;
    es.addEventListener("open", () => {
      if (es !== state.es) return;
      state.retryDelay = FIRST_RETRY_MS;
      setConnection("live");
      if (state.refreshOnOpen) {
        loadJobs().catch(() => {});
      }
      state.refreshOnOpen = true;
    });
    for (const type of JOB_EVENTS) es.addEventListener(type, onStreamEvent);
    es.addEventListener("error", (event) => {
      if (es !== state.es) return;
      if (typeof event.data === "string") {
        onServerError(event); // an `event: error` sent by the server
        return;
      }
      if (es.readyState === EventSource.CLOSED) {
        // The browser gave up (an HTTP error, such as 503 while the server stops,
        // or 401). Start over ourselves, with backoff.
        closeStream();
        scheduleReconnect();
      } else {
        setConnection("reconnecting"); // the browser retries by itself, with Last-Event-ID
      }
    });
  }

  function closeStream() {
    if (state.es) {
      state.es.close();
      state.es = null;
    }
  }

  function onStreamEvent(event) {
    if (event.target !== state.es) return;
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      return;
    }
    const id = event.lastEventId || null;
    if (id && (!state.lastEventId || cmpId(id, state.lastEventId) > 0)) state.lastEventId = id;
    applyEvent(event.type, id, data);
  }

  function onServerError(event) {
    let data = {};
    try {
      data = JSON.parse(event.data) || {};
    } catch {
      /* keep the defaults */
    }
    const message = data.message || "The server reported a problem with the stream.";
    showNotice(`Server: ${message}`);
  }

  function scheduleReconnect() {
    clearTimeout(state.retryTimer);
    const delay = state.retryDelay;
    state.retryDelay = Math.min(MAX_RETRY_MS, state.retryDelay * 2);
    state.retryAt = Date.now() + delay;
    setConnection("offline");
    state.retryTimer = setTimeout(reconnect, delay);
  }

  /** Start over after the stream gave up: catch up with the list, then stream again. */
  async function reconnect() {
    clearTimeout(state.retryTimer);
    state.retryTimer = 0;
    if (state.authNeeded) return;
    closeStream();
    setConnection("connecting");
    try {
      await loadJobs();
    } catch (error) {
      if (error.status === 401) return;
      scheduleReconnect();
      return;
    }
    state.refreshOnOpen = false; // the list is fresh
    openStream();
  }

  async function start() {
    state.session += 1;
    state.authNeeded = false;
    clearTimeout(state.retryTimer);
    closeStream();
    state.lastEventId = null;
    state.nextCursor = null;
    state.loadedOlder = false;
    state.refreshOnOpen = false;
    ui.signOut.hidden = !state.token;
    setConnection("connecting");
    try {
      await loadJobs();
    } catch (error) {
      if (error.status === 401) return;
      scheduleReconnect();
      return;
    }
    openStream();
  }

  // -- auth ------------------------------------------------------------------------------

  function needToken(rejected) {
    state.authNeeded = true;
    clearTimeout(state.retryTimer);
    closeStream();
    setConnection("locked");
    ui.auth.hidden = false;
    ui.signOut.hidden = !state.token;
    ui.authError.textContent = rejected ? "That token was not accepted. Check it and try again." : "";
    ui.token.setAttribute("aria-invalid", rejected ? "true" : "false");
    if (document.activeElement !== ui.token) ui.token.focus();
  }

  ui.authForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const token = ui.token.value.trim();
    if (!token) {
      ui.authError.textContent = "Enter the access token.";
      ui.token.setAttribute("aria-invalid", "true");
      ui.token.focus();
      return;
    }
    state.token = token;
    tokenStore.set(token);
    ui.token.value = "";
    ui.authError.textContent = "";
    ui.auth.hidden = true;
    // Jobs of whoever used the page before are not this user's.
    clearJobs();
    start();
  });

  ui.signOut.addEventListener("click", () => {
    state.token = "";
    tokenStore.set("");
    clearJobs();
    start();
  });

  function clearJobs() {
    for (const job of state.jobs.values()) job.el?.remove();
    state.jobs.clear();
    state.deleted.clear();
    updateChrome();
  }

  // -- starting and cancelling -----------------------------------------------------------

  function fieldError(input, message) {
    ui.formError.textContent = message;
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
  }

  ui.form.addEventListener("submit", async (event) => {
    event.preventDefault();
    ui.formError.textContent = "";
    ui.topic.removeAttribute("aria-invalid");
    ui.duration.removeAttribute("aria-invalid");
    const topic = ui.topic.value.trim();
    const duration = Number(ui.duration.value);
    if (!topic) {
      fieldError(ui.topic, "Enter a topic for the video.");
      return;
    }
    if (ui.duration.value === "" || !Number.isFinite(duration) || duration < 5 || duration > 600) {
      fieldError(ui.duration, "The length must be between 5 and 600 seconds.");
      return;
    }
    ui.start.disabled = true;
    ui.start.textContent = "Starting…";
    try {
      const snap = await api("/api/jobs", {
        method: "POST",
        body: { pipeline: "video", params: { topic, durationSeconds: duration } },
      });
      const job = applySnapshot(snap);
      ui.topic.value = "";
      announce(`Started “${topic}”.`);
      if (job) {
        renderNow(job);
        job.el?.classList.add("is-new");
      }
    } catch (error) {
      if (error.status === 401) {
        fieldError(null, "Enter an access token first.");
      } else if (error.status === 422) {
        const details = (error.details || []).map((d) => d.message).filter(Boolean);
        const bad = (error.details || []).some((d) => String(d.field || "").includes("duration"))
          ? ui.duration
          : ui.topic;
        fieldError(bad, details.length ? `${error.message} (${details.join("; ")})` : error.message);
      } else if (error.status === 429) {
        fieldError(null, "The queue is full. Try again when some jobs have finished.");
      } else if (error.status === 503) {
        fieldError(null, "The server is shutting down. Try again in a moment.");
      } else if (error.status === 0) {
        fieldError(null, "Cannot reach the server. Check the connection and try again.");
      } else {
        fieldError(null, error.message);
      }
    } finally {
      ui.start.disabled = false;
      ui.start.textContent = "Start render";
    }
  });

  async function cancelJob(job) {
    if (isFinal(job) || job.cancelling || job.lost) return;
    const ok = window.confirm(`Cancel “${jobTitle(job)}”?\n\nThe work done so far is discarded.`);
    if (!ok) return;
    job.cancelling = true;
    renderNow(job);
    try {
      applySnapshot(await api(`/api/jobs/${encodeURIComponent(job.id)}/cancel`, { method: "POST" }));
      // The stream says when it has really ended; check anyway in case it is slow.
      setTimeout(() => {
        if (!isFinal(job) && !job.lost) fetchJob(job);
      }, 5000);
    } catch (error) {
      job.cancelling = false;
      if (error.status === 409 || error.status === 404) {
        fetchJob(job);
      } else if (error.status !== 401) {
        showNotice(`Could not cancel “${jobTitle(job)}”: ${error.message}`);
      }
      scheduleRender(job);
    }
  }

  /** POST /api/jobs/{id}/retry: the same pipeline and params again, as a new job. */
  async function retryJob(job) {
    if (!(job.status === "Failed" || job.status === "Canceled") || job.lost || job.retrying) return;
    job.retrying = true;
    renderNow(job);
    try {
      const fresh = applySnapshot(
        await api(`/api/jobs/${encodeURIComponent(job.id)}/retry`, { method: "POST" }),
      );
      announce(`Retrying “${jobTitle(job)}” as a new job.`);
      if (fresh) {
        renderNow(fresh);
        fresh.el?.classList.add("is-new");
      }
    } catch (error) {
      if (error.status === 409 || error.status === 404) fetchJob(job);
      else if (error.status === 429) showNotice("The queue is full. Try again when some jobs have finished.");
      else if (error.status !== 401) showNotice(`Could not retry “${jobTitle(job)}”: ${error.message}`);
    } finally {
      job.retrying = false;
      scheduleRender(job);
    }
  }

  /** Forget a job for good (it was deleted): its card goes, later news of it is ignored. */
  function forgetJob(job) {
    state.deleted.add(job.id);
    state.jobs.delete(job.id);
    dirty.delete(job);
    job.el?.remove();
    job.el = null;
  }

  /** DELETE one finished job; true when it is gone (404: it already was). */
  async function deleteJob(job) {
    try {
      await api(`/api/jobs/${encodeURIComponent(job.id)}`, { method: "DELETE" });
    } catch (error) {
      if (error.status !== 404) {
        if (error.status === 409) fetchJob(job); // the server says it is live after all
        return false;
      }
    }
    forgetJob(job);
    return true;
  }

  /** "Clear finished": after a confirmation, delete every finished job from the server. */
  async function clearFinished() {
    const finished = [...state.jobs.values()].filter((job) => isFinal(job) || job.lost);
    if (!finished.length) return;
    const what = finished.length === 1 ? "1 finished job" : `${finished.length} finished jobs`;
    const ok = window.confirm(
      `Delete ${what}?\n\nTheir files, logs and history are deleted from the server. This cannot be undone.`,
    );
    if (!ok) return;
    ui.clear.disabled = true;
    const queue = [...finished];
    let deleted = 0;
    const worker = async () => {
      while (queue.length) {
        if (await deleteJob(queue.shift())) deleted += 1;
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(DELETES_AT_ONCE, queue.length) }, worker));
    } finally {
      ui.clear.disabled = false;
      updateChrome();
    }
    const left = finished.length - deleted;
    announce(deleted === 1 ? "Deleted 1 finished job." : `Deleted ${deleted} finished jobs.`);
    if (left) showNotice(`${left} of the finished jobs could not be deleted. Try again in a moment.`);
  }

  // -- the job's log ------------------------------------------------------------------------

  /** GET /api/jobs/{id}/logs for an open Log panel; one request at a time per job. */
  async function refreshLog(job) {
    const log = job.log;
    if (log.loading) {
      log.again = true; // news came while fetching: fetch once more after this one
      return;
    }
    log.loading = true;
    try {
      const body = await api(`/api/jobs/${encodeURIComponent(job.id)}/logs`);
      log.lines = Array.isArray(body && body.lines) ? body.lines : [];
      log.error = "";
    } catch (error) {
      if (error.status === 404) markLost(job);
      log.error = error.status === 401 ? "" : `Could not load the log: ${error.message}`;
    } finally {
      log.loading = false;
      log.version += 1;
      scheduleRender(job);
    }
    if (log.again && log.open) {
      log.again = false;
      refreshLog(job);
    }
  }

  function onLogToggle(job, details) {
    job.log.open = details.open;
    if (details.open) refreshLog(job);
  }

  function renderLog(job, details) {
    const log = job.log;
    if (details.dataset.version === String(log.version)) return;
    details.dataset.version = String(log.version);
    const list = $(".log-lines", details);
    const box = $(".log-box", details);
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 8;
    list.replaceChildren(...log.lines.map(logLineItem));
    let status = "";
    if (log.error) status = log.error;
    else if (!log.lines.length) status = log.version ? "No lines yet." : "Loading…";
    setText($(".log-status", details), status);
    $(".log-status", details).hidden = !status;
    if (atBottom) box.scrollTop = box.scrollHeight;
  }

  function logLineItem(line) {
    const li = document.createElement("li");
    li.className = "log-line";
    li.dataset.level = String(line.level || "info");
    const time = document.createElement("time");
    time.dateTime = line.at || "";
    time.textContent = formatTime(line.at);
    const level = document.createElement("span");
    level.className = "log-level";
    level.textContent = line.level || "info";
    const message = document.createElement("span");
    message.className = "log-message";
    message.textContent = line.stage ? `[${line.stage}] ${line.message}` : String(line.message);
    li.append(time, level, message);
    return li;
  }

  // -- copying a job's id ---------------------------------------------------------------------

  async function copyId(job, button) {
    let copied = false;
    try {
      await navigator.clipboard.writeText(job.id);
      copied = true;
    } catch {
      // No clipboard API (an insecure origin, or refused): select the id for Ctrl-C.
      const range = document.createRange();
      range.selectNodeContents($(".job-id", job.el));
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      try {
        copied = document.execCommand("copy");
      } catch {
        copied = false;
      }
    }
    setText(button, copied ? "Copied" : "Selected");
    announce(copied ? "Job id copied." : "Job id selected; press Ctrl+C to copy it.");
    clearTimeout(button.resetTimer);
    button.resetTimer = setTimeout(() => setText(button, "Copy id"), 2000);
  }

  // -- rendering ---------------------------------------------------------------------------

  const dirty = new Set();
  let frame = 0;

  function scheduleRender(job) {
    dirty.add(job);
    if (!frame) {
      frame = requestAnimationFrame(flush);
      // rAF does not run in a hidden tab; render anyway, a little later.
      setTimeout(() => {
        if (frame) flush();
      }, 250);
    }
  }

  function flush() {
    if (frame) cancelAnimationFrame(frame);
    frame = 0;
    for (const job of dirty) renderJob(job);
    dirty.clear();
    updateChrome();
  }

  function renderNow(job) {
    dirty.delete(job);
    renderJob(job);
    updateChrome();
  }

  function createdMillis(job) {
    const millis = Date.parse(job.createdAt || "");
    return Number.isFinite(millis) ? millis : Number.MAX_SAFE_INTEGER;
  }

  function mountJob(job) {
    const li = ui.template.content.firstElementChild.cloneNode(true);
    li.dataset.jobId = job.id;
    const titleId = `job-${job.id}-title`;
    $(".job-title", li).id = titleId;
    $(".job-card", li).setAttribute("aria-labelledby", titleId);
    $(".job-id", li).textContent = job.id;
    const copy = $(".copy-id", li);
    copy.addEventListener("click", () => copyId(job, copy));
    const log = $(".log", li);
    log.addEventListener("toggle", () => onLogToggle(job, log));
    job.el = li;
    // Newest first.
    const mine = createdMillis(job);
    let before = null;
    for (const other of ui.list.children) {
      const otherJob = state.jobs.get(other.dataset.jobId);
      if (otherJob && createdMillis(otherJob) < mine) {
        before = other;
        break;
      }
    }
    ui.list.insertBefore(li, before);
  }

  function setText(el, text) {
    if (el.textContent !== text) el.textContent = text;
  }

  function statusLabel(job) {
    if (job.lost && !isFinal(job)) return "Lost";
    if (job.cancelling && !isFinal(job)) return "Cancelling";
    return job.status;
  }

  function renderJob(job) {
    if (state.jobs.get(job.id) !== job) return; // deleted meanwhile
    if (!job.el) mountJob(job);
    const el = job.el;
    const final = isFinal(job);
    const label = statusLabel(job);
    el.dataset.status = job.lost && !final ? "Lost" : job.status;
    el.classList.toggle("is-final", final || job.lost);

    const title = jobTitle(job);
    setText($(".job-title", el), title);
    setText($(".job-meta", el), metaText(job));
    $(".copy-id", el).setAttribute("aria-label", `Copy the id of ${title}`);
    const badge = $(".badge", el);
    setText(badge, label);
    badge.dataset.status = label;

    const pct = Math.floor(job.progressPct);
    const bar = $(".bar", el);
    if (bar.getAttribute("aria-valuenow") !== String(pct)) bar.setAttribute("aria-valuenow", String(pct));
    bar.setAttribute("aria-label", `Progress of ${title}`);
    bar.setAttribute(
      "aria-valuetext",
      `${pct}%${job.stage && !final ? `, ${job.stage}` : ""}, ${label.toLowerCase()}`,
    );
    $(".bar-fill", el).style.width = `${job.progressPct}%`;
    setText($(".pct", el), `${pct}%`);

    renderSteps(job, $(".steps", el));
    setText($(".stage", el), stageText(job));
    setText($(".item", el), itemText(job));
    $(".item", el).parentElement.hidden = final || job.lost || job.status === "Queued";
    const eta = etaText(job);
    setText($(".eta-label", el), eta.label);
    setText($(".eta", el), eta.value);
    setText($(".message", el), messageText(job));

    renderWarnings(job, $(".warnings", el));
    renderError(job, $(".error", el));
    renderPlayer(job, $(".player", el));
    renderArtifacts(job, $(".artifacts", el));
    renderLog(job, $(".log", el));
    renderActions(job, $(".actions", el));
  }

  function metaText(job) {
    const parts = [];
    if (job.pipeline && job.pipeline !== "video" && job.params && job.params.topic) {
      parts.push(job.pipeline);
    }
    const seconds = job.params && job.params.durationSeconds;
    if (typeof seconds === "number") parts.push(`${formatSeconds(seconds)} video`);
    if (job.createdAt) parts.push(`submitted ${formatClock(job.createdAt)}`);
    if (job.retryOf) parts.push(`retry of ${job.retryOf.slice(0, 8)}`);
    return parts.join(" · ");
  }

  function renderSteps(job, list) {
    const names = job.pipeline === "video" || (!job.pipeline && VIDEO_STAGES.includes(job.stage))
      ? VIDEO_STAGES
      : null;
    list.hidden = !names;
    if (!names) return;
    if (list.children.length !== names.length) {
      list.replaceChildren(
        ...names.map((name) => {
          const li = document.createElement("li");
          li.textContent = name;
          return li;
        }),
      );
    }
    const current = job.stage ? names.indexOf(job.stage) : -1;
    names.forEach((name, index) => {
      let stepState = "pending";
      if (job.status === "Done" || index < current) stepState = "done";
      else if (index === current) {
        stepState = job.status === "Failed" ? "failed" : isFinal(job) || job.lost ? "stopped" : "current";
      }
      const li = list.children[index];
      if (li.dataset.state !== stepState) li.dataset.state = stepState;
    });
  }

  function stageText(job) {
    if (!job.stage) return job.status === "Queued" ? "Waiting to start" : "—";
    if (Number.isInteger(job.stepIndex) && Number.isInteger(job.totalSteps)) {
      return `${job.stage} (${job.stepIndex + 1} of ${job.totalSteps})`;
    }
    return job.stage;
  }

  function itemText(job) {
    if (isFinal(job) || job.lost) return "—";
    if (Number.isInteger(job.currentItem) && Number.isInteger(job.totalItems)) {
      return `${job.currentItem} of ${job.totalItems}`;
    }
    return "—";
  }

  function etaText(job) {
    if (job.lost) return { label: "ETA", value: "—" };
    if (job.status === "Done") {
      const seconds = job.durationSeconds ?? elapsedSeconds(job);
      return { label: "Took", value: seconds === null ? "—" : formatSeconds(seconds) };
    }
    if (isFinal(job)) {
      const seconds = elapsedSeconds(job);
      return { label: "Ran for", value: seconds === null ? "—" : formatSeconds(seconds) };
    }
    if (job.status === "Queued") return { label: "ETA", value: "in the queue" };
    if (job.etaSeconds === null) return { label: "ETA", value: "estimating…" };
    const left = Math.max(0, job.etaSeconds - (performance.now() - job.etaAt) / 1000);
    return { label: "ETA", value: left < 1 ? "any moment" : `${formatSeconds(left)} left` };
  }

  function elapsedSeconds(job) {
    const startedAt = Date.parse(job.startedAt || "");
    const finishedAt = Date.parse(job.finishedAt || "");
    if (!Number.isFinite(startedAt) || !Number.isFinite(finishedAt)) return null;
    return Math.max(0, (finishedAt - startedAt) / 1000);
  }

  function messageText(job) {
    if (job.lost) {
      return isFinal(job)
        ? "The server no longer has this job; its files are gone."
        : "The server restarted and no longer knows this job.";
    }
    if (job.status === "Failed") return "";
    if (job.status === "Canceled") return capitalize(job.message || "Canceled.");
    if (job.status === "Done") return job.artifacts.length ? "Finished. The files are ready." : "Finished.";
    if (job.cancelling) return "Cancelling…";
    return job.message ? capitalize(job.message) : "";
  }

  function renderWarnings(job, list) {
    list.hidden = job.warnings.length === 0;
    if (list.children.length === job.warnings.length) return;
    list.replaceChildren(
      ...job.warnings.map((warning) => {
        const li = document.createElement("li");
        const strong = document.createElement("strong");
        strong.textContent = warning.step ? `Warning in ${warning.step}: ` : "Warning: ";
        li.append(strong, document.createTextNode(warning.message));
        return li;
      }),
    );
  }

  function renderError(job, box) {
    const show = job.status === "Failed" && Boolean(job.error);
    box.hidden = !show;
    if (!show) return;
    const key = JSON.stringify(job.error);
    if (box.dataset.key === key) return;
    box.dataset.key = key;
    const heading = document.createElement("p");
    heading.className = "error-title";
    heading.textContent = job.error.message || "The job failed.";
    const parts = [heading];
    const errors = Array.isArray(job.error.errors) ? job.error.errors : [];
    if (errors.length) {
      const ul = document.createElement("ul");
      for (const item of errors) {
        const li = document.createElement("li");
        if (item.message && item.message !== job.error.message) {
          li.append(document.createTextNode(item.message));
        }
        if (item.remediation) {
          const fix = document.createElement("span");
          fix.className = "remedy";
          fix.textContent = `What to do: ${item.remediation}`;
          li.append(fix);
        }
        if (item.code) {
          const code = document.createElement("code");
          code.textContent = item.code;
          li.append(code);
        }
        ul.append(li);
      }
      parts.push(ul);
    }
    box.replaceChildren(...parts);
  }

  /** An artifact's URL; with a token it rides in the query, as on the event stream,
   * because a <video> element cannot send an Authorization header. */
  function artifactUrl(job, name, withToken = false) {
    const url = `/api/jobs/${encodeURIComponent(job.id)}/artifacts/${encodeURIComponent(name)}`;
    return withToken && state.token ? `${url}?access_token=${encodeURIComponent(state.token)}` : url;
  }

  function findArtifact(job, name, mimeType) {
    return job.artifacts.find((a) => a.name === name) || job.artifacts.find((a) => a.mimeType === mimeType);
  }

  /** A finished video job plays its video.mp4 here, with thumbnail.jpg as the poster. */
  function renderPlayer(job, box) {
    const done = job.status === "Done" && !job.lost;
    const movie = done ? findArtifact(job, "video.mp4", "video/mp4") : null;
    const player = $("video", box);
    box.hidden = !movie;
    if (!movie) {
      if (player.hasAttribute("src")) {
        player.removeAttribute("src");
        player.load();
      }
      return;
    }
    const src = artifactUrl(job, movie.name, true);
    if (player.getAttribute("src") === src) return;
    const poster = findArtifact(job, "thumbnail.jpg", "image/jpeg");
    if (poster) player.setAttribute("poster", artifactUrl(job, poster.name, true));
    else player.removeAttribute("poster");
    player.setAttribute("aria-label", `Video: ${jobTitle(job)}`);
    player.setAttribute("src", src);
  }

  function renderArtifacts(job, box) {
    const show = job.status === "Done" && !job.lost && job.artifacts.length > 0;
    box.hidden = !show;
    if (!show) return;
    const list = $(".artifact-list", box);
    const key = job.artifacts.map((a) => a.name).join("|");
    if (list.dataset.key === key) return;
    list.dataset.key = key;
    list.replaceChildren(
      ...job.artifacts.map((artifact) => {
        const li = document.createElement("li");
        // A download under the file's own name; with a token, the token rides in the
        // query (a plain link cannot send a header), as for the <video> element.
        const a = document.createElement("a");
        a.className = "artifact";
        a.href = artifactUrl(job, artifact.name, true);
        a.download = artifact.name;
        a.dataset.name = artifact.name;
        const name = document.createElement("span");
        name.className = "artifact-name";
        name.textContent = artifact.name;
        const size = document.createElement("span");
        size.className = "artifact-size";
        size.textContent = formatBytes(artifact.sizeBytes);
        a.append(fileIcon(artifact.mimeType), name, size);
        li.append(a);
        return li;
      }),
    );
  }

  function fileIcon(mimeType) {
    const span = document.createElement("span");
    span.className = "artifact-icon";
    span.setAttribute("aria-hidden", "true");
    const kind = String(mimeType || "").split("/")[0];
    span.dataset.kind = kind === "audio" || kind === "image" || kind === "video" ? kind : "file";
    return span;
  }

  function renderActions(job, box) {
    const live = !isFinal(job) && !job.lost;
    const retryable = (job.status === "Failed" || job.status === "Canceled") && !job.lost;
    const title = jobTitle(job);
    const cancel = actionButton(box, "cancel", "button danger small", live, () => cancelJob(job));
    if (cancel) {
      cancel.disabled = job.cancelling;
      setText(cancel, job.cancelling ? "Cancelling…" : "Cancel");
      cancel.setAttribute("aria-label", `${job.cancelling ? "Cancelling" : "Cancel"} ${title}`);
    }
    const retry = actionButton(box, "retry", "button small", retryable, () => retryJob(job));
    if (retry) {
      retry.disabled = job.retrying;
      setText(retry, job.retrying ? "Retrying…" : "Retry");
      retry.setAttribute("aria-label", `${job.retrying ? "Retrying" : "Retry"} ${title}`);
    }
  }

  /** The card's button of class ``name``: made when ``wanted``, removed when not. */
  function actionButton(box, name, classes, wanted, onClick) {
    let button = $(`button.${name}`, box);
    if (!wanted) {
      button?.remove();
      return null;
    }
    if (!button) {
      button = document.createElement("button");
      button.type = "button";
      button.className = `${classes} ${name}`;
      button.addEventListener("click", onClick);
      box.append(button);
    }
    return button;
  }

  function updateChrome() {
    let running = 0;
    let queued = 0;
    let finished = 0;
    let shown = 0;
    for (const job of state.jobs.values()) {
      shown += 1;
      if (job.lost || isFinal(job)) finished += 1;
      else if (job.status === "Running") running += 1;
      else queued += 1;
    }
    const parts = [];
    if (running) parts.push(`${running} running`);
    if (queued) parts.push(`${queued} queued`);
    if (finished) parts.push(`${finished} finished`);
    setText(ui.summary, parts.join(" · "));
    ui.empty.hidden = shown > 0 || state.authNeeded;
    ui.clear.hidden = finished === 0;
    ui.older.hidden = !state.nextCursor;
    const title = running ? `(${running}) aura-actors · renders` : "aura-actors · renders";
    if (document.title !== title) document.title = title;
  }

  ui.clear.addEventListener("click", clearFinished);

  ui.older.addEventListener("click", loadOlder);

  // -- the connection indicator -------------------------------------------------------------

  const CONNECTION_TEXT = {
    connecting: "Connecting…",
    live: "Live",
    reconnecting: "Reconnecting…",
    offline: "Offline",
    locked: "Token needed",
  };

  function setConnection(name) {
    ui.conn.dataset.state = name;
    setText(ui.connText, CONNECTION_TEXT[name] || name);
    // The countdown is for the eyes only: a live region must not tick every second.
    let detail = "";
    if (name === "offline" && state.retryAt) {
      const seconds = Math.max(0, Math.ceil((state.retryAt - Date.now()) / 1000));
      detail = seconds > 0 ? `· retrying in ${seconds} s` : "· retrying…";
    }
    setText(ui.connDetail, detail);
    ui.reconnectNow.hidden = name !== "offline";
  }

  ui.reconnectNow.addEventListener("click", () => {
    state.retryDelay = FIRST_RETRY_MS;
    reconnect();
  });

  // Back online, or back to the tab after a long while: do not wait for the backoff.
  window.addEventListener("online", () => {
    if (!state.es && !state.authNeeded) reconnect();
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && !state.es && !state.authNeeded) reconnect();
  });

  // -- little helpers -----------------------------------------------------------------------

  let noticeTimer = 0;
  function showNotice(text) {
    ui.notice.textContent = text;
    ui.notice.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => {
      ui.notice.hidden = true;
    }, 8000);
  }

  const announcements = [];
  let announceTimer = 0;

  /** Tell screen readers (one polite live region); a burst is read as one message. */
  function announce(text) {
    announcements.push(text);
    if (announceTimer) return;
    announceTimer = setTimeout(() => {
      announceTimer = 0;
      ui.announcer.textContent = announcements.splice(0).join(" ");
    }, 150);
  }

  function capitalize(text) {
    return text ? text[0].toUpperCase() + text.slice(1) : text;
  }

  function formatSeconds(value) {
    const seconds = Math.max(0, value);
    if (seconds < 10) return `${Math.round(seconds * 10) / 10} s`;
    if (seconds < 60) return `${Math.round(seconds)} s`;
    const total = Math.round(seconds);
    const hours = Math.floor(total / 3600);
    const minutes = Math.floor((total % 3600) / 60);
    const rest = total % 60;
    if (hours) return `${hours} h ${minutes} min`;
    return rest ? `${minutes} min ${rest} s` : `${minutes} min`;
  }

  function formatClock(iso) {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return "";
    const sameDay = date.toDateString() === new Date().toDateString();
    const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    return sameDay ? time : `${date.toLocaleDateString()} ${time}`;
  }

  function formatTime(iso) {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return "";
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  /** "238 B", "480.0 kB", "1.2 MB": decimal units (1 kB = 1000 bytes), tenths rounded half
   * up in integers — digit for digit what the CLI writes (aura_actors.cli format_size). */
  function formatBytes(bytes) {
    if (!Number.isSafeInteger(bytes) || bytes < 0) return "";
    if (bytes < 1000) return `${bytes} B`;
    let base = 1;
    for (const unit of SIZE_UNITS) {
      base *= 1000;
      const scaled = bytes * 10 + base / 2;
      const tenths = (scaled - (scaled % base)) / base;
      if (tenths < 10000 || unit === SIZE_UNITS[SIZE_UNITS.length - 1]) {
        return `${Math.floor(tenths / 10)}.${tenths % 10} ${unit}`;
      }
    }
    return "";
  }

  // Count the ETA down between progress events, and the retry countdown.
  setInterval(() => {
    for (const job of state.jobs.values()) {
      if (job.el && job.status === "Running" && job.etaSeconds !== null && !job.lost) {
        const eta = etaText(job);
        setText($(".eta", job.el), eta.value);
      }
    }
    if (ui.conn.dataset.state === "offline") setConnection("offline");
  }, 1000);

  // For tests and the curious: how the page is doing.
  window.auraPage = {
    get connection() {
      return ui.conn.dataset.state;
    },
    get lastEventId() {
      return state.lastEventId;
    },
    get eventSourceUrl() {
      return state.es ? state.es.url : null;
    },
    formatBytes,
  };

  start();
})();
