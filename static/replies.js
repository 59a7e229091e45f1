// The saved-reply picker (templates/saved_replies/_picker.html) inside the composer.
//
// "Saved replies" opens a filter box over the replies usable in this conversation (fetched
// once per picker from data-options-url); typing "/" at the start of the composer's text or
// after a space opens the same list filtered by what follows the slash. Arrow keys move,
// Enter inserts, Escape closes. The chosen reply is fetched with its variables filled in
// (text/plain) and inserted at the caret of textarea[data-composer-text], replacing the
// "/name" typed. No inline code (strict CSP): everything hangs off data- attributes through
// delegation on the document, so pickers htmx swaps in later work without rebinding.
"use strict";

(() => {
  const SLASH = /(?:^|\s)\/([^\s/][^\n/]{0,39}|)$/; // "/" at the start or after a space, + query

  // picker element -> {options: Promise<Element[]>, mode, active, slashStart, textarea}
  const states = new WeakMap();

  function stateOf(picker) {
    let state = states.get(picker);
    if (!state) {
      state = { options: null, mode: null, active: -1, slashStart: -1, dismissed: -1, textarea: null };
      states.set(picker, state);
    }
    return state;
  }

  const part = (picker, name) => picker.querySelector(`[data-sr-${name}]`);

  function composerText(picker) {
    const form = picker.closest("form") || document;
    const areas = [...form.querySelectorAll("textarea[data-composer-text]")];
    const state = stateOf(picker);
    if (state.textarea && areas.includes(state.textarea)) {
      return state.textarea;
    }
    return areas.find((area) => area.offsetParent !== null) || areas[0] || null;
  }

  function pickerFor(textarea) {
    const form = textarea.closest("form");
    return form ? form.querySelector("[data-saved-replies]") : null;
  }

  function loadOptions(picker) {
    const state = stateOf(picker);
    if (!state.options) {
      state.options = fetch(picker.dataset.optionsUrl, {
        credentials: "same-origin",
        headers: { Accept: "text/html" },
      })
        .then((response) => {
          if (!response.ok) {
            throw new Error(`HTTP ${response.status}`);
          }
          return response.text();
        })
        .then((html) => {
          const doc = new DOMParser().parseFromString(`<ul>${html}</ul>`, "text/html");
          const empty = doc.querySelector("[data-sr-empty]");
          if (empty) {
            part(picker, "message").textContent = empty.textContent;
          }
          return [...doc.querySelectorAll("li[role=option]")].map((li) =>
            document.importNode(li, true),
          );
        })
        .catch(() => {
          state.options = null; // try again next time
          part(picker, "message").textContent = "Saved replies could not be loaded. Try again.";
          return [];
        });
    }
    return state.options;
  }

  function words(text) {
    return text.toLowerCase().split(/\s+/).filter(Boolean);
  }

  // Names that start with the query first, then names containing it, then the text.
  function rank(option, query) {
    if (!query) {
      return 0;
    }
    const name = option.dataset.name.toLowerCase();
    const all = option.textContent.toLowerCase();
    const terms = words(query);
    if (name.startsWith(query.toLowerCase())) {
      return 1;
    }
    if (terms.every((term) => name.includes(term))) {
      return 2;
    }
    if (terms.every((term) => all.includes(term))) {
      return 3;
    }
    return null;
  }

  function show(picker, query) {
    const state = stateOf(picker);
    return loadOptions(picker).then((options) => {
      if (!state.mode) {
        return 0;
      }
      const list = part(picker, "list");
      const matches = options
        .map((option, index) => ({ option, index, rank: rank(option, query) }))
        .filter((entry) => entry.rank !== null)
        .sort((a, b) => a.rank - b.rank || a.index - b.index)
        .map((entry) => entry.option);
      list.replaceChildren(...matches);
      list.hidden = matches.length === 0;
      part(picker, "filter").setAttribute("aria-expanded", String(matches.length > 0));
      const message = part(picker, "message");
      if (options.length && !matches.length) {
        message.textContent = `No saved reply matches “${query}”.`;
      } else if (options.length) {
        message.textContent = "";
      }
      setActive(picker, matches.length ? 0 : -1);
      return matches.length;
    });
  }

  function visibleOptions(picker) {
    return [...part(picker, "list").querySelectorAll("[role=option]")];
  }

  function setActive(picker, index) {
    const state = stateOf(picker);
    const owner = state.mode === "slash" ? state.textarea : part(picker, "filter");
    state.active = markActiveOption(visibleOptions(picker), index, owner); // app.js
  }

  function open(picker, mode, query = "") {
    const state = stateOf(picker);
    state.mode = mode;
    const popup = part(picker, "popup");
    popup.hidden = false;
    popup.classList.toggle("sr-slash", mode === "slash");
    part(picker, "toggle").setAttribute("aria-expanded", "true");
    const filter = part(picker, "filter");
    if (mode === "menu") {
      state.textarea = composerText(picker);
      filter.value = query;
      filter.focus();
    } else if (state.textarea) {
      state.textarea.setAttribute("aria-controls", part(picker, "list").id);
    }
    return show(picker, query);
  }

  function close(picker, focusBack) {
    const state = stateOf(picker);
    const wasMenu = state.mode === "menu";
    state.mode = null;
    state.slashStart = -1;
    part(picker, "popup").hidden = true;
    part(picker, "toggle").setAttribute("aria-expanded", "false");
    part(picker, "filter").setAttribute("aria-expanded", "false");
    if (state.textarea) {
      state.textarea.removeAttribute("aria-activedescendant");
      state.textarea.removeAttribute("aria-controls");
    }
    if (focusBack && wasMenu) {
      part(picker, "toggle").focus();
    }
  }

  function insert(textarea, text, start, end) {
    insertAtCaret(textarea, text, start, end); // app.js
  }

  function choose(picker, option) {
    const state = stateOf(picker);
    const textarea = state.textarea || composerText(picker);
    if (!option || !textarea) {
      return;
    }
    let start = textarea.selectionStart;
    let end = textarea.selectionEnd;
    if (state.mode === "slash" && state.slashStart >= 0) {
      start = state.slashStart; // replace "/name" with the reply
      end = textarea.selectionEnd;
    }
    close(picker, false);
    const message = part(picker, "status");
    fetch(option.dataset.url, { credentials: "same-origin", headers: { Accept: "text/plain" } })
      .then((response) => {
        if (!response.ok) {
          throw new Error(`HTTP ${response.status}`);
        }
        return response.text();
      })
      .then((text) => {
        insert(textarea, text.replace(/\r\n?/g, "\n"), start, end);
        message.textContent = `Inserted “${option.dataset.name}”.`;
      })
      .catch(() => {
        message.textContent = "That saved reply could not be loaded. Try again.";
        textarea.focus();
      });
  }

  // Arrow keys, Enter and Escape while the list is open (filter box or slash in the text).
  function navigate(picker, event) {
    const state = stateOf(picker);
    const options = visibleOptions(picker);
    optionListKey(event, { // app.js
      size: options.length,
      active: state.active,
      move: (index) => setActive(picker, index),
      choose: (index) => choose(picker, options[index]),
      close: () => {
        if (state.mode === "slash") {
          state.dismissed = state.slashStart; // this "/" stays text until typed again
        }
        close(picker, true);
      },
      nothingActive: () => {
        if (state.mode === "slash") {
          close(picker, false);
          return false; // a plain new line
        }
        return true; // never submits the composer from the filter box
      },
    });
  }

  document.addEventListener("click", (event) => {
    const toggle = event.target.closest("[data-sr-toggle]");
    if (toggle) {
      const picker = toggle.closest("[data-saved-replies]");
      if (stateOf(picker).mode) {
        close(picker, false);
      } else {
        open(picker, "menu");
      }
      return;
    }
    const option = event.target.closest("[data-saved-replies] [role=option]");
    if (option) {
      choose(option.closest("[data-saved-replies]"), option);
      return;
    }
    // A click anywhere else closes an open picker.
    document.querySelectorAll("[data-saved-replies]").forEach((picker) => {
      if (stateOf(picker).mode && !picker.contains(event.target)) {
        close(picker, false);
      }
    });
  });

  // Pressing on an option must not take the focus from the text (the click chooses it).
  document.addEventListener("mousedown", (event) => {
    if (event.target.closest && event.target.closest("[data-saved-replies] [role=option]")) {
      event.preventDefault();
    }
  });

  // Capture phase: handled keys never reach the composer's or the page's shortcuts.
  document.addEventListener(
    "keydown",
    (event) => {
      if (event.isComposing) {
        return; // an input method is still composing: its Enter is its own
      }
      const target = event.target;
      let picker = null;
      if (target.matches && target.matches("[data-sr-filter]")) {
        picker = target.closest("[data-saved-replies]");
      } else if (target.matches && target.matches("textarea[data-composer-text]")) {
        picker = pickerFor(target);
        if (!picker || stateOf(picker).mode !== "slash") {
          return;
        }
      }
      if (picker && stateOf(picker).mode) {
        navigate(picker, event);
      }
    },
    true,
  );

  // The filter box: captured and stopped here, so typing in it is not typing in the
  // composer (whose draft saves on input from the form).
  document.addEventListener(
    "input",
    (event) => {
      const target = event.target;
      if (!target.matches || !target.matches("[data-sr-filter]")) {
        return;
      }
      event.stopPropagation();
      const picker = target.closest("[data-saved-replies]");
      if (stateOf(picker).mode) {
        show(picker, target.value.trim());
      }
    },
    true,
  );

  document.addEventListener("input", (event) => {
    const target = event.target;
    if (!target.matches("textarea[data-composer-text]")) {
      return;
    }
    const picker = pickerFor(target);
    if (!picker) {
      return;
    }
    const state = stateOf(picker);
    const caret = target.selectionStart;
    const before = target.value.slice(0, caret);
    const found = target.selectionStart === target.selectionEnd && SLASH.exec(before);
    if (!found) {
      if (state.mode === "slash") {
        close(picker, false);
      }
      return;
    }
    const query = found[1];
    const slashStart = caret - query.length - 1;
    if (slashStart === state.dismissed && target.value[slashStart] === "/") {
      return; // closed with Escape: typing on does not reopen it
    }
    state.dismissed = -1;
    state.textarea = target;
    state.slashStart = slashStart;
    const opened = state.mode === "slash" ? show(picker, query) : open(picker, "slash", query);
    opened.then((count) => {
      // "/ " or a sentence that only began with a slash: stop listening.
      if (!count && /\s$/.test(query) && state.mode === "slash") {
        close(picker, false);
      }
    });
  });

  // Leaving the text or the picker with Tab closes the slash list.
  document.addEventListener("focusout", (event) => {
    const target = event.target;
    if (!target.matches || !target.matches("textarea[data-composer-text], [data-sr-filter]")) {
      return;
    }
    const picker = target.matches("[data-sr-filter]")
      ? target.closest("[data-saved-replies]")
      : pickerFor(target);
    if (!picker) {
      return;
    }
    const next = event.relatedTarget;
    if (next && picker.contains(next)) {
      return;
    }
    const state = stateOf(picker);
    // A click on an option blurs first: let the click choose before closing.
    window.setTimeout(() => {
      if (state.mode && !picker.contains(document.activeElement)) {
        if (state.mode === "slash" && document.activeElement === state.textarea) {
          return;
        }
        close(picker, false);
      }
    }, 150);
  });
})();
