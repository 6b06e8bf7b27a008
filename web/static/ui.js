// Coalition Hub: the little script the pages use. Everything works without
// it; it asks for confirmation before irreversible console actions (forms
// with data-confirm), shows a submit button busy after one click (a spinner,
// ui.css), ignores a second submit of a form being posted, so a double click
// does not post twice, and moves the progress bars of running jobs.
document.addEventListener("submit", function (ev) {
  var form = ev.target;
  var msg = form.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) {
    ev.preventDefault();
    return;
  }
  if (form.getAttribute("data-busy")) {
    ev.preventDefault(); // already on its way
    return;
  }
  if (form.method.toLowerCase() === "post") {
    form.setAttribute("data-busy", "true");
  }
  var buttons = form.querySelectorAll("button[type=submit], button:not([type])");
  for (var i = 0; i < buttons.length; i++) {
    buttons[i].setAttribute("aria-busy", "true");
  }
});

// A page shown again from the back/forward cache is not busy any more.
window.addEventListener("pageshow", function () {
  var busy = document.querySelectorAll("[data-busy], [aria-busy]");
  for (var i = 0; i < busy.length; i++) {
    busy[i].removeAttribute("data-busy");
    busy[i].removeAttribute("aria-busy");
  }
});

// The redemption code's countdown: <time id="code-countdown" datetime=...>
// counts down to the code's expiry and says when it has expired.
(function () {
  var el = document.getElementById("code-countdown");
  if (!el) {
    return;
  }
  var end = Date.parse(el.getAttribute("datetime"));
  function tick() {
    var left = Math.round((end - Date.now()) / 1000);
    if (left <= 0) {
      var p = el.parentNode.parentNode;
      p.classList.add("expired");
      p.textContent = "This code has expired. Get a new one below.";
      return;
    }
    var s = left % 60;
    el.textContent = Math.floor(left / 60) + ":" + (s < 10 ? "0" : "") + s;
    window.setTimeout(tick, 1000);
  }
  tick();
})();

// A job run's progress bar: an element with data-run="/console/jobs/runs/ID"
// holding a <progress> and optionally a phase (#close-phase or
// [data-run-phase]) and a count (#close-count or [data-run-count]). Each
// polls its run once a second and, once the run has finished, reloads the
// page, which then shows the result.
(function () {
  var boxes = document.querySelectorAll("[data-run]");
  if (!boxes.length || !window.fetch) {
    return;
  }
  Array.prototype.forEach.call(boxes, function (box) {
    var url = box.getAttribute("data-run");
    var bar = box.querySelector("progress");
    var phase = box.querySelector("#close-phase, [data-run-phase]");
    var count = box.querySelector("#close-count, [data-run-count]");
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (res) {
          if (!res.ok) {
            throw new Error("status " + res.status);
          }
          return res.json();
        })
        .then(function (run) {
          if (run.state === "succeeded" || run.state === "failed") {
            window.location.reload();
            return;
          }
          if (run.total > 0 && bar) {
            bar.max = run.total;
            bar.value = run.done;
            bar.textContent = run.percent + "%";
          }
          if (run.phase && phase) {
            phase.textContent = run.phase;
          }
          if (count) {
            count.textContent = run.done.toLocaleString() + " of " + run.total.toLocaleString();
          }
          window.setTimeout(poll, 1000);
        })
        .catch(function () {
          window.setTimeout(poll, 5000); // the hub is restarting, or the network is down: try again
        });
    }
    window.setTimeout(poll, 1000);
  });
})();

// A segment editor's live count: a form with data-count-url posts its
// fields there (with its CSRF field) a moment after each change and shows
// the number of members in its [data-count], or the first refusal.
(function () {
  var form = document.querySelector("form[data-count-url]");
  if (!form || !window.fetch || !window.FormData) {
    return;
  }
  var out = form.querySelector("[data-count]");
  var note = form.querySelector("#segment-count-note");
  var timer = null;
  var seq = 0;
  function count() {
    var mine = ++seq;
    out.textContent = "…";
    fetch(form.getAttribute("data-count-url"), { method: "POST", credentials: "same-origin", body: new URLSearchParams(new FormData(form)),
      headers: { Accept: "application/json" } })
      .then(function (res) { return res.json(); })
      .then(function (body) {
        if (mine !== seq) {
          return;
        }
        if (typeof body.members === "number") {
          out.textContent = body.members.toLocaleString();
          note.textContent = "(counted as you change the rules)";
          return;
        }
        var errs = body.errors || {};
        var first = Object.keys(errs)[0];
        out.textContent = "—";
        note.textContent = first ? first.replace(/_/g, " ") + ": " + errs[first] : "(cannot count these rules)";
      })
      .catch(function () {
        if (mine === seq) {
          out.textContent = "—";
        }
      });
  }
  function later() {
    window.clearTimeout(timer);
    timer = window.setTimeout(count, 400);
  }
  form.addEventListener("input", later);
  form.addEventListener("change", later);
  count();
})();
