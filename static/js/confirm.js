// Asks before submitting any form marked data-confirm="question" (status changes,
// rollbacks, deletions). A static file, so the CSP can forbid inline scripts; without
// JavaScript the form still submits, and the server still checks everything.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);
})();
