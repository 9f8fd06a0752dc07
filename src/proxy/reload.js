// cargo hot live reload: injected into HTML pages served through `cargo hot --proxy`.
// Reloads the page when a new run of the app is ready, shows cargo's error in an overlay when
// a build fails, and reconnects when cargo hot itself restarts. Served at
// /__cargo_hot/reload.js; its events come from /__cargo_hot/events.
(function () {
  "use strict";
  if (window.__cargoHot) return;
  window.__cargoHot = { reloads: 0 };
  var OVERLAY_ID = "__cargo_hot_overlay";
  var COLOURS = ["#555", "#e05252", "#5fb85f", "#d6b84b", "#5b8fe0", "#c678dd", "#4fb6c4", "#ddd",
    "#888", "#ff6b6b", "#7ee07e", "#ffd75f", "#7aa7ff", "#e08aff", "#6fe0ee", "#fff"];

  function escapeHtml(text) {
    return text.replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  // cargo's rendered error, its SGR colours as spans; other escapes dropped.
  function ansiToHtml(text) {
    var style = { bold: false, underline: false, color: null };
    var out = "";
    var parts = text.split(/\x1b\[([0-9;]*)([@-~])/);
    for (var i = 0; i < parts.length; i += 3) {
      var chunk = parts[i].replace(/\x1b./g, "");
      if (chunk) {
        var css = (style.bold ? "font-weight:bold;" : "") +
          (style.underline ? "text-decoration:underline;" : "") +
          (style.color ? "color:" + style.color + ";" : "");
        out += css ? '<span style="' + css + '">' + escapeHtml(chunk) + "</span>" : escapeHtml(chunk);
      }
      if (i + 2 < parts.length && parts[i + 2] === "m") {
        var codes = parts[i + 1].split(";").map(function (p) { return parseInt(p, 10) || 0; });
        for (var j = 0; j < codes.length; j++) {
          var c = codes[j];
          if (c === 0) style = { bold: false, underline: false, color: null };
          else if (c === 1) style.bold = true;
          else if (c === 4) style.underline = true;
          else if (c === 22) style.bold = false;
          else if (c === 24) style.underline = false;
          else if (c === 39) style.color = null;
          else if (c >= 30 && c <= 37) style.color = COLOURS[c - 30];
          else if (c >= 90 && c <= 97) style.color = COLOURS[c - 90 + 8];
          else if (c === 38 && codes[j + 1] === 5) { style.color = COLOURS[codes[j + 2]] || null; j += 2; }
        }
      }
    }
    return out;
  }

  function removeOverlay() {
    var old = document.getElementById(OVERLAY_ID);
    if (old) old.remove();
  }

  function showOverlay(rendered) {
    removeOverlay();
    var box = document.createElement("div");
    box.id = OVERLAY_ID;
    box.setAttribute("role", "alert");
    box.style.cssText = "position:fixed;inset:0;z-index:2147483647;background:rgba(0,0,0,.85);" +
      "color:#eee;overflow:auto;padding:2em;font:14px/1.4 monospace;text-align:left";
    box.innerHTML =
      '<button type="button" title="Dismiss" style="float:right;font-size:1.2em;cursor:pointer">\u00d7</button>' +
      '<div style="font:bold 18px sans-serif;margin-bottom:1em">cargo hot: the build failed ' +
      '(the page shows the last good build)</div><pre style="white-space:pre-wrap;margin:0"></pre>';
    box.querySelector("pre").innerHTML = ansiToHtml(rendered);
    box.querySelector("button").addEventListener("click", removeOverlay);
    (document.body || document.documentElement).appendChild(box);
  }

  var source = null;
  function connect() {
    source = new EventSource("/__cargo_hot/events");
    source.onopen = function () { window.__cargoHot.connected = true; };
    source.addEventListener("building", function () { window.__cargoHot.building = true; });
    source.addEventListener("build-failed", function (e) { showOverlay(e.data); });
    // A good build that restarted nothing (the fix restored the running executable).
    source.addEventListener("build-ok", removeOverlay);
    source.addEventListener("ready", function () {
      removeOverlay();
      window.__cargoHot.reloads += 1;
      window.location.reload();
    });
    source.onerror = function () {
      // The browser retries by itself while the connection is only interrupted; once it gives
      // up (cargo hot was down and answered with an error), start again after a pause.
      window.__cargoHot.connected = false;
      if (source.readyState === EventSource.CLOSED) {
        source.close();
        setTimeout(connect, 1000);
      }
    };
  }
  connect();
})();
