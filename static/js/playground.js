// The prompt page's playground: "Run" posts the form and streams the answer into the
// page as it arrives (newline-delimited JSON: {"type": "delta"|"done"|"refused"}), then
// shows tokens, latency, time to first token and cost; "Compare" starts two runs
// together (another version and/or another model) side by side. A static file (the CSP
// forbids inline scripts); the CSRF token comes from the page's meta tag. Listeners sit
// on the document, so the form keeps working after htmx swaps the page.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function uuid4() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "10000000-1000-4000-8000-100000000000".replace(/[018]/g, function (c) {
      return (c ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16);
    });
  }

  function figures(done) {
    var parts = [
      done.input_tokens + " in / " + done.output_tokens + " out tokens",
      done.latency_ms + " ms",
    ];
    if (done.time_to_first_token_ms !== null && done.time_to_first_token_ms !== undefined) {
      parts.push("first token " + done.time_to_first_token_ms + " ms");
    }
    parts.push("$" + done.cost_usd);
    return parts.join(" · ");
  }

  function show(pane, title) {
    pane.hidden = false;
    pane.classList.remove("run-error");
    pane.querySelector(".pane-title").textContent = title;
    pane.querySelector(".pane-output").textContent = "";
    pane.querySelector(".pane-figures").textContent = "Running…";
  }

  // The service names fields as the API does ("variables.topic", "params.temperature",
  // "model_id"); the page says them with the form's own labels ("topic", "Temperature").
  function fieldLabel(form, key) {
    var name = key;
    if (key.indexOf("variables.") === 0) name = "var_" + key.slice("variables.".length);
    else if (key.indexOf("params.") === 0) name = key.slice("params.".length);
    var input = form && form.querySelector('[name="' + name.replace(/["\\]/g, "") + '"]');
    var label = input && input.id && form.querySelector('label[for="' + input.id + '"]');
    if (label && label.firstChild && label.firstChild.textContent.trim()) {
      return label.firstChild.textContent.replace(/\s*\(optional\)\s*$/, "").trim();
    }
    if (key === "variables") return "Variables";
    var words = key.replace(/^(variables|params)\./, "").replace(/_id$/, "").replace(/_/g, " ");
    return words.charAt(0).toUpperCase() + words.slice(1);
  }

  function handle(pane, message) {
    var output = pane.querySelector(".pane-output");
    var status = pane.querySelector(".pane-figures");
    if (message.type === "delta") {
      output.textContent += message.text;
    } else if (message.type === "done") {
      if (message.error) {
        pane.classList.add("run-error");
        status.textContent = message.error;
      } else {
        status.textContent = figures(message);
      }
      pane.setAttribute("data-run-id", message.run_id);
    } else if (message.type === "refused") {
      pane.classList.add("run-error");
      var fields = message.fields || {};
      var form = document.getElementById("playground-form");
      var named = Object.keys(fields).map(function (key) {
        var problem = String(fields[key]);
        // The parameters are checked as one object: "temperature must be between 0 and 2".
        var first = problem.split(" ")[0];
        if (key === "params" && form && form.querySelector('[name="' + first + '"]')) {
          return fieldLabel(form, "params." + first) + ": " + problem.slice(first.length + 1);
        }
        return fieldLabel(form, key) + ": " + problem;
      });
      status.textContent = named.length ? named.join("; ") : message.message;
    }
  }

  function run(url, body, pane) {
    return fetch(url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), Accept: "application/x-ndjson" },
    }).then(function (response) {
      if (!response.body) throw new Error("no body");
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) {
            if (buffer.trim()) handle(pane, JSON.parse(buffer));
            return;
          }
          buffer += decoder.decode(chunk.value, { stream: true });
          var lines = buffer.split("\n");
          buffer = lines.pop();
          lines.forEach(function (line) {
            if (line.trim()) handle(pane, JSON.parse(line));
          });
          return pump();
        });
      }
      return pump();
    }).catch(function () {
      pane.classList.add("run-error");
      pane.querySelector(".pane-figures").textContent =
        "The run could not be started or its answer was cut off (network or session).";
    });
  }

  function label(select) {
    return select.options[select.selectedIndex].text;
  }

  // While runs are in flight the form's buttons are disabled: a second click would start
  // (and pay for) a second run.
  function busy(form, on) {
    form.querySelectorAll("button").forEach(function (button) { button.disabled = on; });
    form.setAttribute("aria-busy", on ? "true" : "false");
  }

  function start(form, compare) {
    if (form.getAttribute("aria-busy") === "true") return Promise.resolve();
    busy(form, true);
    return begin(form, compare).then(function () { busy(form, false); });
  }

  function begin(form, compare) {
    var paneA = document.getElementById("pane-a");
    var paneB = document.getElementById("pane-b");
    var versionSelect = form.querySelector('[name="compare_version"]');
    var modelSelect = form.querySelector('[name="compare_model"]');
    var model = form.querySelector('[name="model_id"]');
    var problem = document.getElementById("playground-problem");
    problem.hidden = true;
    var base = new FormData(form);
    base.delete("compare_version");
    base.delete("compare_model");
    var title = document.title.split(" · ")[0];
    if (!compare) {
      paneB.hidden = true;
      show(paneA, title + " on " + label(model));
      return run(form.getAttribute("data-run-url"), base, paneA).then(done);
    }
    if (!versionSelect.value && !modelSelect.value) {
      problem.textContent = "Choose another version or another model to compare with.";
      problem.hidden = false;
      return Promise.resolve();
    }
    var group = uuid4();
    var second = new FormData(form);
    second.delete("compare_version");
    second.delete("compare_model");
    if (modelSelect.value) second.set("model_id", modelSelect.value);
    base.set("compare_group", group);
    second.set("compare_group", group);
    show(paneA, title + " on " + label(model));
    show(paneB, (versionSelect.value ? label(versionSelect) : title) + " on " +
      (modelSelect.value ? label(modelSelect) : label(model)));
    // Both requests leave before either answer is read: the runs happen together.
    return Promise.all([
      run(form.getAttribute("data-run-url"), base, paneA),
      run(versionSelect.value || form.getAttribute("data-run-url"), second, paneB),
    ]).then(done);
  }

  function done() {
    document.body.dispatchEvent(new CustomEvent("playground:ran"));
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.id !== "playground-form") return;
    event.preventDefault();
    start(form, false);
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest('[data-playground="compare"]');
    if (!button) return;
    event.preventDefault();
    start(button.form, true);
  });
})();
