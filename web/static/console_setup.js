// The live quote preview of the earn rule form (console partner page): while
// the operator edits the rule or the sample purchase, the form is posted to
// its data-quote URL (the same quote the admin API answers) and the points
// it would earn are shown. Without this script the form still publishes.
(function () {
  var form = document.getElementById("rule-form");
  var out = document.getElementById("quote-result");
  if (!form || !out || !form.getAttribute("data-quote")) {
    return;
  }
  var timer = null;
  var seq = 0;
  function text(tag, cls, s) {
    var el = document.createElement(tag);
    if (cls) {
      el.className = cls;
    }
    el.textContent = s;
    return el;
  }
  function show(nodes) {
    out.textContent = "";
    for (var i = 0; i < nodes.length; i++) {
      out.appendChild(nodes[i]);
    }
  }
  function run() {
    var mine = ++seq;
    var body = new URLSearchParams(new FormData(form));
    fetch(form.getAttribute("data-quote"), { method: "POST", body: body, credentials: "same-origin",
      headers: { "Accept": "application/json" } })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, j: j }; }); })
      .then(function (res) {
        if (mine !== seq) {
          return; // an older answer
        }
        if (!res.ok) {
          var msg = res.j.title || "The preview failed";
          if (res.j.errors && res.j.errors.length) {
            msg += ": " + res.j.errors.map(function (e) { return e.field.replace(/_/g, " ") + " " + e.message; }).join("; ");
          }
          show([text("span", "err", msg)]);
          out.setAttribute("data-state", "error");
          return;
        }
        var list = document.createElement("ul");
        (res.j.breakdown || []).forEach(function (l) {
          list.appendChild(text("li", "", l.description + ": " + l.points));
        });
        var total = text("span", "total", res.j.total.toLocaleString("en") + " points");
        total.id = "quote-total";
        show([total, list]);
        out.setAttribute("data-state", "ok");
      })
      .catch(function () {
        if (mine === seq) {
          show([text("span", "err", "The preview is not available right now.")]);
        }
      });
  }
  function later() {
    window.clearTimeout(timer);
    timer = window.setTimeout(run, 250);
  }
  form.addEventListener("input", later);
  document.getElementById("quote-run").addEventListener("click", run);
  run();
})();
