// Admin pages (loaded by the pages that need it, with defer; no inline scripts under the CSP).
//  - Inbox settings, Connection: choosing a mode shows that mode's fields only.
//  - Profile, Time zone: a searchable list of zones; an unset zone is preselected from the
//    browser's own (Intl), and the admin still saves it.
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

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.name === "mode" && target.closest("#settings-connection")) {
      showMode(target.closest("#settings-connection"));
    }
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

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setUpZonePicker);
  } else {
    setUpZonePicker();
  }
})();
