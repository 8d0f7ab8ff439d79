// Draws every Plotly figure embedded as JSON in a data-plotly-figure attribute, on load
// and after htmx settles new content in. Kept out of the HTML so the CSP can forbid inline
// scripts; plotly-strict is the plotly.js bundle that needs no eval.
//
// Why afterSettle and not afterSwap: htmx's settle step, which runs after afterSwap, puts
// the server's class/style/width/height back on every swapped-in element with an id
// (htmx.config.attributesToSettle). A chart drawn on afterSwap then loses Plotly's
// js-plotly-plot class, and with it Plotly's CSS: grey modebars, legends over the next card.
(function () {
  "use strict";

  function draw(root) {
    if (!window.Plotly || !root.querySelectorAll) return;
    var charts = Array.from(root.querySelectorAll("[data-plotly-figure]"));
    if (root.matches && root.matches("[data-plotly-figure]")) charts.unshift(root);
    charts.forEach(function (element) {
      var figure = JSON.parse(element.getAttribute("data-plotly-figure"));
      window.Plotly.react(element, figure.data, figure.layout || {}, {
        responsive: true,
        displaylogo: false,
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSettle", function (event) { draw(event.target); });
})();
