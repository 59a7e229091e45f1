// Keyboard shortcuts for the workspace, and the list's tick boxes (the bulk bar).
//
//   j / k    next / previous conversation in the list (focus moves to its row)
//   Enter    open the focused conversation
//   x        tick the focused row (bulk actions)
//   r / n    reply / private note in the open thread      [data-composer-tab="reply"|"note"]
//            (or the radios [data-composer-mode="reply"|"note"]), then [data-composer-text]
//   e        resolve the open thread and open the next one of the list
//   a / l    the open thread's assign / labels menu         [data-menu="assign"|"labels"]
//            (or <details id="menu-assign"|"menu-labels"> inside #thread)
//            (with rows ticked and no thread open: the bulk bar's menus instead)
//   /        search                                         [data-search]
//   ?        the list of shortcuts (a dialog; Escape closes it)
//
// Every hook is a data- attribute and every one may be missing: the shortcut then does
// nothing. No shortcut fires while typing in a field, or with Ctrl, Alt or Cmd held.
// CSP: no inline code, so behaviour hangs off listeners on the document, which also covers
// whatever htmx swaps in later.
"use strict";

(() => {
  const SHORTCUTS = [
    ["j", "Next conversation"],
    ["k", "Previous conversation"],
    ["Enter", "Open the conversation"],
    ["x", "Select the conversation (for bulk actions)"],
    ["r", "Reply"],
    ["n", "Private note"],
    ["e", "Resolve, then open the next conversation"],
    ["a", "Assign"],
    ["l", "Labels"],
    ["/", "Search"],
    ["?", "Show these shortcuts"],
  ];

  const $ = (selector, root = document) => root.querySelector(selector);
  const rows = () => Array.from(document.querySelectorAll("[data-conv-list] .conv-row"));
  const rowLink = (row) => row && row.querySelector("a[data-open-row]");
  const openConversation = () => {
    const field = document.getElementById("open-conversation");
    return field && field.value ? field.value : null;
  };

  function typing(target) {
    if (!(target instanceof Element)) {
      return false;
    }
    if (target.isContentEditable) {
      return true;
    }
    return ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName)
      && !(target.tagName === "INPUT" && ["checkbox", "radio", "button", "submit"].includes(target.type));
  }

  // --- the list: j / k / Enter / x ------------------------------------------------------

  function focusedRow() {
    const active = document.activeElement;
    const row = active && active.closest ? active.closest("[data-conv-list] .conv-row") : null;
    return row || document.querySelector("[data-conv-list] .conv-row.current");
  }

  function moveRow(step) {
    const all = rows();
    if (!all.length) {
      return;
    }
    const here = all.indexOf(focusedRow());
    const next = here === -1 ? (step > 0 ? 0 : all.length - 1)
      : Math.min(all.length - 1, Math.max(0, here + step));
    const link = rowLink(all[next]);
    if (link) {
      link.focus();
      link.scrollIntoView({ block: "nearest" });
    }
  }

  function openRow() {
    const active = document.activeElement;
    if (active && active.matches && active.matches("a[data-open-row]")) {
      return false; // the link opens itself: Enter on a link is the browser's
    }
    const link = rowLink(active && active.closest ? active.closest(".conv-row") : null);
    if (link) {
      link.click();
      return true;
    }
    return false;
  }

  function tickRow() {
    const row = focusedRow();
    const box = row && row.querySelector("[data-row-select]");
    if (box) {
      box.checked = !box.checked;
      box.dispatchEvent(new Event("change", { bubbles: true }));
    }
  }

  // --- the thread: r / n / e / a / l ----------------------------------------------------

  function composer(tab) {
    // The tab: a button (data-composer-tab) or the radio that stands for it (data-composer-mode).
    const button = $(`[data-composer-tab="${tab}"]`) || $(`[data-composer-mode="${tab}"]`);
    if (!button) {
      return;
    }
    button.click();
    const text = $("[data-composer-text]");
    if (text) {
      text.focus();
    }
  }

  function resolve() {
    const id = openConversation();
    if (id && window.htmx) {
      window.htmx.ajax("POST", `/conversations/${id}/status`, {
        source: document.getElementById("thread") || document.body,
        target: "#thread-pane",
        swap: "innerHTML",
        values: { status: "resolved", next: "1" },
      });
      return;
    }
    const bulk = $('#bulk-form button[name="action"][value="resolved"]');
    if (!id && selectedCount() > 0 && bulk) {
      bulk.click();
    }
  }

  // A menu is a <details> (opened), or a button that opens one (clicked); either way the
  // first field or button inside gets the focus.
  function openMenu(menu) {
    if (!menu) {
      return false;
    }
    if (menu.tagName === "DETAILS") {
      menu.open = true;
    } else if (menu.matches("button, summary, a")) {
      menu.click();
    }
    const root = menu.tagName === "DETAILS" ? menu : document;
    const panelId = menu.getAttribute("aria-controls");
    const panel = panelId ? document.getElementById(panelId) : root;
    const field = panel && panel.querySelector(
      "select, input:not([type=hidden]), textarea, [role=menuitem], .menu-panel button",
    );
    (field || menu).focus();
    return true;
  }

  function menu(name) {
    if (openConversation() && openMenu($(`[data-menu="${name}"]`) || $(`#thread details#menu-${name}`))) {
      return;
    }
    if (selectedCount() > 0) {
      openMenu($(`[data-bulk-menu="${name}"]`));
    }
  }

  function search() {
    const field = $("[data-search]");
    if (field) {
      field.focus();
      field.select();
    } else {
      window.location.assign("/conversations#search");
    }
  }

  // --- "?": the shortcuts, a modal dialog (Escape and the button close it) ---------------

  function shortcutsDialog() {
    let dialog = document.getElementById("shortcuts");
    if (dialog) {
      return dialog;
    }
    dialog = document.createElement("dialog");
    dialog.id = "shortcuts";
    dialog.className = "shortcuts";
    dialog.setAttribute("aria-labelledby", "shortcuts-title");
    const title = document.createElement("h2");
    title.id = "shortcuts-title";
    title.textContent = "Keyboard shortcuts";
    const hint = document.createElement("p");
    hint.className = "hint";
    hint.textContent = "They work anywhere except while you type in a field. Escape closes this list.";
    const list = document.createElement("dl");
    for (const [key, what] of SHORTCUTS) {
      const dt = document.createElement("dt");
      const kbd = document.createElement("kbd");
      kbd.textContent = key;
      dt.append(kbd);
      const dd = document.createElement("dd");
      dd.textContent = what;
      list.append(dt, dd);
    }
    const close = document.createElement("button");
    close.type = "button";
    close.className = "primary";
    close.textContent = "Close";
    close.dataset.closeShortcuts = "";
    dialog.append(title, hint, list, close);
    document.body.append(dialog);
    return dialog;
  }

  function showShortcuts() {
    const dialog = shortcutsDialog();
    if (!dialog.open) {
      dialog.showModal();
      dialog.querySelector("[data-close-shortcuts]").focus();
    }
  }

  // --- the bulk bar: "Select all", the count, the actions shown once something is ticked

  function selectedCount() {
    return document.querySelectorAll("[data-row-select]:checked").length;
  }

  function refreshBulkBar() {
    const bar = document.getElementById("bulk-form");
    if (!bar) {
      return;
    }
    bar.dataset.js = "";
    const boxes = document.querySelectorAll("[data-row-select]");
    const count = selectedCount();
    bar.toggleAttribute("data-selected", count > 0);
    const label = bar.querySelector("[data-selected-count]");
    if (label) {
      label.textContent = count ? `${count} selected` : "Select all";
    }
    const all = bar.querySelector("[data-select-all]");
    if (all) {
      all.checked = count > 0 && count === boxes.length;
      all.indeterminate = count > 0 && count < boxes.length;
      all.disabled = boxes.length === 0;
    }
    if (count === 0) {
      bar.querySelectorAll("details[open]").forEach((d) => { d.open = false; });
    }
  }

  // What is ticked survives the list being redrawn under it (the 5 s poll, "Load more", a
  // thread action's row); a bulk action that went through starts afresh.
  let ticked = new Set();

  function remember() {
    ticked = new Set(Array.from(document.querySelectorAll("[data-row-select]:checked"), (b) => b.value));
  }

  document.addEventListener("change", (event) => {
    const target = event.target;
    if (target.matches && target.matches("[data-select-all]")) {
      document.querySelectorAll("[data-row-select]").forEach((box) => { box.checked = target.checked; });
    }
    if (target.matches && target.matches("[data-select-all], [data-row-select]")) {
      remember();
      refreshBulkBar();
    }
  });
  document.addEventListener("htmx:afterRequest", (event) => {
    const xhr = event.detail.xhr;
    if (event.detail.elt && event.detail.elt.id === "bulk-form" && xhr && xhr.status < 300) {
      ticked = new Set();
    }
  });
  document.addEventListener("htmx:afterSettle", () => {
    document.querySelectorAll("[data-row-select]").forEach((box) => {
      box.checked = ticked.has(box.value);
    });
    remember();
    refreshBulkBar();
  });
  document.addEventListener("DOMContentLoaded", () => {
    refreshBulkBar();
    if (window.location.hash === "#search") {
      search();
    }
  });

  // --- the dispatcher ---------------------------------------------------------------------

  const ACTIONS = {
    j: () => moveRow(1),
    k: () => moveRow(-1),
    x: tickRow,
    r: () => composer("reply"),
    n: () => composer("note"),
    e: resolve,
    a: () => menu("assign"),
    l: () => menu("labels"),
    "/": search,
    "?": showShortcuts,
  };

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    if (document.querySelector("dialog[open]") && event.key !== "Escape") {
      return; // a modal is up: its own keys only
    }
    if (typing(event.target)) {
      return;
    }
    if (event.key === "Enter") {
      if (openRow()) {
        event.preventDefault();
      }
      return;
    }
    const action = ACTIONS[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  });

  document.addEventListener("click", (event) => {
    const close = event.target.closest("[data-close-shortcuts]");
    if (close) {
      close.closest("dialog").close();
    }
  });
})();
