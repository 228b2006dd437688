/* The case page: reveal media (click or hold, recorded server-side first), keyboard shortcuts,
   the deadline countdown, message templates per reason, deciding a near-duplicate group together.
   No inline scripts, no third-party code. */
(function () {
  "use strict";

  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function say(text) {
    var list = document.querySelector("ul.messages");
    if (!list) {
      list = document.createElement("ul");
      list.className = "messages";
      list.setAttribute("role", "status");
      document.getElementById("main").prepend(list);
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

  // Keyboard shortcuts (never while typing).
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (target && (target.closest("input, textarea, select, [contenteditable]"))) { return; }
    var key = event.key;
    var click = function (selector) { var el = document.querySelector(selector); if (el) { el.click(); return true; } return false; };
    var focus = function (selector) { var el = document.querySelector(selector); if (el) { el.scrollIntoView({block: "center"}); el.focus(); return true; } return false; };
    var handled = false;
    if (key === "n") { var next = document.getElementById("next-form"); if (next) { next.submit(); handled = true; } }
    else if (key === "c") { handled = click("[data-shortcut=c]"); }
    else if (key === "r") { var wrap = document.querySelector(".media-wrap"); if (wrap && wrap.dataset.mode !== "hold") { toggle(wrap); handled = true; } }
    else if (key === "t") { handled = focus("[data-shortcut=t]"); }  // Enter then submits: never one key alone
    else if (key === "k") { handled = focus("[data-shortcut=k]"); }
    else if (key === "i") { var details = document.querySelector("#info-form"); if (details) { details.closest("details").open = true; } handled = focus("[data-shortcut=i]"); }
    else if (key === "e") { handled = focus("#escalate-note"); }
    else if (key === "?") { var help = document.getElementById("shortcuts"); if (help) { help.open = !help.open; handled = true; } }
    if (handled) { event.preventDefault(); }
  });
}());
