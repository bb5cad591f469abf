// hostd hub: live progress while a server starts (progressive enhancement: without this
// script the page refreshes itself). Reads /hub/api/users/<name>/server/progress (SSE).
"use strict";
(function () {
  var box = document.getElementById("progress");
  if (!box || !window.EventSource) {
    if (document.getElementById("server-state")) {
      setTimeout(function () { window.location.reload(); }, 3000);
    }
    return;
  }
  var bar = document.getElementById("progress-bar");
  var text = document.getElementById("progress-message");
  var source = new EventSource(box.getAttribute("data-progress-url"));
  source.onmessage = function (message) {
    var event = JSON.parse(message.data);
    if (typeof event.progress === "number") { bar.value = event.progress; }
    if (event.message) { text.textContent = event.message; }
    if (event.ready || event.failed) {
      source.close();
      var next = box.getAttribute("data-next");
      if (event.ready && next) { window.location.assign(next); } else { window.location.reload(); }
    }
  };
  source.onerror = function () {
    source.close();
    setTimeout(function () { window.location.reload(); }, 3000);
  };
})();
