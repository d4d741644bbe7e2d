// The testing lab: templates fill the composer; Send posts it to /lab/run and the answer is
// read as it streams (the console's own Server-Sent Events: meta, delta, done, error).
// Everything received is inserted as text, never as markup.
(function () {
  "use strict";
  var form = document.getElementById("lab-form");
  if (!form) return;
  var answer = document.getElementById("lab-answer");
  var status = document.getElementById("lab-status");
  var send = document.getElementById("lab-send");
  var stop = document.getElementById("lab-stop");
  var island = document.getElementById("lab-templates");
  var templates = island ? JSON.parse(island.textContent) : [];
  var running = null;

  function metric(name, value) {
    var el = document.querySelector('[data-metric="' + name + '"]');
    if (el) el.textContent = value === null || value === undefined ? "—" : String(value);
  }

  function toast(kind, message) {
    var box = document.getElementById("toasts");
    var el = document.createElement("div");
    el.className = "toast toast-" + kind;
    el.setAttribute("role", kind === "error" ? "alert" : "status");
    el.textContent = message;
    box.appendChild(el);
    setTimeout(function () { el.remove(); }, 6000);
  }

  var select = document.getElementById("lab-template");
  if (select && select.tagName === "SELECT") {
    select.addEventListener("change", function () {
      var t = templates.filter(function (x) { return x.id === select.value; })[0];
      var note = document.getElementById("lab-template-note");
      if (!t) { note.textContent = ""; return; }
      document.getElementById("lab-prompt").value = t.prompt;
      document.getElementById("lab-temp").value = t.parameters.temperature;
      document.getElementById("lab-max").value = t.parameters.max_tokens;
      var s = t.suggested_models && t.suggested_models.length ? " Suggested: " + t.suggested_models.join(", ") + "." : "";
      note.textContent = t.description + "." + s;
    });
  }

  // Ctrl+Enter (or Cmd+Enter) in a text area sends; Enter in a one-line field submits anyway
  form.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); form.requestSubmit(); }
  });

  function reset() {
    answer.textContent = "";
    ["model", "provider", "input_tokens", "output_tokens", "latency_ms", "ttft_ms"].forEach(function (m) { metric(m, null); });
    document.getElementById("lab-cost").textContent = "—";
  }

  function handle(name, data) {
    if (name === "meta") {
      metric("model", data.model); metric("provider", data.provider);
      status.textContent = "Streaming from " + (data.model || "?") + "…";
    } else if (name === "delta") {
      answer.textContent += data.text;
    } else if (name === "done") {
      metric("input_tokens", data.input_tokens); metric("output_tokens", data.output_tokens);
      metric("latency_ms", data.latency_ms + " ms");
      metric("ttft_ms", data.ttft_ms === null ? null : data.ttft_ms + " ms");
      status.textContent = "Done (request " + data.request_id + ").";
      if (window.htmx && data.request_id) {
        window.htmx.ajax("GET", "/lab/result/" + encodeURIComponent(data.request_id) + "?model=" + encodeURIComponent(data.model || ""), { target: "#lab-cost", swap: "innerHTML" });
      }
    } else if (name === "error") {
      status.textContent = "Failed: " + data.message;
      toast("error", data.message);
      if (data.request_id && window.htmx) window.htmx.trigger(document.body, "lab-ran");
    }
  }

  function frames(buffer, onFrame) {
    var parts = buffer.split("\n\n");
    var rest = parts.pop();
    parts.forEach(function (frame) {
      var name = "message", data = "";
      frame.split("\n").forEach(function (line) {
        if (line.indexOf("event: ") === 0) name = line.slice(7);
        else if (line.indexOf("data: ") === 0) data += line.slice(6);
      });
      if (data) onFrame(name, JSON.parse(data));
    });
    return rest;
  }

  function finish() {
    running = null;
    send.disabled = false; stop.disabled = true;
    answer.setAttribute("aria-busy", "false");
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (running) return;
    reset();
    var body = new FormData(form);
    var controller = new AbortController();
    running = controller;
    send.disabled = true; stop.disabled = false;
    answer.setAttribute("aria-busy", "true");
    status.textContent = "Sending…";
    fetch("/lab/run", { method: "POST", body: body, signal: controller.signal, credentials: "same-origin",
                         headers: { "HX-Request": "true" } })
      .then(function (resp) {
        var type = resp.headers.get("content-type") || "";
        if (!resp.ok || type.indexOf("text/event-stream") !== 0) {
          return resp.text().then(function (html) {
            var doc = new DOMParser().parseFromString(html, "text/html");
            var found = doc.querySelector(".toast, main, body");
            var msg = (found ? found.textContent : "").trim() || ("HTTP " + resp.status);
            if (resp.status === 401) { window.location.href = "/login?expired=1"; return; }
            handle("error", { message: msg });
          });
        }
        var reader = resp.body.getReader();
        var decoder = new TextDecoder();
        var buffer = "";
        function pump() {
          return reader.read().then(function (r) {
            if (r.done) { frames(buffer + "\n\n", handle); return; }
            buffer = frames(buffer + decoder.decode(r.value, { stream: true }), handle);
            return pump();
          });
        }
        return pump();
      })
      .catch(function (err) {
        if (err.name === "AbortError") status.textContent = "Stopped.";
        else handle("error", { message: "the console did not answer (" + err.name + ")" });
      })
      .then(finish);
  });

  stop.addEventListener("click", function () { if (running) running.abort(); });
})();
