// Turnout console behaviour, loaded from a file (the CSP allows no inline script).
(function () {
  "use strict";
  var opener = null;

  function openDialog(id, from) {
    var dialog = document.getElementById(id);
    if (!dialog) return;
    opener = from || document.activeElement;
    dialog.showModal();  // Esc closes a modal <dialog>; focus moves to its first field
    var first = dialog.querySelector("input:not([type=hidden]), select, textarea");
    if (first) first.focus();
  }

  function closeDialogs() {
    document.querySelectorAll("dialog[open]").forEach(function (d) { d.close(); });
  }

  document.addEventListener("click", function (ev) {
    var r = ev.target.closest("[data-trigger]");
    if (r) { refresh(r.getAttribute("data-trigger")); return; }
    var t = ev.target.closest("[data-open]");
    if (t) { openDialog(t.getAttribute("data-open"), t); return; }
    var c = ev.target.closest("[data-close]");
    if (c) { var d = c.closest("dialog"); if (d) d.close(); }
  });

  // focus goes back to what opened the dialog
  document.addEventListener("close", function (ev) {
    if (ev.target.tagName === "DIALOG" && opener) { opener.focus(); opener = null; }
  }, true);

  // after a successful save: clear the form (a typed key never lingers) and close it
  document.body.addEventListener("turnout-close-dialogs", function () {
    document.querySelectorAll("form[data-reset-on-success]").forEach(function (f) { f.reset(); });
    closeDialogs();
  });

  // a typed key never lingers: password fields are emptied once their form was sent
  document.body.addEventListener("htmx:afterRequest", function (ev) {
    var f = ev.detail.elt;
    if (f && f.matches && f.matches("form[data-clear-secrets]")) {
      f.querySelectorAll("input[type=password]").forEach(function (i) { i.value = ""; });
    }
  });

  // a form fetched into a closed dialog (e.g. Edit) opens it, focus on its first field
  document.body.addEventListener("htmx:afterSwap", function (ev) {
    var d = ev.detail.target && ev.detail.target.closest && ev.detail.target.closest("dialog");
    if (d && !d.open) openDialog(d.id, ev.detail.requestConfig && ev.detail.requestConfig.elt);
  });

  // toasts leave by themselves
  document.body.addEventListener("htmx:afterSwap", function (ev) {
    if (ev.detail.target && ev.detail.target.id === "toasts") {
      var toasts = ev.detail.target.querySelectorAll(".toast:not([data-timed])");
      toasts.forEach(function (el) {
        el.setAttribute("data-timed", "1");
        setTimeout(function () { el.remove(); }, 6000);
      });
    }
  });

  // the cost calculator: tokens in/out at a price per 1M tokens -> USD
  function calc() {
    var f = function (id) { var el = document.getElementById(id); return el ? parseFloat(el.value) || 0 : 0; };
    var out = document.getElementById("calc-result");
    if (!out) return;
    var usd = (f("calc-tin") * f("calc-in") + f("calc-tout") * f("calc-out")) / 1e6;
    out.textContent = "$" + usd.toFixed(6);
  }
  document.addEventListener("input", function (ev) { if (ev.target.id && ev.target.id.indexOf("calc-") === 0) calc(); });
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest("[data-prices]");
    if (!b) return;
    var p = b.getAttribute("data-prices").split(" ");
    document.getElementById("calc-in").value = p[0];
    document.getElementById("calc-out").value = p[1];
    calc();
  });

  // copy a value shown once (a new key) or a key hint to the clipboard
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest("[data-copy], [data-copy-text]");
    if (!b) return;
    var text = b.getAttribute("data-copy-text");
    if (text === null) {
      var el = document.querySelector(b.getAttribute("data-copy"));
      text = el ? el.textContent.trim() : "";
    }
    if (text && navigator.clipboard) navigator.clipboard.writeText(text);
    b.textContent = "Copied";
  });

  // the usage chart (uPlot), from the JSON island the page carries
  var chart = null;
  function drawUsage(measure) {
    var island = document.getElementById("usage-series");
    var box = document.getElementById("usage-chart");
    if (!island || !box || !window.uPlot) return;
    var rows = JSON.parse(island.textContent);
    var xs = rows.map(function (r) { return Date.parse(r.day + "T00:00:00Z") / 1000; });
    var ys = rows.map(function (r) { return parseFloat(r[measure]); });
    if (chart) chart.destroy();
    chart = new window.uPlot({
      width: Math.max(600, box.clientWidth - 10), height: 240,
      series: [{}, { label: measure, stroke: "#2f5bd3", fill: "rgba(47,91,211,0.1)", points: { show: true } }],
      axes: [{}, { size: 120, values: function (u, splits) {
        return splits.map(function (v) { return v === 0 ? "0" : Number(v.toPrecision(3)).toString(); });
      } }],
      // the days in the data (uPlot's own guess for a single day spans years): one day is
      // shown with a day either side
      scales: { x: { time: true, range: function () {
        var lo = Math.min.apply(null, xs), hi = Math.max.apply(null, xs);
        return lo === hi ? [lo - 86400, hi + 86400] : [lo, hi];
      } } },
    }, [xs, ys], box);
    document.querySelectorAll("[data-measure]").forEach(function (b) {
      b.setAttribute("aria-pressed", b.getAttribute("data-measure") === measure ? "true" : "false");
    });
  }
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest("[data-measure]");
    if (b) drawUsage(b.getAttribute("data-measure"));
  });
  window.addEventListener("load", function () { drawUsage("requests"); });

  function refresh(sel) {
    var el = document.querySelector(sel);
    if (el && window.htmx) window.htmx.trigger(el, "providers-changed");
  }

  // htmx hands a 401 with HX-Redirect to the sign-in page itself; auto-refresh toggles:
  var timers = {};
  document.addEventListener("change", function (ev) {
    var box = ev.target;
    if (!box.matches("[data-refresh]")) return;
    var sel = box.getAttribute("data-refresh");
    clearInterval(timers[sel]);
    if (box.checked) {
      var every = parseInt(box.getAttribute("data-every") || "60", 10) * 1000;
      timers[sel] = setInterval(function () { refresh(sel); }, every);
    }
  });
})();
