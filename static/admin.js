// Admin pages (loaded by the pages that need it, with defer; no inline scripts under the CSP).
//  - Inbox settings, Connection: choosing a mode shows that mode's fields only.
//  - Profile, Time zone: a searchable list of zones; an unset zone is preselected from the
//    browser's own (Intl), and the admin still saves it.
//  - Rule form: choosing a condition's field shows its tests and values, choosing an action
//    shows its parameters (without JavaScript the form's refresh button does it).
//  - Inbox settings on a phone: the open tab is scrolled into view.
(function () {
  "use strict";

  function showMode(section) {
    var checked = section.querySelector('input[name="mode"]:checked');
    if (!checked) return;
    section.dataset.mode = checked.value;
    section.querySelectorAll(".mode-imap").forEach(function (el) {
      el.hidden = checked.value !== "imap";
    });
    section.querySelectorAll(".mode-forwarding").forEach(function (el) {
      el.hidden = checked.value !== "forwarding";
    });
  }

  function showConditionField(select) {
    var row = select.closest("[data-condition]");
    var form = select.closest("form");
    var ops = JSON.parse(form.dataset.ops || "{}")[select.value] || null;
    var opSelect = row.querySelector("[data-condition-op]");
    var firstAllowed = null;
    Array.prototype.forEach.call(opSelect.options, function (option) {
      var allowed = !ops || Object.prototype.hasOwnProperty.call(ops, option.value);
      option.hidden = !allowed;
      option.disabled = !allowed;
      if (allowed && ops) option.textContent = ops[option.value];
      if (allowed && firstAllowed === null) firstAllowed = option;
    });
    if (opSelect.selectedOptions[0] && opSelect.selectedOptions[0].disabled && firstAllowed) {
      firstAllowed.selected = true;
    }
    var choiceFor = row.querySelector('[data-value-for="' + CSS.escape(select.value) + '"]');
    row.querySelectorAll("[data-value-for]").forEach(function (holder) {
      var shown = choiceFor ? holder === choiceFor : holder.dataset.valueFor === "";
      holder.hidden = !shown;
      holder.querySelectorAll("input, select").forEach(function (input) {
        input.disabled = !shown;
      });
    });
  }

  function showActionParameters(select) {
    var row = select.closest("[data-action]");
    row.querySelectorAll("[data-types]").forEach(function (holder) {
      var shown = holder.dataset.types.split(" ").indexOf(select.value) !== -1;
      holder.hidden = !shown;
      holder.disabled = !shown;
    });
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.name === "mode" && target.closest("#settings-connection")) {
      showMode(target.closest("#settings-connection"));
    }
    if (target.hasAttribute("data-condition-field")) showConditionField(target);
    if (target.hasAttribute("data-action-type")) showActionParameters(target);
  });

  function browserZone() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (e) {
      return "";
    }
  }

  function setUpZonePicker() {
    var input = document.getElementById("timezone-input");
    if (!input) return;
    var zone = browserZone();
    var hint = document.getElementById("timezone-browser");
    var known = document.querySelector('#timezone-zones option[value="' + CSS.escape(zone) + '"]');
    function offerBrowserZone() {
      if (hint) hint.hidden = !(zone && known && input.value !== zone);
    }
    if (zone && known && hint) {
      input.addEventListener("input", offerBrowserZone);
      hint.querySelector("[data-zone]").textContent = zone;
      var use = hint.querySelector("button");
      use.addEventListener("click", function () {
        input.value = zone;
        offerBrowserZone();
        input.focus();
      });
    }
    // Nothing chosen yet (or the server default): offer the browser's zone.
    if (zone && known && input.dataset.preselect === "true" && input.value !== zone) {
      input.value = zone;
      input.dataset.fromBrowser = "true";
      var note = document.getElementById("timezone-preselected");
      if (note) note.hidden = false;
    }
    offerBrowserZone();
  }

  // On a phone the settings tabs scroll sideways: keep the open one in view.
  function showCurrentTab() {
    var current = document.querySelector(".section-tabs a[aria-current]");
    if (current) current.scrollIntoView({ block: "nearest", inline: "nearest" });
  }

  // A rule row's select changed before this deferred script ran (the page came back from
  // "Add action" with the new row focused, and the admin chose at once): show what it needs.
  function showRuleRows() {
    document.querySelectorAll("select[data-condition-field]").forEach(showConditionField);
    document.querySelectorAll("select[data-action-type]").forEach(showActionParameters);
  }

  function setUp() {
    setUpZonePicker();
    showCurrentTab();
    showRuleRows();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setUp);
  } else {
    setUp();
  }
})();
