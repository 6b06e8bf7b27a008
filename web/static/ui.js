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

// A job run's progress bar: <section data-run="/console/jobs/runs/ID"> with
// a <progress>, a phase and a count. It polls the run once a second and,
// once the run has finished, reloads the page, which then shows the result.
(function () {
  var box = document.querySelector("[data-run]");
  if (!box || !window.fetch) {
    return;
  }
  var url = box.getAttribute("data-run");
  var bar = box.querySelector("progress");
  var phase = box.querySelector("#close-phase");
  var count = box.querySelector("#close-count");
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
        if (run.total > 0) {
          bar.max = run.total;
          bar.value = run.done;
          bar.textContent = run.percent + "%";
        }
        if (run.phase) {
          phase.textContent = run.phase;
        }
        count.textContent = run.done.toLocaleString() + " of " + run.total.toLocaleString();
        window.setTimeout(poll, 1000);
      })
      .catch(function () {
        window.setTimeout(poll, 5000); // the hub is restarting, or the network is down: try again
      });
  }
  window.setTimeout(poll, 1000);
})();
