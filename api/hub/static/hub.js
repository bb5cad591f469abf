// hostd hub: what the pages do with JavaScript on (each works without it: forms post, the
// starting page refreshes itself inside <noscript>, the logs' Follow link shows plain text).
// Loaded as a file on every page: the CSP is script-src 'self'.
//   - a form's button says what is happening at once (data-busy: "Starting…")
//   - a start's progress: /hub/api/users/<name>/server/progress (SSE, JupyterHub's events),
//     each message listed, then JupyterLab opens by itself
//   - the logs' Follow: /hub/logs/<name>/follow read as it grows, lines added to the page
//   - the admin table: search by user, sort by column
"use strict";
(function () {
  // -- immediate feedback on the forms that start or stop a server ------------------------
  document.querySelectorAll("form[data-busy]").forEach(function (form) {
    form.addEventListener("submit", function () {
      var button = form.querySelector("button[type=submit]");
      if (!button) return;
      // The form is sent all the same (its data is taken after this event); a second
      // click, while the hub waits up to a second for the start, does nothing.
      button.disabled = true;
      button.textContent = form.getAttribute("data-busy");
      button.setAttribute("aria-busy", "true");
    });
  });

  // -- a start's progress --------------------------------------------------------------------
  var box = document.getElementById("progress");
  var state = document.getElementById("server-state");
  if (box && window.EventSource) {
    followProgress(box);
  } else if (state && /^(starting|stopping)$/.test(state.getAttribute("data-state") || "")) {
    setTimeout(function () { window.location.reload(); }, 3000);
  }

  function followProgress(box) {
    var bar = document.getElementById("progress-bar");
    var text = document.getElementById("progress-message");
    var list = document.getElementById("progress-events");
    var last = null;
    var source = new EventSource(box.getAttribute("data-progress-url"));
    source.onmessage = function (message) {
      var event = JSON.parse(message.data);
      if (typeof event.progress === "number") {
        bar.value = event.progress;
        bar.textContent = event.progress + " %";
      }
      if (event.message) {
        text.textContent = event.message;
        // "Starting your server (3 s)" replaces "(2 s)": one line per step, not per second.
        var shape = event.message.replace(/\d+/g, "#");
        if (last && last.getAttribute("data-shape") === shape) {
          last.textContent = event.message;
        } else {
          last = document.createElement("li");
          last.setAttribute("data-shape", shape);
          last.textContent = event.message;
          list.appendChild(last);
        }
      }
      if (event.ready || event.failed) {
        source.close();
        var next = box.getAttribute("data-next") || event.url;
        if (event.ready && next) { window.location.assign(next); } else { window.location.reload(); }
      }
    };
    source.onerror = function () {
      source.close();
      setTimeout(function () { window.location.reload(); }, 3000);
    };
  }

  // -- the logs' Follow, in the page ---------------------------------------------------------
  var follow = document.getElementById("follow");
  var lines = document.getElementById("log-lines");
  if (follow && lines && window.fetch && window.AbortController) {
    var running = null;
    follow.hidden = false;
    follow.addEventListener("click", function () {
      if (running) { running.abort(); return; }
      running = new AbortController();
      setFollowing(true);
      readFollow(follow.getAttribute("data-url"), follow.getAttribute("data-xsrf"), running.signal).catch(function () {}).then(function () {
        running = null;
        setFollowing(false);
      });
    });
  }

  function setFollowing(on) {
    follow.setAttribute("aria-pressed", on ? "true" : "false");
    follow.textContent = on ? "Stop following" : "Follow";
    var status = document.getElementById("follow-status");
    if (status) status.textContent = on ? "Following: new lines appear below as they come." : "";
  }

  function addLine(text) {
    // "2026-12-06 11:00:00 message": the time in its own element, as the server renders it.
    var match = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) ?(.*)$/.exec(text);
    var item = document.createElement("li");
    item.className = "log-line";
    var message = document.createElement("span");
    message.className = "log-message";
    if (match) {
      var time = document.createElement("time");
      time.setAttribute("datetime", match[1] + "T" + match[2] + "Z");
      time.textContent = match[2];
      time.title = match[1];
      item.appendChild(time);
      item.appendChild(document.createTextNode(" "));
      message.textContent = match[3];
    } else {
      message.textContent = text;
    }
    item.appendChild(message);
    var empty = document.getElementById("no-log-lines");
    if (empty) empty.remove();
    var atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
    lines.appendChild(item);
    if (atBottom) item.scrollIntoView({ block: "end" });
  }

  async function readFollow(url, xsrf, signal) {
    // The page's CSRF token: the hub lets a script read Follow only with it.
    var response = await fetch(url, {
      signal: signal, credentials: "same-origin", headers: { "X-XSRFToken": xsrf || "" }
    });
    if (!response.ok || !response.body) throw new Error("follow: " + response.status);
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var held = "";
    for (;;) {
      var chunk = await reader.read();
      if (chunk.done) break;
      held += decoder.decode(chunk.value, { stream: true });
      var parts = held.split("\n");
      held = parts.pop();
      parts.forEach(function (part) { if (part) addLine(part); });
    }
  }

  // -- the admin table: search and sort -------------------------------------------------------
  var table = document.getElementById("users");
  var search = document.getElementById("user-search");
  if (table && search) {
    var rows = function () { return Array.prototype.slice.call(table.tBodies[0].rows); };
    var count = document.getElementById("user-count");
    document.getElementById("user-search-box").hidden = false;
    search.addEventListener("input", function () {
      var wanted = search.value.trim().toLowerCase();
      var shown = 0;
      rows().forEach(function (row) {
        var match = (row.getAttribute("data-user") || "").toLowerCase().indexOf(wanted) !== -1;
        row.hidden = !match;
        if (match) shown += 1;
      });
      if (count) count.textContent = shown + " of " + rows().length + " users shown";
    });
    table.querySelectorAll("th button[data-sort]").forEach(function (button) {
      button.addEventListener("click", function () {
        var key = button.getAttribute("data-sort");
        var header = button.closest("th");
        var ascending = header.getAttribute("aria-sort") !== "ascending";
        table.querySelectorAll("th[aria-sort]").forEach(function (th) { th.removeAttribute("aria-sort"); });
        header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var numeric = button.hasAttribute("data-numeric");
        var value = function (row) {
          var text = row.getAttribute("data-" + key) || "";
          return numeric ? parseFloat(text) || 0 : text.toLowerCase();
        };
        var sorted = rows().sort(function (a, b) {
          var x = value(a), y = value(b);
          return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1);
        });
        sorted.forEach(function (row) { table.tBodies[0].appendChild(row); });
      });
    });
  }
})();
