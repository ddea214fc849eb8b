// PortalPay staff console: only comfort; every page works without it.
(function () {
  "use strict";
  var invalid = document.querySelector("[aria-invalid='true']");
  var target = invalid || document.querySelector("[data-autofocus]");
  if (target) { target.focus(); }
})();
