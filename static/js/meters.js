// Utilization bars: widths come from data-width (a number 0-100), since the CSP forbids
// inline style attributes set by the server.
(function () {
  function size(root) {
    root.querySelectorAll(".meter-fill[data-width]").forEach(function (fill) {
      var width = Math.max(0, Math.min(100, parseFloat(fill.dataset.width) || 0));
      fill.style.width = width + "%";
    });
  }
  document.addEventListener("DOMContentLoaded", function () { size(document); });
  document.addEventListener("htmx:afterSwap", function (event) { size(event.target); });
})();
