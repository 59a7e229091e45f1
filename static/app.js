// The page's only script besides htmx. The Content-Security-Policy allows no inline code
// (no onclick=, no hx-on), so behaviour hangs off data- attributes through event delegation
// on the document: it works for content htmx swaps in later without rebinding anything.
"use strict";

// Put `text` in place of start..end of a textarea, as typing would: execCommand keeps the
// browser's undo history; setRangeText is the fallback (then "input" is sent by hand, as
// drafts save on input). Shared by the saved replies' picker and the @mention list.
function insertAtCaret(textarea, text, start, end) {
  textarea.focus();
  textarea.setSelectionRange(start, end);
  let done = false;
  try {
    done = document.execCommand("insertText", false, text);
  } catch {
    done = false;
  }
  if (!done || textarea.value.slice(start, start + text.length) !== text) {
    textarea.setRangeText(text, start, end, "end");
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
  }
}

// The open option lists a text field owns (the saved replies' picker, the @mention list):
// the focus stays in the field, which points at the active option with
// aria-activedescendant. Mark option `index` (wrapping round) active and scroll it into
// view; the active index, -1 when there are no options.
function markActiveOption(options, index, owner) {
  const active = options.length ? (index + options.length) % options.length : -1;
  options.forEach((option, i) => {
    const on = i === active;
    option.setAttribute("aria-selected", String(on));
    option.classList.toggle("active", on);
    if (on) {
      option.scrollIntoView({ block: "nearest" });
    }
  });
  if (owner) {
    if (active >= 0) {
      owner.setAttribute("aria-activedescendant", options[active].id);
    } else {
      owner.removeAttribute("aria-activedescendant");
    }
  }
  return active;
}

// A key pressed while such a list is open: ArrowDown and ArrowUp move, Enter (and the other
// `chooseKeys`) chooses the active option, Escape closes. A key it handles goes no further
// (call it from a capture-phase keydown listener, so the composer and the page's shortcuts
// never see it); true then. `list`: {size, active, move(index), choose(index), close(),
// chooseKeys (default ["Enter"]), shiftIsText (with Shift those keys stay the text's: a new
// line), nothingActive() (Enter with no active option: whether it handled that; default not)}.
function optionListKey(event, list) {
  const key = event.key;
  let handled = false;
  if (key === "ArrowDown" || key === "ArrowUp") {
    handled = list.size > 0;
    if (handled) {
      list.move(list.active + (key === "ArrowDown" ? 1 : -1));
    }
  } else if (key === "Escape") {
    list.close();
    handled = true;
  } else if ((list.chooseKeys || ["Enter"]).includes(key)
    && !(list.shiftIsText && event.shiftKey)) {
    if (list.active >= 0 && list.size > 0) {
      list.choose(list.active);
      handled = true;
    } else {
      handled = Boolean(list.nothingActive && list.nothingActive());
    }
  }
  if (handled) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
  return handled;
}

document.addEventListener("click", (event) => {
  const copy = event.target.closest("[data-copy-target]");
  if (copy) {
    const field = document.getElementById(copy.dataset.copyTarget);
    if (field) {
      navigator.clipboard.writeText(field.value).then(() => {
        copy.textContent = "Copied";
      });
    }
    return;
  }
  // Opening a thread from the list: the row is read and current before the answer arrives.
  const link = event.target.closest("a[data-open-row]");
  if (link) {
    const row = link.closest("li");
    document.querySelectorAll(".conv-row.current").forEach((r) => r.classList.remove("current"));
    row.classList.remove("unread");
    row.classList.add("current");
  }
});

// The thread on screen was marked read (its POST, _messages.html): its row in the list, drawn
// by the same page before that POST, drops the unread marker too.
document.addEventListener("htmx:afterRequest", (event) => {
  const rowId = event.detail.elt && event.detail.elt.dataset && event.detail.elt.dataset.readRow;
  if (!rowId || !event.detail.successful) {
    return;
  }
  const row = document.getElementById(rowId);
  if (row) {
    row.classList.remove("unread");
    row.querySelectorAll(".unread-dot").forEach((dot) => dot.remove());
  }
});

// The top bar's menu on a phone (base.html): the button opens and closes the sections;
// Escape or a click elsewhere closes it, and focus goes back to the button on Escape.
function setNavOpen(toggle, open) {
  toggle.setAttribute("aria-expanded", open ? "true" : "false");
  toggle.closest(".topbar").classList.toggle("nav-open", open);
}

document.addEventListener("click", (event) => {
  const toggle = document.querySelector("[data-nav-toggle]");
  if (!toggle) {
    return;
  }
  if (toggle.contains(event.target)) {
    setNavOpen(toggle, toggle.getAttribute("aria-expanded") !== "true");
  } else if (!event.target.closest("#topbar-nav")) {
    setNavOpen(toggle, false);
  }
});

document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") {
    return;
  }
  const toggle = document.querySelector("[data-nav-toggle]");
  if (toggle && toggle.getAttribute("aria-expanded") === "true") {
    setNavOpen(toggle, false);
    toggle.focus();
  }
  // An open <details class="menu"> closes on Escape too, focus back on its summary.
  const menu = document.activeElement && document.activeElement.closest("details.menu[open]");
  if (menu) {
    menu.open = false;
    menu.querySelector("summary").focus();
  }
});

// Opening one <details class="menu"> closes the others; a click outside closes them all.
document.addEventListener("click", (event) => {
  document.querySelectorAll("details.menu[open]").forEach((menu) => {
    if (!menu.contains(event.target)) {
      menu.open = false;
    }
  });
});

// A contact renamed in the panel beside a thread (_contact_panel.html): the thread's header
// says the new name at once, as the panel does.
document.addEventListener("htmx:afterSettle", (event) => {
  const identity = event.detail.elt;
  if (!identity || identity.id !== "contact-identity" || !identity.querySelector("[role=status]")) {
    return;
  }
  const name = identity.querySelector(".contact-name");
  const header = document.querySelector("#thread .thread-contact");
  if (name && header) {
    header.textContent = name.textContent;
  }
});
