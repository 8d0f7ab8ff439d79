// Copy buttons: <button data-copy-target="ID" hidden> copies the text of element ID (a
// new API key's secret) to the clipboard. A static file, so the CSP can forbid inline
// scripts. The button stays hidden where the clipboard API is missing; the secret is
// selectable text (user-select: all) either way.
(function () {
  "use strict";
  function enable(root) {
    if (!navigator.clipboard) return;
    root.querySelectorAll("button[data-copy-target]").forEach(function (button) {
      button.hidden = false;
    });
  }
  document.addEventListener("DOMContentLoaded", function () { enable(document); });
  document.addEventListener("htmx:afterSettle", function () { enable(document); });
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-copy-target]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy-target"));
    var status = button.parentElement.querySelector(".copy-status");
    if (!source) return;
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      if (status) status.textContent = "Copied.";
    }, function () {
      if (status) status.textContent = "Copying failed: select the text and copy it.";
    });
  });
})();
