// The open thread: HTML mail frames as tall as their content, the header's menus from the
// keyboard, and a thread opened on a phone starting at its header. No inline code (the CSP
// allows none): everything hangs off event delegation on the document, so it works for what
// htmx swaps in later.
"use strict";

// --- HTML mail frames sized to their content ---------------------------------------------
// The frame is sandboxed without allow-scripts (mail_frame.py serves it from our origin, with
// allow-same-origin), so nothing runs inside it, but this page may read its layout and set
// the frame's height attribute (an attribute, not a style: the page's CSP forbids inline
// styles, and htmx copies an old element's style onto its replacement).

function fitFrame(frame) {
  let doc;
  try {
    doc = frame.contentDocument;
  } catch (error) {
    return; // not ours to measure
  }
  if (!doc || !doc.documentElement || doc.readyState === "loading" || !doc.body) {
    return;
  }
  const root = doc.documentElement;
  // The root's box holds the body and its margins; a wide table or image may stick out
  // below it, which the body's scrollHeight sees. A horizontal scrollbar takes room too.
  const content = Math.max(root.getBoundingClientRect().height, doc.body.scrollHeight);
  const scrollbar = Math.max(0, frame.clientHeight - root.clientHeight);
  const height = Math.ceil(content + scrollbar) + 1;
  if (String(height) !== frame.getAttribute("height")) {
    frame.setAttribute("height", String(height));
  }
  watchFrame(frame, doc);
}

const watched = new WeakSet();
let resizeObserver = null;

function watchFrame(frame, doc) {
  // Images arriving late, web fonts, a narrower window: the content's size changes after load.
  if (!("ResizeObserver" in window) || watched.has(doc)) {
    return;
  }
  watched.add(doc);
  if (!resizeObserver) {
    resizeObserver = new ResizeObserver((entries) => {
      for (const entry of entries) {
        const target = entry.target;
        const owner = target.tagName === "IFRAME" ? target : frameOf(target);
        if (owner) {
          fitFrame(owner);
        }
      }
    });
  }
  resizeObserver.observe(frame);
  resizeObserver.observe(doc.body);
}

function frameOf(element) {
  const view = element.ownerDocument && element.ownerDocument.defaultView;
  return view ? view.frameElement : null;
}

function fitAllFrames(scope) {
  (scope || document).querySelectorAll("iframe.msg-html").forEach(fitFrame);
}

// A frame's load does not bubble, but it can be caught on the way down.
document.addEventListener(
  "load",
  (event) => {
    if (event.target.matches && event.target.matches("iframe.msg-html")) {
      fitFrame(event.target);
    }
  },
  true,
);
document.addEventListener("DOMContentLoaded", () => fitAllFrames());
window.addEventListener("load", () => fitAllFrames());
document.addEventListener("htmx:afterSettle", (event) => fitAllFrames(event.detail.elt));

// --- the header's menus -------------------------------------------------------------------
// <details class="menu"> opens with Enter or Space on its summary (app.js closes it on Escape
// or a click elsewhere). Here: opening one moves focus into it, the arrow keys walk its items,
// and after a choice redraws the menu, focus returns to the same menu's button.

const ITEMS = "button:not(:disabled), input:not([type=hidden]), a[href]";

document.addEventListener(
  "toggle",
  (event) => {
    const menu = event.target;
    if (!menu.matches || !menu.matches(".thread details.menu") || !menu.open) {
      return;
    }
    document.querySelectorAll(".thread details.menu[open]").forEach((other) => {
      if (other !== menu) {
        other.open = false;
      }
    });
    const first = menu.querySelector(`.menu-panel :is(${ITEMS})`);
    if (first && menu.contains(document.activeElement)) {
      first.focus();
    }
  },
  true,
);

document.addEventListener("keydown", (event) => {
  if (event.key !== "ArrowDown" && event.key !== "ArrowUp") {
    return;
  }
  const menu = document.activeElement && document.activeElement.closest(".thread details.menu[open]");
  if (!menu || document.activeElement.matches("input[type=datetime-local]")) {
    return;
  }
  const items = Array.from(menu.querySelectorAll(`.menu-panel :is(${ITEMS})`));
  if (!items.length) {
    return;
  }
  event.preventDefault();
  const at = items.indexOf(document.activeElement);
  const step = event.key === "ArrowDown" ? 1 : -1;
  items[(at + step + items.length) % items.length].focus();
});

// Only a menu's own form counts (the polls run meanwhile): it held the focus when it was sent.
let pendingMenu = null;
document.addEventListener("htmx:beforeRequest", (event) => {
  const form = event.detail.elt;
  const menu = document.activeElement && document.activeElement.closest(".thread details.menu[id]");
  if (menu && form && form.contains(document.activeElement)) {
    pendingMenu = menu.id;
  }
});
["htmx:responseError", "htmx:sendError"].forEach((name) =>
  document.addEventListener(name, () => {
    pendingMenu = null;
  }),
);
document.addEventListener("htmx:afterSettle", () => {
  const menu = pendingMenu && document.getElementById(pendingMenu);
  if (!menu || menu.contains(document.activeElement)) {
    return;
  }
  pendingMenu = null;
  const field = menu.open && menu.querySelector("[aria-invalid=true]");
  (field || menu.querySelector("summary")).focus();
});

// --- "N earlier messages": focus stays in the thread, on the first message loaded ----------
document.addEventListener("htmx:beforeSwap", (event) => {
  const elt = event.detail.elt;
  if (elt && elt.id === "thread-earlier" && document.activeElement === elt) {
    // The button is gone once swapped (its own events no longer reach the document).
    setTimeout(() => {
      const first = document.querySelector("#thread-messages > [id^=message-]");
      if (first) {
        first.setAttribute("tabindex", "-1");
        first.focus();
      }
    }, 0);
  }
});

// --- a thread opened from the list on a phone starts at its header ------------------------
document.addEventListener("htmx:afterSwap", (event) => {
  const target = event.detail.target;
  if (!target || !(target.id === "thread-pane" || target.id === "thread")) {
    return;
  }
  const thread = document.getElementById("thread");
  if (thread && thread.getBoundingClientRect().top < 0) {
    thread.scrollIntoView({ block: "start" });
  }
});
