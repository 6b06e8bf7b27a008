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
