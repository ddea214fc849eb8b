// PortalPay customer portal: renders the attempt's state and calls the JSON API on each action.
// The server decides everything (state, limits, timers); this file only shows it and asks.
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("portal-config").textContent || "{}");
  var API = "/api/portal/sessions";
  var storageKey = "portalpay:session:" + (config.invoice_id || "");
  var state = null;          // the last SessionView
  var clockOffsetMs = 0;     // server clock minus browser clock
  var countdownTimer = null;
  var pollTimer = null;
  var busy = false;

  var $ = function (id) { return document.getElementById(id); };

  var CHANNEL_LABEL = { sms: "Text", email: "Email" };
  var DECLINE_TEXT = {
    account_closed: "the account is closed.",
    insufficient_funds: "insufficient funds.",
    debit_not_authorized: "the account does not allow this debit."
  };

  function randomKey() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function formatAmount(cents, currency) {
    var value = (cents / 100).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    return currency === "USD" ? "$" + value : value + " " + currency;
  }

  function serverNow() { return Date.now() + clockOffsetMs; }

  function secondsUntil(iso) {
    if (!iso) { return 0; }
    return Math.max(0, Math.ceil((Date.parse(iso) - serverNow()) / 1000));
  }

  function formatWhen(iso) {
    var when = new Date(Date.parse(iso) - clockOffsetMs);
    return "after " + when.toLocaleTimeString([], { hour: "numeric", minute: "2-digit" }) +
      " (in about " + Math.max(1, Math.ceil(secondsUntil(iso) / 60)) + " min)";
  }

  // A moment in the customer's own time zone, e.g. "Tue, Dec 3, 2:00 PM".
  function formatDate(iso) {
    return new Date(Date.parse(iso)).toLocaleString([], {
      weekday: "short", month: "short", day: "numeric", hour: "numeric", minute: "2-digit"
    });
  }

  // The processor's own date when it gave one; otherwise no guess of ours.
  function settlementText(iso) {
    return iso ? "Expected to settle by " + formatDate(iso) + "."
      : "We will update this page when your bank confirms it.";
  }

  var STATUS_TEXT = {
    processing: "Processing",
    settled: "Settled",
    failed: "Did not go through",
    returned: "Returned by your bank",
    canceled: "Canceled"
  };

  function setText(selector, text) {
    Array.prototype.forEach.call(document.querySelectorAll(selector), function (el) { el.textContent = text; });
  }

  function showNotice(text) {
    var n = $("notice");
    n.textContent = text || "";
    n.hidden = !text;
  }

  function showError(id, text) {
    var el = $(id);
    if (!el) { return; }
    el.textContent = text || "";
    el.hidden = !text;
    var input = $(id.replace(/-error$/, ""));
    if (input && input.tagName === "INPUT") { input.setAttribute("aria-invalid", text ? "true" : "false"); }
  }

  function show(view) {
    Array.prototype.forEach.call(document.querySelectorAll("main > section"), function (s) {
      s.hidden = s.id !== "view-" + view;
    });
    var section = $("view-" + view);
    document.title = (section && section.getAttribute("data-title")) || "Pay Your Invoice";
    document.body.setAttribute("data-view", view);
    var heading = section && section.querySelector("h1");
    if (heading) { heading.setAttribute("tabindex", "-1"); heading.focus({ preventScroll: true }); }
  }

  function stopTimers() {
    if (countdownTimer) { clearInterval(countdownTimer); countdownTimer = null; }
    if (pollTimer) { clearTimeout(pollTimer); pollTimer = null; }
  }

  function noteServerTime(body) {
    if (body && body.server_time) { clockOffsetMs = Date.parse(body.server_time) - Date.now(); }
  }

  // One user action = one Idempotency-Key, reused if the network drops and we retry once,
  // so the server answers the retry with the first result instead of acting twice.
  function api(method, path, body) {
    var headers = { "Authorization": "Bearer " + config.token, "Accept": "application/json" };
    var key = randomKey();
    if (method === "POST") { headers["Idempotency-Key"] = key; }
    if (body !== undefined) { headers["Content-Type"] = "application/json"; }
    var init = { method: method, headers: headers, body: body === undefined ? undefined : JSON.stringify(body) };
    var attempt = function (retries) {
      return fetch(path, init).catch(function (err) {
        if (retries > 0) { return new Promise(function (r) { setTimeout(r, 800); }).then(function () { return attempt(retries - 1); }); }
        throw err;
      });
    };
    return attempt(1).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        noteServerTime(data);
        return { ok: response.ok, status: response.status, body: data };
      });
    });
  }

  function sessionPath(suffix) { return API + "/" + encodeURIComponent(state.session_id) + (suffix || ""); }

  function rememberSession(id) {
    try { if (id) { sessionStorage.setItem(storageKey, id); } else { sessionStorage.removeItem(storageKey); } } catch (e) { /* private mode */ }
  }

  function storedSession() {
    try { return sessionStorage.getItem(storageKey); } catch (e) { return null; }
  }

  // --- answers other than 2xx --------------------------------------------------------------
  function handleFailure(res, context) {
    var b = res.body || {};
    if (res.status === 401 || res.status === 403) {
      var heading = res.status === 401 && b.error === "TokenExpired" ? "This link has expired"
        : res.status === 401 && b.reason === "link_revoked" ? "This link was replaced" : "This link is not valid";
      setText("#view-link-invalid h1", heading);
      var msg = b.message || "";
      setText("#view-link-invalid p", /new payment link\.$/.test(msg) ? msg : msg + " Ask for a new payment link.");
      show("link-invalid");
      return;
    }
    if (res.status === 404 && b.error === "SessionNotFound") {
      rememberSession(null);
      state = null;
      show("invoice");
      showNotice("Your previous session ended. Start again to pay.");
      return;
    }
    if (res.status === 429 && b.error === "InvoiceLocked") {
      $("locked-until").textContent = formatWhen(new Date(serverNow() + (b.retry_after || 0) * 1000).toISOString());
      show("locked");
      return;
    }
    if (res.status === 409 && b.error === "InvoiceAlreadyPaid") { loadPaymentStatus(); return; }
    if (res.status === 429 || res.status === 422 || res.status === 502) {
      if (context && context.onInline) { context.onInline(b); }
      else { showNotice(b.message || "Please try again."); }
      if (res.status === 502 || (res.status === 422 && b.error === "ChannelUnavailable")) { refresh(true); }
      return;
    }
    // The attempt moved on (expired, paid in another tab...): show where it is now.
    if (res.status === 409 && state) { refresh(true); return; }
    $("error-text").textContent = b.message || "Please try again in a moment.";
    show("error");
  }

  function networkFailure() {
    $("error-text").textContent = "We couldn't reach the server. Check your connection and try again.";
    show("error");
  }

  // --- rendering ------------------------------------------------------------------------------
  function render(s) {
    state = s;
    stopTimers();
    rememberSession(s.session_id);
    if (s.payer) { setText('[data-field="payer-name"]', s.payer.name); }
    if (s.invoice) {
      setText('[data-field="invoice-number"]', s.invoice.number);
      setText('[data-field="amount"]', formatAmount(s.invoice.amount_cents, s.invoice.currency));
    }
    switch (s.status) {
      case "RESOLVING_PAYER": show("loading"); poll(600); break;
      case "CHOOSING_CHANNEL": renderVerify(s); break;
      case "AWAITING_CODE": renderCode(s); break;
      case "AWAITING_PAYMENT": renderBank(s); break;
      case "SUBMITTING": show("submitting"); poll(800); break;
      case "PAID": renderReceipt(s); break;
      case "DECLINED": renderDeclined(s); break;
      case "LOCKED":
        $("locked-until").textContent = s.retry_at ? formatWhen(s.retry_at) : "later";
        show("locked"); break;
      case "EXPIRED": show("expired"); break;
      case "CANCELLED": show("cancelled"); break;
      case "NO_CONTACT_METHOD": show("no-contact"); break;
      default: show("error");
    }
    if (["CHOOSING_CHANNEL", "AWAITING_CODE", "AWAITING_PAYMENT"].indexOf(s.status) >= 0) { poll(20000); }
  }

  function usableChannels(s) {
    return s.channels.filter(function (c) { return s.failed_channels.indexOf(c.channel) < 0; });
  }

  function channelButton(c, label) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "primary";
    b.setAttribute("data-channel", c.channel);
    b.textContent = label;
    b.addEventListener("click", function () { requestCode(c.channel); });
    return b;
  }

  function renderFailed(s, elId) {
    var failed = s.channels.filter(function (c) { return s.failed_channels.indexOf(c.channel) >= 0; });
    var el = $(elId);
    if (!el) { return; }
    el.hidden = failed.length === 0;
    el.textContent = failed.map(function (c) { return "We couldn't deliver a code to " + c.destination + "."; }).join(" ");
  }

  function renderVerify(s) {
    var box = $("channel-buttons");
    box.textContent = "";
    usableChannels(s).forEach(function (c) {
      var verb = c.channel === "sms" ? "Text a code to " : "Email a code to ";
      box.appendChild(channelButton(c, verb + c.destination));
    });
    renderFailed(s, "failed-channels");
    show("verify");
  }

  function renderCode(s) {
    $("code-destination").textContent = s.code ? s.code.destination : "";
    $("attempts-remaining").textContent = s.attempts_remaining + (s.attempts_remaining === 1 ? " attempt" : " attempts") + " remaining.";
    var switchBox = $("switch-buttons");
    switchBox.textContent = "";
    usableChannels(s).forEach(function (c) {
      if (s.code && c.channel === s.code.channel) { return; }
      var b = channelButton(c, (c.channel === "sms" ? "Text it to " : "Email it to ") + c.destination + " instead");
      b.className = "secondary";
      switchBox.appendChild(b);
    });
    $("resend").hidden = !s.code || usableChannels(s).every(function (c) { return c.channel !== s.code.channel; });
    if (document.body.getAttribute("data-view") !== "code") {
      $("code").value = "";
      showError("code-error", "");
      show("code");
      $("code").focus();
    }
    startResendCountdown(s);
  }

  function startResendCountdown(s) {
    var buttons = [$("resend")].concat(Array.prototype.slice.call($("switch-buttons").querySelectorAll("button")));
    var tick = function () {
      var left = secondsUntil(s.resend_available_at);
      var out = s.sends_remaining <= 0;
      buttons.forEach(function (b) { b.disabled = left > 0 || out; });
      $("resend-countdown").textContent = out ? "No more codes can be sent for this attempt." :
        (left > 0 ? "You can ask for a new code in " + left + " s." : "");
      if (left <= 0 && countdownTimer) { clearInterval(countdownTimer); countdownTimer = null; }
    };
    tick();
    if (countdownTimer) { clearInterval(countdownTimer); }
    countdownTimer = setInterval(tick, 1000);
  }

  function renderBank(s) {
    var amount = formatAmount(s.invoice.amount_cents, s.invoice.currency);
    $("bank-intro").textContent = s.otp_required === false
      ? "Deposits do not need a verification code. Enter the account to debit " + amount + " from."
      : "You're verified. Enter the account to debit " + amount + " from.";
    updateAuthorization();
    if (s.payment_due_by) {
      $("payment-due").textContent = "Please submit by " +
        new Date(Date.parse(s.payment_due_by) - clockOffsetMs).toLocaleTimeString([], { hour: "numeric", minute: "2-digit" }) + ".";
    }
    if (document.body.getAttribute("data-view") !== "bank") { show("bank"); }
  }

  function renderReceipt(s) {
    var p = s.payment || {};
    setText('[data-field="receipt-amount"]', formatAmount(p.amount_cents, p.currency || "USD"));
    setText('[data-field="receipt-last4"]', "••••" + (p.account_last4 || ""));
    setText('[data-field="receipt-id"]', p.payment_id || "");
    setText('[data-field="receipt-reference"]', p.processor_reference || "—");
    setText('[data-field="receipt-status"]', STATUS_TEXT[p.status] || "Submitted to your bank");
    setText('[data-field="receipt-settlement"]', settlementText(p.expected_settlement_at));
    rememberSession(null);
    show("receipt");
  }

  // --- the invoice's payment after PAID (GET /api/portal/payment) --------------------------------
  var FAILED_ADVICE = {
    pay_again: "You can pay again, from the same account once the funds are there, or from another account.",
    pay_with_another_account: "This account can't be used again for this payment. Please pay from another account."
  };

  function renderPaymentStatus(view) {
    var p = view && view.payment;
    if (!p) { show(view && view.can_pay ? "invoice" : "paid"); return; }
    setText('[data-field="status-amount"]', formatAmount(p.amount_cents, p.currency));
    setText('[data-field="status-last4"]', p.account_last4);
    setText('[data-field="status-submitted"]', "on " + formatDate(p.submitted_at));
    setText('[data-field="status-settlement"]', settlementText(p.expected_settlement_at));
    setText('[data-field="status-settled"]', p.settled_at ? "on " + formatDate(p.settled_at) : "");
    setText('[data-field="status-ended"]', p.ended_at ? "on " + formatDate(p.ended_at) : "");
    setText('[data-field="status-reason"]', p.reason || "your bank returned it");
    if (p.phase === "processing") { show("payment-processing"); return; }
    if (p.phase === "settled") { show("payment-settled"); return; }
    var contact = p.next_step === "contact_company";
    $("failed-contact").hidden = !contact;
    $("failed-pay-again").hidden = contact || !view.can_pay;
    $("failed-advice").textContent = FAILED_ADVICE[p.next_step] || FAILED_ADVICE.pay_again;
    show("payment-failed");
  }

  function loadPaymentStatus() {
    return api("GET", "/api/portal/payment").then(function (res) {
      if (res.ok) { renderPaymentStatus(res.body); } else { show("paid"); }
    }, function () { show("paid"); });
  }

  function renderDeclined(s) {
    var reason = (s.payment && s.payment.decline_reason) || s.reason || "";
    $("declined-reason").textContent = DECLINE_TEXT[reason] || reason || "no reason was given.";
    show("declined");
  }

  function poll(ms) {
    pollTimer = setTimeout(refresh, ms);
  }

  function refresh(force) {
    if (!state || (busy && !force)) { return; }
    api("GET", sessionPath()).then(function (res) {
      if (res.ok) { render(res.body); } else { handleFailure(res); }
    }, function () { poll(3000); });
  }

  // --- actions -----------------------------------------------------------------------------------
  function guard(fn) {
    return function () {
      if (busy) { return; }
      busy = true;
      showNotice("");
      var done = function () { busy = false; };
      Promise.resolve(fn.apply(null, arguments)).then(done, function () { done(); networkFailure(); });
    };
  }

  var openSession = guard(function () {
    show("loading");
    return api("POST", API).then(function (res) {
      if (res.ok) { render(res.body); } else { handleFailure(res); }
    });
  });

  var requestCode = guard(function (channel) {
    return api("POST", sessionPath("/code"), { channel: channel }).then(function (res) {
      if (res.ok) {
        showNotice("Code sent to " + res.body.destination + ".");
        return api("GET", sessionPath()).then(function (r) { if (r.ok) { render(r.body); } else { handleFailure(r); } });
      }
      handleFailure(res, { onInline: function (b) {
        var wait = b.retry_after ? " Try again in " + b.retry_after + " s." : "";
        showNotice((b.message || "A new code can't be sent yet.") + (b.retry_after ? wait : ""));
      } });
    });
  });

  var verifyCode = guard(function (event) {
    event.preventDefault();
    var code = $("code").value.replace(/\s|-/g, "");
    if (!/^[0-9]{4,10}$/.test(code)) { showError("code-error", "Enter the digits from the message."); return; }
    showError("code-error", "");
    $("verify-button").disabled = true;
    return api("POST", sessionPath("/verify"), { code: code }).then(function (res) {
      $("verify-button").disabled = false;
      if (!res.ok) { handleFailure(res, { onInline: function (b) { showError("code-error", b.message); } }); return; }
      var b = res.body;
      if (b.verified) {
        return api("GET", sessionPath()).then(function (r) { if (r.ok) { render(r.body); } else { handleFailure(r); } });
      }
      if (b.status === "LOCKED") { return api("GET", sessionPath()).then(function (r) { if (r.ok) { render(r.body); } }); }
      var why = b.reason === "expired" ? "That code has expired. Ask for a new one." :
        (b.reason === "voided" ? "That code was replaced by a newer one." : "That code isn't right.");
      showError("code-error", why + " " + b.attempts_remaining + (b.attempts_remaining === 1 ? " attempt" : " attempts") + " remaining.");
      $("attempts-remaining").textContent = b.attempts_remaining + " attempts remaining.";
      $("code").select();
    });
  });

  // ABA routing numbers: nine digits whose 3-7-1 weighted sum is a multiple of ten (checked on the server too).
  function abaValid(n) {
    if (!/^[0-9]{9}$/.test(n) || n === "000000000") { return false; }
    var w = [3, 7, 1, 3, 7, 1, 3, 7, 1], sum = 0;
    for (var i = 0; i < 9; i++) { sum += Number(n[i]) * w[i]; }
    return sum % 10 === 0;
  }

  function updateAuthorization() {
    if (!state || !state.authorization_text) { return; }
    var digits = $("account_number").value.replace(/\D/g, "");
    var last4 = digits.length >= 4 ? digits.slice(-4) : "••••";
    $("authorization-text").textContent = state.authorization_text.replace("{account_last4}", last4);
  }

  function checkBankForm() {
    var ok = true;
    var holder = $("account_holder").value.trim();
    var routing = $("routing_number").value.trim();
    var account = $("account_number").value.trim();
    showError("account_holder-error", holder ? "" : "Enter the name on the account.");
    if (!holder) { ok = false; }
    if (!abaValid(routing)) { showError("routing_number-error", "This is not a valid routing number. Check the 9 digits."); ok = false; }
    else { showError("routing_number-error", ""); }
    if (!/^[0-9]{4,17}$/.test(account)) { showError("account_number-error", "Enter 4 to 17 digits."); ok = false; }
    else { showError("account_number-error", ""); }
    if (!$("authorize").checked) { showError("authorize-error", "Please agree to the authorization."); ok = false; }
    else { showError("authorize-error", ""); }
    return ok;
  }

  var submitPayment = guard(function (event) {
    event.preventDefault();
    showError("bank-error", "");
    if (!checkBankForm()) { return; }
    var form = $("bank-form");
    var body = {
      method: form.querySelector('input[name="method"]:checked').value,
      account_holder: $("account_holder").value.trim(),
      routing_number: $("routing_number").value.trim(),
      account_number: $("account_number").value.trim(),
      account_type: $("account_type").value
    };
    $("pay-button").disabled = true;
    show("submitting");
    return api("POST", sessionPath("/payment"), body).then(function (res) {
      $("pay-button").disabled = false;
      if (res.ok) {
        return api("GET", sessionPath()).then(function (r) { if (r.ok) { render(r.body); } else { handleFailure(r); } });
      }
      if (res.status === 422) {
        show("bank");
        var b = res.body || {};
        var fields = Array.isArray(b.detail) ? b.detail : [];
        fields.forEach(function (f) {
          var name = f.loc && f.loc[f.loc.length - 1];
          if ($(name + "-error")) { showError(name + "-error", f.msg.replace(/^Value error, /, "")); }
        });
        if (!fields.length) { showError("bank-error", b.message || "Check the details and try again."); }
        return;
      }
      handleFailure(res);
    });
  });

  var cancel = guard(function () {
    if (!state) { return; }
    return api("POST", sessionPath("/cancel")).then(function (res) {
      if (res.ok) { rememberSession(null); show("cancelled"); } else { handleFailure(res); }
    });
  });

  function restart() {
    rememberSession(null);
    state = null;
    openSession();
  }

  // --- wiring ---------------------------------------------------------------------------------------
  function wire() {
    $("start").addEventListener("click", function () { openSession(); });
    $("code-form").addEventListener("submit", verifyCode);
    $("bank-form").addEventListener("submit", submitPayment);
    $("resend").addEventListener("click", function () { if (state && state.code) { requestCode(state.code.channel); } });
    $("account_number").addEventListener("input", updateAuthorization);
    $("routing_number").addEventListener("blur", function () {
      var v = $("routing_number").value.trim();
      showError("routing_number-error", v && !abaValid(v) ? "This is not a valid routing number. Check the 9 digits." : "");
    });
    Array.prototype.forEach.call(document.querySelectorAll('[data-action="cancel"]'), function (b) { b.addEventListener("click", cancel); });
    Array.prototype.forEach.call(document.querySelectorAll('[data-action="restart"]'), function (b) { b.addEventListener("click", restart); });
    Array.prototype.forEach.call(document.querySelectorAll('[data-action="reload"]'), function (b) {
      b.addEventListener("click", function () { window.location.reload(); });
    });
  }

  function start() {
    wire();
    var initial = document.body.getAttribute("data-initial-view") || "invoice";
    if (initial === "locked" && config.locked_until) {
      $("locked-until").textContent = formatWhen(config.locked_until);
    }
    show(initial);
    if (/^payment-/.test(initial) && config.payment_status) { renderPaymentStatus(config.payment_status); }
    // After a payment that did not go through, a new attempt may already be running: resume it.
    var previous = (initial === "invoice" || initial === "payment-failed") && storedSession();
    if (previous) {
      // A reload resumes the running attempt (the server would join it anyway).
      state = { session_id: previous };
      api("GET", sessionPath()).then(function (res) {
        if (res.ok && ["PAID", "DECLINED", "EXPIRED", "CANCELLED"].indexOf(res.body.status) < 0) { render(res.body); }
        else { state = null; rememberSession(null); show(initial); }
      }, function () { state = null; show(initial); });
    }
    document.body.setAttribute("data-ready", "true");
  }

  start();
})();
