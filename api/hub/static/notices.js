// The drain's countdown, kept current between page loads (the server wrote the first words;
// without JavaScript they stay as written). Loaded as a file: the CSP is script-src 'self'.
"use strict";
(function () {
  var span = document.getElementById("drain-countdown");
  if (!span) return;
  var at = Date.parse(span.getAttribute("data-at"));
  if (isNaN(at)) return;
  function words() {
    var left = Math.floor((at - Date.now()) / 1000);
    if (left <= 0) return "now";
    if (left < 60) return "in less than a minute";
    var minutes = Math.ceil(left / 60), hours = Math.floor(minutes / 60);
    minutes = minutes % 60;
    var parts = [];
    if (hours) parts.push(hours + " hour" + (hours === 1 ? "" : "s"));
    if (minutes) parts.push(minutes + " minute" + (minutes === 1 ? "" : "s"));
    return "in " + parts.join(" ");
  }
  function tick() { span.textContent = words(); }
  tick();
  setInterval(tick, 15000);
})();
