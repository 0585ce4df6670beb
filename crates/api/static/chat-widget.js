/* Caseflow live-chat widget. Embed with one tag on any site:
 *   <script src="https://support.example.com/chat/widget.js" defer></script>
 * Put <div id="caseflow-chat" data-caseflow-inline="true"></div> on the page to show the chat
 * in place instead of behind a button. Plain JavaScript, no build step, no third-party code.
 * Protocol: docs/chat.md. Messages are shown as sent only once the server acknowledged them
 * (after they were stored); unacknowledged messages are sent again, with the same client id,
 * after a reconnect.
 */
(function () {
  "use strict";
  if (window.__caseflowChat) { return; }
  window.__caseflowChat = true;

  var script = document.currentScript;
  var origin = new URL(script ? script.src : "/chat/widget.js", window.location.href).origin;
  var wsUrl = origin.replace(/^http/, "ws") + "/chat/ws";
  var store = {
    get: function (k) { try { return window.localStorage.getItem("caseflow." + k); } catch (e) { return null; } },
    set: function (k, v) { try { window.localStorage.setItem("caseflow." + k, v); } catch (e) { /* private mode */ } },
    del: function (k) { try { window.localStorage.removeItem("caseflow." + k); } catch (e) { /* private mode */ } }
  };

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) { e.textContent = text; }
    return e;
  }

  // Styles come from the Caseflow server, so embedding sites need nothing else.
  if (!document.querySelector("link[data-caseflow]")) {
    document.head.appendChild(el("link", { rel: "stylesheet", href: origin + "/static/caseflow.css", "data-caseflow": "" }));
  }

  var host = document.getElementById("caseflow-chat");
  var inline = !!(host && host.getAttribute("data-caseflow-inline"));
  var root = el("section", { "class": "cf-chat " + (inline ? "cf-chat-inline" : "cf-chat-floating"), "aria-label": "Live chat" });
  var header = el("header");
  header.appendChild(el("h2", {}, "Chat with support"));
  var endBtn = el("button", { type: "button", "data-cf": "end" }, "End chat");
  header.appendChild(endBtn);
  root.appendChild(header);
  var status = el("p", { "class": "cf-chat-status", role: "status" }, "Connecting…");
  root.appendChild(status);
  var log = el("ol", { "class": "cf-chat-log", role: "log", "aria-live": "polite", "aria-label": "Conversation" });
  root.appendChild(log);
  var typing = el("p", { "class": "cf-typing", "aria-live": "polite" });
  root.appendChild(typing);

  // First contact: name, optional email, topic.
  var start = el("form", { "class": "cf-chat-start", "data-cf": "start" });
  start.appendChild(el("label", { "for": "cf-name" }, "Your name"));
  var nameIn = el("input", { id: "cf-name", name: "name", autocomplete: "name", maxlength: "200" });
  start.appendChild(nameIn);
  start.appendChild(el("label", { "for": "cf-email" }, "Email (optional: we answer there if you leave)"));
  var emailIn = el("input", { id: "cf-email", name: "email", type: "email", autocomplete: "email", maxlength: "254" });
  start.appendChild(emailIn);
  var topicLabel = el("label", { "for": "cf-topic" }, "Topic");
  var topicIn = el("select", { id: "cf-topic", name: "topic" });
  start.appendChild(topicLabel);
  start.appendChild(topicIn);
  start.appendChild(el("button", { type: "submit" }, "Start chat"));

  var compose = el("form", { "data-cf": "compose" });
  var textLabel = el("label", { "for": "cf-text", "class": "cf-visually-hidden" }, "Message");
  var text = el("textarea", { id: "cf-text", name: "message", rows: "2", placeholder: "Type your message…" });
  compose.appendChild(textLabel);
  compose.appendChild(text);
  compose.appendChild(el("button", { type: "submit" }, "Send"));

  fetch(origin + "/api/v1/public/topics").then(function (r) { return r.ok ? r.json() : { items: [] }; }).then(function (t) {
    if (!t.items.length) { topicLabel.remove(); topicIn.remove(); return; }
    topicIn.appendChild(el("option", { value: "" }, "Choose a topic"));
    t.items.forEach(function (i) { topicIn.appendChild(el("option", { value: i.key }, i.label)); });
  }).catch(function () { topicLabel.remove(); topicIn.remove(); });

  var ws = null;
  var session = null;
  // What this page shows; a new page load replays the whole conversation on resume.
  var lastSeq = 0;
  var currentCase = null; // seq counts per case: a new case starts again from 1
  var pending = {};      // client_id -> {body, li}
  var pendingOrder = [];
  var retry = 0;
  var typingSent = 0;
  var ended = false;

  function showForm(form) {
    [start, compose].forEach(function (f) { if (f.parentNode) { f.remove(); } });
    if (form) { root.appendChild(form); }
  }

  function send(obj) {
    if (ws && ws.readyState === 1) { ws.send(JSON.stringify(obj)); return true; }
    return false;
  }

  function addLine(author, who, body, extraClass) {
    var li = el("li", { "class": "cf-line cf-line-" + author + (extraClass ? " " + extraClass : "") });
    if (who) { li.appendChild(el("span", { "class": "cf-who" }, who)); }
    if (author === "system") {
      // The service's own lines (the greeting, a satisfaction survey) may carry links to this
      // server's pages: those become links; everything else stays text.
      body.split(/(https?:\/\/[^\s]+)/).forEach(function (part, i) {
        var ours = false;
        try { ours = i % 2 === 1 && new URL(part).origin === origin; } catch (e) { ours = false; }
        li.appendChild(ours ? el("a", { href: part, target: "_blank", rel: "noopener noreferrer" }, part) : document.createTextNode(part));
      });
    } else {
      li.appendChild(document.createTextNode(body));
    }
    log.appendChild(li);
    log.scrollTop = log.scrollHeight;
    return li;
  }

  function onMessage(m) {
    if (m.seq <= lastSeq) { return; }
    lastSeq = m.seq;
    var mine = m.client_id && pending[m.client_id];
    if (mine) {
      mine.li.classList.remove("cf-line-pending");
      delete pending[m.client_id];
    } else {
      var who = m.author === "agent" ? m.author_name : (m.author === "customer" ? "You" : "");
      addLine(m.author, who, m.body);
    }
    if (m.author === "agent") { typing.textContent = ""; }
    send({ type: "received", seq: lastSeq });
  }

  function connect() {
    status.textContent = "Connecting…";
    ws = new WebSocket(wsUrl);
    ws.onopen = function () {
      retry = 0;
      var sid = store.get("session_id");
      var tok = store.get("token");
      if (sid && tok) {
        send({ type: "resume", session_id: sid, token: tok, last_seq: lastSeq });
      } else {
        status.textContent = "Tell us who you are, then write your message.";
        showForm(start);
      }
    };
    ws.onmessage = function (ev) {
      var m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      if (m.type === "session") {
        session = m;
        if (m.case_id !== currentCase) { currentCase = m.case_id; lastSeq = 0; }
        store.set("session_id", m.session_id);
        store.set("visitor_id", m.visitor_id);
        if (m.resume_token) { store.set("token", m.resume_token); }
        status.textContent = m.case_number ? "Case #" + m.case_number : "Connected. Write your message.";
        showForm(compose);
        // Messages not acknowledged before a reconnect go again, with the same client id.
        pendingOrder.forEach(function (cid) { if (pending[cid]) { send({ type: "message", client_id: cid, body: pending[cid].body }); } });
      } else if (m.type === "message") {
        onMessage(m);
      } else if (m.type === "ack") {
        if (m.case_id !== currentCase) { currentCase = m.case_id; lastSeq = 0; }
        if (pending[m.client_id]) { pending[m.client_id].li.classList.remove("cf-line-pending"); }
        status.textContent = "Case #" + m.case_number;
      } else if (m.type === "typing") {
        typing.textContent = m.typing ? (m.name || "Support") + " is typing…" : "";
      } else if (m.type === "ended") {
        ended = true;
        lastSeq = 0;
        currentCase = null;
        ["session_id", "token"].forEach(store.del);
        status.textContent = "Chat ended. We will answer by email if you left an address.";
        showForm(null);
      } else if (m.type === "error") {
        if (m.code === "unauthenticated" || m.code === "not_found") {
          // The stored session is gone: start afresh.
          ["session_id", "token"].forEach(store.del);
          lastSeq = 0;
          showForm(start);
        }
        status.textContent = m.message;
        if (m.client_id && pending[m.client_id] && m.code !== "rate_limited") {
          pending[m.client_id].li.classList.add("cf-line-failed");
        }
      }
    };
    ws.onclose = function () {
      ws = null;
      if (ended) { return; }
      status.textContent = "Reconnecting…";
      retry = Math.min(retry + 1, 6);
      setTimeout(connect, 500 * Math.pow(2, retry - 1));
    };
  }

  start.addEventListener("submit", function (e) {
    e.preventDefault();
    var f = { type: "start", name: nameIn.value, email: emailIn.value || null, topic: topicIn.value || null };
    var vid = store.get("visitor_id");
    if (vid) { f.visitor_id = vid; }
    send(f);
  });

  compose.addEventListener("submit", function (e) {
    e.preventDefault();
    var body = text.value.trim();
    if (!body) { return; }
    var cid = "c-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 10);
    pending[cid] = { body: body, li: addLine("customer", "You", body, "cf-line-pending") };
    pendingOrder.push(cid);
    text.value = "";
    send({ type: "typing", typing: false });
    send({ type: "message", client_id: cid, body: body });
  });

  text.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); compose.requestSubmit(); }
  });
  text.addEventListener("input", function () {
    var now = Date.now();
    if (now - typingSent > 3000) { typingSent = now; send({ type: "typing", typing: true }); }
  });

  endBtn.addEventListener("click", function () {
    if (!send({ type: "end" })) { ended = true; }
  });

  function mount() {
    if (inline) {
      host.appendChild(root);
      connect();
      return;
    }
    var launcher = el("button", { type: "button", "class": "cf-chat-launcher", "aria-expanded": "false" }, "Chat with us");
    document.body.appendChild(launcher);
    launcher.addEventListener("click", function () {
      var open = launcher.getAttribute("aria-expanded") === "true";
      launcher.setAttribute("aria-expanded", open ? "false" : "true");
      if (open) { root.remove(); return; }
      document.body.appendChild(root);
      if (!ws) { ended = false; connect(); }
      text.focus();
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", mount); } else { mount(); }
})();
