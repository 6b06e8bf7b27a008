// Coalition Hub: the little script the pages use. Everything works without
// it; it only asks for confirmation before irreversible console actions
// (forms with data-confirm), shows a submit button busy after one click (a
// spinner, ui.css) and ignores a second submit of a form being posted, so a
// double click does not post twice.
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
