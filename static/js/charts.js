// Draws every Plotly figure embedded as JSON in a data-plotly-figure attribute, on load
// and after htmx swaps new content in. Kept out of the HTML so the CSP can forbid inline
// scripts; plotly-strict is the plotly.js bundle that needs no eval.
(function () {
  "use strict";

  function draw(root) {
    if (!window.Plotly) return;
    root.querySelectorAll("[data-plotly-figure]").forEach(function (element) {
      var figure = JSON.parse(element.getAttribute("data-plotly-figure"));
      window.Plotly.react(element, figure.data, figure.layout || {}, {
        responsive: true,
        displaylogo: false,
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSwap", function (event) { draw(event.target); });
})();
