// The reference Email tab (SPEC §8): plain JavaScript, no build step, no API key in the browser.
// The page works with a UI session (an HttpOnly cookie, plus a CSRF header on every change) that
// the platform opened for this one agent; everything else is the /bridge API it documents.
"use strict";

(() => {
  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

  const agentId = decodeURIComponent(location.pathname.split("/")[3] || "");
  const configPath = `/bridge/agents/${encodeURIComponent(agentId)}/email-config`;
  const CALLBACK = `${location.origin}/api/engine/oauth/callback`;
  const RENEW_EVERY_MS = 4 * 60 * 1000;
  const POLL_EVERY_MS = 1500;
  const DETECT_AFTER_MS = 600;
  const LABELS = {
    not_connected: "Not Connected",
    configured: "Configured",
    awaiting_authorization: "Awaiting Authorization",
    connected: "Connected",
    error: "Error",
  };
  const state = { csrf: "", view: null, presets: [], method: "imap", flow: null, detectTimer: 0 };

  // --- talking to config-api ---------------------------------------------------------------

  async function call(method, path, body) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-CSRF-Token"] = state.csrf;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const init = { method, headers, credentials: "same-origin" };
    if (body !== undefined) init.body = JSON.stringify(body);
    try {
      const response = await fetch(path, init);
      const data = await response.json().catch(() => null);
      return { ok: response.ok, status: response.status, data };
    } catch (error) {
      return { ok: false, status: 0, data: { title: "mailbridge could not be reached.", hint: "Check the connection and try again." } };
    }
  }

  function problemText(data) {
    if (!data) return "Something went wrong.";
    return [data.title || data.message, data.hint].filter(Boolean).join(" ");
  }

  // --- the session -------------------------------------------------------------------------

  async function openSession() {
    const token = new URLSearchParams(location.hash.slice(1)).get("session");
    if (token) history.replaceState(null, "", location.pathname + location.search);
    const answer = token
      ? await call("POST", "/ui/sessions/exchange", { token })
      : await call("GET", "/ui/sessions/current");
    if (!answer.ok) return sessionProblem(answer.data);
    state.csrf = answer.data.csrf_token || "";
    $("#agent-name").textContent = answer.data.agent_name || agentId;
    document.title = `${answer.data.agent_name || agentId} · Email · mailbridge`;
    setInterval(() => call("POST", "/ui/sessions/renew"), RENEW_EVERY_MS);
    return true;
  }

  function sessionProblem(data) {
    const box = $("#session-problem");
    box.textContent = data && data.title ? data.title : "This Email tab session is not valid: reopen the Email tab from the platform.";
    box.hidden = false;
    setBadge("error", "Session expired");
    $$("button, input, select").forEach((element) => { element.disabled = true; });
    return false;
  }

  // --- what the page shows -----------------------------------------------------------------

  function setBadge(status, label) {
    const badge = $("#badge");
    badge.dataset.status = status;
    badge.textContent = label || LABELS[status] || status;
  }

  function render(view) {
    state.view = view;
    setBadge(view.status);
    renderLastError(view.last_error);
    renderBanners(view);
    if (view.provider) chooseMethod(view.provider);
    fillForm(view);
    renderButtons();
    if (view.last_test) renderTest(view.last_test);
    $("#tab").setAttribute("aria-busy", "false");
  }

  function renderLastError(error) {
    const banner = $("#last-error");
    banner.hidden = !error;
    if (!error) return;
    $("#last-error-message").textContent = error.message;
    $("#last-error-hint").textContent = error.hint || "";
    $("#last-error-at").textContent = error.at ? `at ${new Date(error.at).toLocaleString()}` : "";
    if (error.at) $("#last-error-at").dateTime = error.at;
  }

  function renderBanners(view) {
    const app = view.org_oauth_app;
    const orgBanner = $("#org-banner");
    orgBanner.hidden = !(app && app.inherited);
    if (app && app.inherited) {
      orgBanner.textContent = `Your organization's ${app.provider === "microsoft" ? "Microsoft" : "Google"} OAuth app (client ${app.client_id}) is used: just click Authorize.`;
    }
    $$(".own-app").forEach((field) => { field.hidden = Boolean(app && app.inherited && app.provider === state.method); });
    const client = view.client_org;
    const clientBanner = $("#client-org-banner");
    clientBanner.hidden = !client;
    if (!client) return;
    clientBanner.replaceChildren(clientOrgHeadline(client), warningList(client.warnings || []));
  }

  function clientOrgHeadline(client) {
    const line = document.createElement("strong");
    const domain = client.email_domain ? `, sending from @${client.email_domain}` : "";
    line.textContent = `Client organization: ${client.name}${domain}`;
    return line;
  }

  function warningList(warnings) {
    const list = document.createElement("ul");
    for (const warning of warnings) {
      const item = document.createElement("li");
      item.textContent = warning;
      list.append(item);
    }
    return list;
  }

  function renderButtons() {
    const view = state.view || {};
    const oauth = state.method !== "imap";
    const saved = view.provider === state.method;
    $("#authorize").hidden = !(oauth && saved);
    $("#reauthorize").hidden = !(state.method === "google" && saved && view.status === "connected");
    $("#test").disabled = !saved;
    $("#disconnect").disabled = !view.provider;
  }

  function renderTest(result) {
    $("#test-result").hidden = false;
    $("#result-email").textContent = result.email || "–";
    $("#result-total").textContent = result.inbox_total ?? "–";
    $("#result-unread").textContent = result.unread ?? "–";
    $("#result-checks").replaceChildren(...Object.entries(result.checks || {}).map(checkItem));
    const error = $("#result-error");
    error.hidden = result.ok !== false || !result.error;
    if (result.error) error.textContent = `${result.error.message} ${result.error.hint || ""}`.trim();
  }

  function checkItem([name, check]) {
    const item = document.createElement("li");
    item.className = check.ok ? "ok" : "failed";
    const what = { imap: "IMAP", smtp: "SMTP", api: "API", send: "Send", mailbox: "Mailbox" }[name] || name;
    const outcome = check.ok ? "ok" : (check.error ? check.error.message : "failed");
    item.textContent = `${check.ok ? "✓" : "✗"} ${what}: ${outcome} (${check.latency_ms} ms)`;
    return item;
  }

  // --- the three methods and their forms ---------------------------------------------------

  function chooseMethod(method) {
    state.method = method;
    $$(".card").forEach((card) => card.setAttribute("aria-checked", String(card.dataset.method === method)));
    $$(".method-form").forEach((form) => { form.hidden = form.dataset.method !== method; });
    $$(".card").forEach((card) => { card.tabIndex = card.dataset.method === method ? 0 : -1; });
    if (state.view) renderBanners(state.view);
    renderButtons();
  }

  function onCardKey(event) {
    const order = ["imap", "microsoft", "google"];
    const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[event.key];
    if (!step) return;
    event.preventDefault();
    const next = order[(order.indexOf(state.method) + step + order.length) % order.length];
    chooseMethod(next);
    $(`.card[data-method="${next}"]`).focus();
  }

  function currentForm() {
    return $(`#form-${state.method}`);
  }

  function fillForm(view) {
    const form = $(`#form-${view.provider || state.method}`);
    if (!form || !view.provider) return;
    const settings = view.settings || {};
    setValue(form, "email", view.email || "");
    for (const name of ["preset", "username", "client_id", "tenant_id", "transport"]) setValue(form, name, settings[name] || "");
    for (const server of ["imap", "smtp"]) {
      for (const part of ["host", "port", "security"]) setValue(form, `${server}.${part}`, (settings[server] || {})[part] ?? "");
    }
    const secret = form.querySelector('[name="password"], [name="client_secret"]');
    if (secret) {  // write-only: a stored secret shows as saved, never as its value
      secret.value = "";
      secret.placeholder = view.has_password || view.has_client_secret ? "saved (leave empty to keep)" : "";
    }
    if (view.provider === "imap") showPresetNote();
  }

  function setValue(form, name, value) {
    const field = form.querySelector(`[name="${name}"]`);
    if (field && value !== "") field.value = value;
  }

  function bodyOf(form) {
    const body = { provider: form.dataset.method };
    for (const field of $$("input, select", form)) {
      const value = field.value.trim();
      if (value === "") continue;
      const [outer, inner] = field.name.split(".");
      if (inner) {
        body[outer] = body[outer] || {};
        body[outer][inner] = inner === "port" ? Number(value) : value;
      } else {
        body[outer] = value;
      }
    }
    return body;
  }

  // --- presets and detection ---------------------------------------------------------------

  async function loadPresets() {
    const answer = await call("GET", "/bridge/email-presets");
    state.presets = answer.ok ? answer.data : [];
    const select = $("#imap-preset");
    select.replaceChildren(...state.presets.map((preset) => new Option(preset.name, preset.id)));
    select.value = "custom";
  }

  function applyPreset(id) {
    const preset = state.presets.find((candidate) => candidate.id === id);
    if (!preset) return;
    for (const server of ["imap", "smtp"]) {
      if (preset[server]) fillServer(server, preset[server]);  // Custom keeps what was typed
    }
    showPresetNote();
  }

  function fillServer(server, endpoint) {
    const form = $("#form-imap");
    for (const part of ["host", "port", "security"]) {
      form.querySelector(`[name="${server}.${part}"]`).value = endpoint[part];
    }
  }

  function showPresetNote() {
    const preset = state.presets.find((candidate) => candidate.id === $("#imap-preset").value);
    const note = $("#preset-note");
    note.classList.toggle("warning", Boolean(preset && preset.warning));
    note.replaceChildren(document.createTextNode(preset ? (preset.warning || preset.note || "") : ""));
    if (preset && preset.oauth_alternative) note.append(" ", switchToOAuth(preset.oauth_alternative));
  }

  function switchToOAuth(provider) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary";
    button.textContent = `Use ${provider === "microsoft" ? "Microsoft" : "Google"} OAuth`;
    button.addEventListener("click", () => {
      chooseMethod(provider);
      $(`.card[data-method="${provider}"]`).focus();
    });
    return button;
  }

  function scheduleDetection() {
    clearTimeout(state.detectTimer);
    state.detectTimer = setTimeout(detect, DETECT_AFTER_MS);
  }

  async function detect() {
    const email = $("#imap-email").value.trim();
    const box = $("#detected");
    if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) { box.hidden = true; return; }
    const answer = await call("GET", `/bridge/email-presets/detect?email=${encodeURIComponent(email)}`);
    if (!answer.ok || answer.data.source === "none" || !answer.data.imap) { box.hidden = true; return; }
    showDetected(answer.data);
  }

  function showDetected(found) {
    const box = $("#detected");
    const use = document.createElement("button");
    use.type = "button";
    use.className = "secondary";
    use.textContent = "Use these settings";
    use.addEventListener("click", () => useDetected(found));
    const text = `Found ${found.imap.host}:${found.imap.port} and ${found.smtp ? `${found.smtp.host}:${found.smtp.port}` : "no SMTP"} (${found.source}).`;
    const oauth = found.suggest_oauth ? ` ${found.suggest_oauth === "microsoft" ? "Microsoft" : "Google"} OAuth is recommended for this provider.` : "";
    box.replaceChildren(document.createTextNode(`${text}${oauth} `), use);
    box.hidden = false;
  }

  function useDetected(found) {
    if (found.preset) { $("#imap-preset").value = found.preset; applyPreset(found.preset); }
    for (const server of ["imap", "smtp"]) {
      if (found[server]) fillServer(server, found[server]);
    }
    if (found.username) $("#imap-username").value = found.username;
    $("#detected").hidden = true;
  }

  // --- save, test, disconnect --------------------------------------------------------------

  function clearProblems() {
    $$(".field-error").forEach((element) => { element.textContent = ""; });
    $$("[aria-invalid]").forEach((element) => element.removeAttribute("aria-invalid"));
    $("#form-problem").hidden = true;
  }

  function showProblem(data) {
    const form = currentForm();
    const placed = (data && data.errors || []).filter((error) => placeFieldError(form, error));
    if (placed.length === 0 || placed.length < (data.errors || []).length) {
      $("#form-problem").textContent = problemText(data);
      $("#form-problem").hidden = false;
    }
  }

  function placeFieldError(form, error) {
    const slot = form.querySelector(`.field-error[data-for="${fieldName(error.loc || [])}"]`);
    if (!slot) return false;
    slot.textContent = error.msg;
    const field = form.querySelector(`[name="${slot.dataset.for}"]`);
    if (field) field.setAttribute("aria-invalid", "true");
    return true;
  }

  function fieldName(loc) {
    // ["body", "imap", "imap", "port"]: the body, the union's tag, then the field's path
    const path = loc.slice(loc[0] === "body" ? 1 : 0);
    if (path[0] === state.method) path.shift();
    return path.filter((part) => typeof part === "string").join(".");
  }

  async function busy(button, work) {
    button.disabled = true;
    try { await work(); } finally { button.disabled = false; renderButtons(); }
  }

  async function save() {
    clearProblems();
    const answer = await call("PUT", configPath, bodyOf(currentForm()));
    if (!answer.ok) return showProblem(answer.data);
    render(answer.data);
    flowMessage(state.method === "imap" ? "Saved. Test the connection to see the mailbox." : "Saved. Click Authorize to sign in to the mailbox.");
  }

  async function testConnection() {
    flowMessage("Testing the connection…");
    const answer = await call("POST", `${configPath}/test`);
    if (!answer.ok) return flowMessage(problemText(answer.data));
    renderTest(answer.data);
    flowMessage(answer.data.ok ? "The mailbox answered." : "The test failed: see below.");
    await refresh();
  }

  async function disconnect() {
    const dialog = $("#confirm-disconnect");
    dialog.showModal();
    const choice = await new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true }));
    if (choice !== "confirm") return;
    const answer = await call("DELETE", configPath);
    if (!answer.ok) return flowMessage(problemText(answer.data));
    $("#test-result").hidden = true;
    render(answer.data);
    const note = answer.data.revocation && answer.data.revocation.note;
    flowMessage(note ? `Disconnected. ${note}` : "Disconnected.");
  }

  async function refresh() {
    const answer = await call("GET", configPath);
    if (answer.ok) render(answer.data);
  }

  function flowMessage(text, link) {
    const box = $("#flow-message");
    box.replaceChildren(document.createTextNode(text));
    if (link) {
      const anchor = document.createElement("a");
      anchor.href = link.href;
      anchor.target = "_blank";
      anchor.textContent = link.text;
      box.append(" ", anchor);
    }
  }

  // --- Authorize in a popup ----------------------------------------------------------------

  async function authorize(reauthorize) {
    // Opened at once, inside the click, or the browser's popup blocker refuses it.
    const popup = window.open("", "mailbridge-oauth", "popup,width=520,height=700");
    const answer = await call("POST", `${configPath}/authorize`, reauthorize ? { reauthorize: true } : {});
    if (!answer.ok) { if (popup) popup.close(); return flowMessage(problemText(answer.data)); }
    const flow = { id: answer.data.flow_id, popup, done: false, closedSeen: false };
    state.flow = flow;
    if (popup) {
      popup.location.href = answer.data.authorization_url;
      flowMessage("Sign in to the mailbox in the window that opened…");
    } else {
      flowMessage("The sign-in window was blocked. Allow popups for this site, or", { href: answer.data.authorization_url, text: "open the sign-in here" });
    }
    pollFlow(flow);
  }

  function fromCallback(data) {
    const flow = state.flow;
    if (!flow || flow.done || !data || data.type !== "mailbridge:oauth" || data.flow_id !== flow.id) return;
    finishFlow(flow, data);
  }

  async function pollFlow(flow) {
    while (!flow.done) {
      await new Promise((resolve) => setTimeout(resolve, POLL_EVERY_MS));
      if (flow.done) return;
      const answer = await call("GET", `/bridge/oauth/flows/${encodeURIComponent(flow.id)}`);
      if (answer.ok && answer.data.status !== "pending") return finishFlow(flow, answer.data);
      if (flow.popup && flow.popup.closed && !flow.closedSeen) {
        flow.closedSeen = true;  // or cut off by the provider's COOP: a late completion still counts
        flowMessage("Authorization was cancelled: the sign-in window was closed. Click Authorize to try again.");
      }
    }
  }

  function finishFlow(flow, result) {
    flow.done = true;
    const messages = {
      completed: "Signed in. Testing the connection…",
      cancelled: "Authorization was cancelled at the provider. Click Authorize to try again.",
      expired: "The sign-in took too long and expired. Click Authorize to try again.",
    };
    const error = result.error ? `${result.error.message} ${result.error.hint || ""}`.trim() : "";
    flowMessage(messages[result.status] || error || "The sign-in failed. Click Authorize to try again.");
    // The status that follows (Connected, after the automatic test) arrives on the live stream;
    // a read here could answer before it and show the older one.
  }

  // --- live status -------------------------------------------------------------------------

  function follow() {
    const events = new EventSource(`${configPath}/events`);
    events.addEventListener("snapshot", (event) => render(JSON.parse(event.data)));
    events.addEventListener("status", (event) => onStatus(JSON.parse(event.data)));
    events.addEventListener("test_result", (event) => renderTest(JSON.parse(event.data)));
    events.addEventListener("policy", () => refresh());
  }

  function onStatus(change) {
    if (!state.view) return;
    state.view.status = change.status;
    state.view.last_error = change.last_error || null;
    setBadge(change.status);
    renderLastError(state.view.last_error);
    renderButtons();
  }

  // --- wiring ------------------------------------------------------------------------------

  function wire() {
    $$(".card").forEach((card) => card.addEventListener("click", () => chooseMethod(card.dataset.method)));
    $(".cards").addEventListener("keydown", onCardKey);
    $("#imap-preset").addEventListener("change", (event) => applyPreset(event.target.value));
    $("#imap-email").addEventListener("input", scheduleDetection);
    $$(".redirect-uri").forEach((code) => { code.textContent = CALLBACK; });
    $$(".copy").forEach((button) => button.addEventListener("click", () => copyCallback(button)));
    $("#save").addEventListener("click", (event) => busy(event.currentTarget, save));
    $("#test").addEventListener("click", (event) => busy(event.currentTarget, testConnection));
    $("#disconnect").addEventListener("click", (event) => busy(event.currentTarget, disconnect));
    $("#authorize").addEventListener("click", () => authorize(false));
    $("#reauthorize").addEventListener("click", () => authorize(true));
    $$(".method-form").forEach((form) => form.addEventListener("submit", (event) => { event.preventDefault(); busy($("#save"), save); }));
    window.addEventListener("message", (event) => { if (event.origin === location.origin) fromCallback(event.data); });
    if ("BroadcastChannel" in window) new BroadcastChannel("mailbridge:oauth").onmessage = (event) => fromCallback(event.data);
  }

  async function copyCallback(button) {
    try {
      await navigator.clipboard.writeText(CALLBACK);
      button.textContent = "Copied";
    } catch (error) {
      button.textContent = "Select and copy";
    }
  }

  async function main() {
    wire();
    chooseMethod("imap");
    if (!(await openSession())) return;
    await loadPresets();
    await refresh();
    follow();
  }

  main();
})();
