// The bell (templates/notifications/_bell.html) and the browser's Notification API.
//
// htmx polls the bell; when a poll brings a higher unread count it also carries the newest
// notification (data-newest-*), and this shows it as a desktop notification, if the person
// allowed them in this browser and Threadline's tab is hidden (they are looking elsewhere).
// localStorage keeps the newest id shown, so several open tabs show it once. Permission is
// asked only when the person presses "Turn on desktop notifications" (notifications page).
"use strict";

(() => {
  const SHOWN = "threadline.notified";
  const supported = () => "Notification" in window;
  let known = null; // the unread count the bell showed before its latest swap

  function lastShown() {
    try {
      return Number(window.localStorage.getItem(SHOWN) || 0);
    } catch {
      return 0;
    }
  }

  function remember(id) {
    try {
      window.localStorage.setItem(SHOWN, String(id));
    } catch {
      // private mode or storage full: at worst another tab shows it too
    }
  }

  function notify(bell) {
    const id = Number(bell.dataset.newestId || 0);
    if (!supported() || Notification.permission !== "granted" || !document.hidden || id <= lastShown()) {
      return;
    }
    remember(id);
    const icon = document.querySelector(".brand img");
    const shown = new Notification(bell.dataset.newestText, {
      body: bell.dataset.newestTitle,
      tag: `threadline-${id}`,
      icon: icon ? icon.src : undefined,
    });
    shown.addEventListener("click", () => {
      window.focus();
      window.location.assign(bell.dataset.newestUrl);
      shown.close();
    });
  }

  // A bell drawn by the page, a poll or a "mark read" answer (out of band).
  document.addEventListener("htmx:load", (event) => {
    const elt = event.detail.elt;
    const bell = elt.id === "notification-bell" ? elt : elt.querySelector && elt.querySelector("#notification-bell");
    if (!bell) {
      return;
    }
    const unread = Number(bell.dataset.unread || 0);
    const before = known;
    known = unread;
    if (before !== null && unread > before && bell.dataset.newestId) {
      notify(bell);
    }
  });

  // --- the notifications page: "Turn on desktop notifications" and what the browser says ---

  function drawPermission(focusStatus) {
    const button = document.querySelector("[data-desktop-notifications]");
    const status = document.querySelector("[data-desktop-notifications-status]");
    if (!button || !status) {
      return;
    }
    let words = "";
    if (!supported()) {
      button.hidden = true;
      words = "This browser cannot show desktop notifications.";
    } else {
      button.hidden = Notification.permission !== "default";
      if (Notification.permission === "granted") {
        words = "Desktop notifications are on in this browser: new ones pop up while Threadline is in a background tab.";
      } else if (Notification.permission === "denied") {
        words = "This browser blocks desktop notifications from Threadline. Allow them in its site settings to get them.";
      }
    }
    status.textContent = words;
    if (focusStatus && button.hidden) {
      status.tabIndex = -1;
      status.focus(); // the button the focus was on is gone
    }
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest("[data-desktop-notifications]");
    if (!button || !supported()) {
      return;
    }
    Notification.requestPermission().then(() => drawPermission(true));
  });

  document.addEventListener("DOMContentLoaded", () => drawPermission(false));
})();
