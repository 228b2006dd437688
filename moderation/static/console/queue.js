/* The queue page: tick cases (one by one or every one on the page) and decide them the same way.
   The boxes belong to #bulk-form through their form attribute; the server checks everything again.
   No inline scripts, no third-party code. */
(function () {
  "use strict";

  var form = document.getElementById("bulk-form");
  if (!form) { return; }
  var all = document.getElementById("bulk-all");
  var count = document.getElementById("bulk-count");
  var problem = document.getElementById("bulk-problem");
  var reason = form.querySelector(".reason-select");
  var boxes = Array.prototype.slice.call(document.querySelectorAll("input.bulk-pick"));

  function ticked() { return boxes.filter(function (box) { return box.checked; }); }

  function refresh() {
    var n = ticked().length;
    count.textContent = n === 0 ? "No case ticked." : n + (n === 1 ? " case ticked." : " cases ticked.");
    if (all) {
      all.checked = n > 0 && n === boxes.length;
      all.indeterminate = n > 0 && n < boxes.length;
    }
  }

  function refuse(text, focus) {
    problem.textContent = text;
    problem.hidden = false;
    if (focus) { focus.focus(); }
  }

  boxes.forEach(function (box) { box.addEventListener("change", refresh); });
  if (all) {
    all.addEventListener("change", function () {
      boxes.forEach(function (box) { box.checked = all.checked; });
      refresh();
    });
  }

  // The one reason select serves both decisions: a reason of the other one is refused before anything is sent.
  form.addEventListener("submit", function (event) {
    var button = event.submitter;
    problem.hidden = true;
    if (ticked().length === 0) {
      event.preventDefault();
      refuse("Tick at least one case in the table first.", boxes[0]);
      return;
    }
    var option = reason.options[reason.selectedIndex];
    var group = option && option.parentElement.tagName === "OPTGROUP" ? option.parentElement : null;
    if (button && button.value && group && group.dataset.outcome && group.dataset.outcome !== button.value) {
      event.preventDefault();
      var other = form.querySelector("optgroup[data-outcome='" + button.value + "']");
      refuse("The reason “" + option.text + "” is for “" + group.label + "”. Choose a reason under “" +
             (other ? other.label : button.value) + "”.", reason);
    }
  });

  refresh();
}());
