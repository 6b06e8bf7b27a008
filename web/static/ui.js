// Coalition Hub: the little script the pages use. Everything works without
// it; it only asks for confirmation before irreversible console actions
// (forms with data-confirm) and disables a submit button after one click so
// a double click does not post twice.
document.addEventListener("submit", function (ev) {
  var form = ev.target;
  var msg = form.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) {
    ev.preventDefault();
    return;
  }
  var buttons = form.querySelectorAll("button[type=submit]");
  for (var i = 0; i < buttons.length; i++) {
    buttons[i].setAttribute("aria-busy", "true");
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
