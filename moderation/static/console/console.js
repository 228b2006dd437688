/* The case page: reveal media (click or hold, recorded server-side first), keyboard shortcuts,
   the deadline countdown, message templates per reason, deciding a near-duplicate group together,
   the one reason select checked against the decision pressed.
   No inline scripts, no third-party code. */
(function () {
  "use strict";

  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function say(text) {
    var list = document.querySelector("ul.messages");
    if (!list) {  // the live region wraps the list: role="status" on the <ul> would take its list semantics
      var region = document.createElement("div");
      region.setAttribute("role", "status");
      list = document.createElement("ul");
      list.className = "messages";
      region.appendChild(list);
      document.getElementById("main").prepend(region);
    }
    var li = document.createElement("li");
    li.className = "error";
    li.textContent = text;
    list.appendChild(li);
  }

  // Ask the server to record the reveal (exposure count, daily cap) before unblurring.
  function recordReveal(wrap) {
    if (wrap.dataset.recorded === "1") { return Promise.resolve(true); }
    var body = new URLSearchParams();
    body.set("task", wrap.dataset.task || "");
    return fetch(wrap.dataset.revealUrl, {
      method: "POST", credentials: "same-origin", body: body,
      headers: {"X-CSRFToken": csrfToken(), "Accept": "application/json"}
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) { say(data.detail || "The media cannot be revealed."); return false; }
        wrap.dataset.recorded = "1";
        var counter = document.getElementById("exposure-count");
        if (counter) { counter.textContent = String(data.revealed_today); }
        return true;
      });
    }).catch(function () { say("Could not reach the server to record the reveal."); return false; });
  }

  function show(wrap, button) {
    return recordReveal(wrap).then(function (ok) {
      if (!ok) { return; }
      wrap.classList.remove("concealed");
      button.textContent = wrap.dataset.mode === "hold" ? "Release to hide" : "Hide";
      button.setAttribute("aria-pressed", "true");
    });
  }

  function hide(wrap, button) {
    wrap.classList.add("concealed");
    button.textContent = wrap.dataset.mode === "hold" ? "Hold to reveal" : "Reveal";
    button.setAttribute("aria-pressed", "false");
  }

  function toggle(wrap) {
    var button = wrap.querySelector("button.reveal");
    if (wrap.classList.contains("concealed")) { return show(wrap, button); }
    hide(wrap, button);
    return Promise.resolve();
  }

  document.querySelectorAll(".media-wrap").forEach(function (wrap) {
    var button = wrap.querySelector("button.reveal");
    // The moderator's blur and greyscale preferences (data attributes: the CSP allows no style attributes).
    // Applied without the reveal transition, so the page never animates from the default blur to the chosen one.
    var blur = parseInt(wrap.dataset.blur, 10);
    wrap.classList.add("no-transition");
    wrap.style.setProperty("--blur", (isNaN(blur) ? 24 : blur) + "px");
    wrap.style.setProperty("--grey", wrap.dataset.grey === "0" ? "0" : "1");
    void wrap.offsetWidth;
    wrap.classList.remove("no-transition");
    if (wrap.dataset.mode === "hold") {
      var held = false;
      var start = function (event) { event.preventDefault(); held = true; show(wrap, button).then(function () { if (!held) { hide(wrap, button); } }); };
      var stop = function () { held = false; hide(wrap, button); };
      button.addEventListener("pointerdown", start);
      button.addEventListener("pointerup", stop);
      button.addEventListener("pointerleave", stop);
      button.addEventListener("keydown", function (e) { if ((e.key === " " || e.key === "Enter") && !e.repeat) { start(e); } });
      button.addEventListener("keyup", function (e) { if (e.key === " " || e.key === "Enter") { stop(); } });
    } else {
      button.addEventListener("click", function () { toggle(wrap); });
    }
  });

  // The signals' evidence is one line each (the case fits one screen); the button shows it whole.
  document.querySelectorAll("button.signals-toggle").forEach(function (button) {
    button.addEventListener("click", function () {
      var table = document.getElementById(button.getAttribute("aria-controls"));
      var whole = table.classList.toggle("clamped") === false;
      button.setAttribute("aria-expanded", whole ? "true" : "false");
      button.textContent = whole ? "Show each signal's evidence in one line" : "Show each signal's whole evidence";
    });
  });

  // Deadline countdown.
  var deadline = document.getElementById("deadline");
  if (deadline && deadline.dataset.deadline) {
    var due = new Date(deadline.dataset.deadline);
    var tick = function () {
      var left = Math.round((due - new Date()) / 60000);
      if (left <= 0) { deadline.textContent = "deadline passed"; deadline.style.color = "var(--danger)"; return; }
      var h = Math.floor(left / 60), m = left % 60;
      deadline.textContent = h + " h " + (m < 10 ? "0" : "") + m + " min to the deadline";
    };
    tick();
    window.setInterval(tick, 30000);
  }

  // The one reason select serves both main decisions: a reason grouped under the other one is refused here
  // before the server refuses it (registered first, so a refused submit adds no group fields).
  var decisionForm = document.getElementById("decision-form");
  if (decisionForm) {
    decisionForm.addEventListener("submit", function (event) {
      var button = event.submitter;
      var select = decisionForm.querySelector(".reason-select");
      if (!button || !button.value || !select) { return; }
      var option = select.options[select.selectedIndex];
      var group = option && option.parentElement.tagName === "OPTGROUP" ? option.parentElement : null;
      if (!group || !group.dataset.outcome || group.dataset.outcome === button.value) { return; }
      event.preventDefault();
      event.stopImmediatePropagation();
      var other = decisionForm.querySelector("optgroup[data-outcome='" + button.value + "']");
      var problem = document.getElementById("decision-mismatch");
      problem.textContent = "The reason “" + option.text + "” is for “" + group.label + "”. Choose a reason under “" +
        (other ? other.label : button.value) + "”, or press " + group.label + ".";
      problem.hidden = false;
      select.focus();
    });
  }

  // Templates: show those that fit the chosen reason; a reporter template offers its rationale.
  document.querySelectorAll("form.decide-form").forEach(function (form) {
    var reason = form.querySelector(".reason-select");
    var note = form.querySelector("textarea[name=note]");
    var filter = function () {
      if (!reason) { return; }
      form.querySelectorAll(".template-select option[data-reason]").forEach(function (option) {
        option.hidden = option.dataset.reason !== reason.value;
        if (option.hidden && option.selected) { option.parentElement.value = ""; }
      });
    };
    if (reason) { reason.addEventListener("change", filter); filter(); }
    form.querySelectorAll(".template-select").forEach(function (select) {
      select.addEventListener("change", function () {
        var chosen = select.options[select.selectedIndex];
        if (note && !note.value.trim() && chosen && chosen.dataset.rationale) { note.value = chosen.dataset.rationale; }
      });
    });
    // The near-duplicate group: ticked cases are decided the same way.
    form.addEventListener("submit", function () {
      document.querySelectorAll("input.group-also:checked").forEach(function (box) {
        var hidden = document.createElement("input");
        hidden.type = "hidden"; hidden.name = "also"; hidden.value = box.value;
        form.appendChild(hidden);
      });
    });
  });

  function openMore() { var more = document.getElementById("more"); if (more) { more.open = true; } }

  // Keyboard shortcuts (never while typing). On the reason select the decision keys still work (no reason
  // starts with t or k, so they take nothing from its type-ahead): d, an arrow key, then t and Enter.
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    var key = event.key;
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var onReason = target && target.id === "decision-reason" && ["t", "k", "T", "K"].indexOf(key) !== -1;
    if (!onReason && target && (target.closest("input, textarea, select, [contenteditable]"))) { return; }
    var click = function (selector) { var el = document.querySelector(selector); if (el) { el.click(); return true; } return false; };
    var focus = function (selector) { var el = document.querySelector(selector); if (el) { el.scrollIntoView({block: "center"}); el.focus(); return true; } return false; };
    var handled = false;
    if (key === "n") { var next = document.getElementById("next-form"); if (next) { next.submit(); handled = true; } }
    else if (key === "c") { handled = click("[data-shortcut=c]"); }
    else if (key === "r") { var wrap = document.querySelector(".media-wrap"); if (wrap && wrap.dataset.mode !== "hold") { toggle(wrap); handled = true; } }
    else if (key === "t") { handled = focus("[data-shortcut=t]"); }  // Enter then submits: never one key alone
    else if (key === "k") { handled = focus("[data-shortcut=k]"); }
    else if (key === "T") { handled = focus("[data-shortcut=next-t]"); }
    else if (key === "K") { handled = focus("[data-shortcut=next-k]"); }
    else if (key === "d") { handled = focus("[data-shortcut=d]"); }
    else if (key === "m") { var more = document.getElementById("more"); if (more) { more.open = !more.open; more.querySelector("summary").focus(); handled = true; } }
    else if (key === "i") { openMore(); handled = focus("[data-shortcut=i]"); }
    else if (key === "e") { openMore(); handled = focus("#escalate-note"); }
    else if (key === "?") { var help = document.getElementById("shortcuts"); if (help) { help.open = !help.open; handled = true; } }
    if (handled) { event.preventDefault(); }
  });
}());
