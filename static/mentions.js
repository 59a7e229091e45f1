// @mentions in the composer's note (templates/conversations/_composer.html).
//
// In the Note tab, "@" at the start of the text or after a space, then the first letters of a
// name, opens a list of the people who can see the conversation (the JSON in data-mentions on
// .mention-field); a word of the name matches too ("@bui" finds Bob Builder). Arrow keys move,
// Enter or Tab inserts "@Full Name ", Escape closes (that "@" stays text until typed again).
// The text keeps its own role (a textarea cannot be a combobox): it owns the open list with
// aria-controls and aria-activedescendant, as the saved replies' "/" list does (replies.js),
// and a status line says how many people match. Replies never open it: "@" is in addresses.
// No inline code (strict CSP): listeners on the document cover composers htmx swaps in.
"use strict";

(() => {
  const AT = /(?:^|[\s([{"'])@([^\s@][^@\n]{0,39}|)$/u; // "@" + what was typed since
  const SHOWN = 8;
  const states = new WeakMap(); // .mention-field -> {people, open, start, active, dismissed}

  function stateOf(field) {
    let state = states.get(field);
    if (!state) {
      let people = [];
      try {
        people = JSON.parse(field.dataset.mentions || "[]");
      } catch {
        people = [];
      }
      state = { people, open: false, start: -1, active: -1, dismissed: -1, matches: [] };
      states.set(field, state);
    }
    return state;
  }

  const fieldOf = (textarea) => textarea.closest(".mention-field[data-mentions]");
  const listOf = (field) => field.querySelector("[data-mention-list]");
  const textOf = (field) => field.querySelector("textarea[data-composer-text]");

  function isNote(textarea) {
    const note = textarea.form && textarea.form.querySelector('[data-composer-mode="note"]');
    return Boolean(note && note.checked);
  }

  // Names that start with the query first, then names with a word that does; by name.
  function find(people, query) {
    const wanted = query.toLowerCase();
    const ranked = [];
    for (const person of people) {
      const name = person.name.toLowerCase();
      if (name.startsWith(wanted)) {
        ranked.push([0, person]);
      } else if (name.split(/\s+/).some((word) => word.startsWith(wanted))) {
        ranked.push([1, person]);
      }
    }
    ranked.sort((a, b) => a[0] - b[0] || a[1].name.localeCompare(b[1].name));
    return ranked.slice(0, SHOWN).map(([, person]) => person);
  }

  function say(field, words) {
    const status = field.querySelector("[data-mention-status]");
    if (status && status.textContent !== words) {
      status.textContent = words;
    }
  }

  function draw(field, matches) {
    const list = listOf(field);
    const options = matches.map((person, index) => {
      const option = document.createElement("li");
      option.id = `${list.id}-${index}`;
      option.className = "mention-option";
      option.setAttribute("role", "option");
      option.setAttribute("aria-selected", "false");
      option.dataset.index = String(index);
      const name = document.createElement("span");
      name.className = "mention-name";
      name.textContent = person.name;
      const email = document.createElement("span");
      email.className = "mention-email";
      email.textContent = person.email;
      option.append(name, email);
      return option;
    });
    list.replaceChildren(...options);
  }

  function setActive(field, index) {
    const options = [...listOf(field).querySelectorAll("[role=option]")];
    stateOf(field).active = markActiveOption(options, index, textOf(field)); // app.js
  }

  function show(field, textarea, query, start) {
    const state = stateOf(field);
    const matches = find(state.people, query);
    if (!matches.length) {
      close(field);
      return;
    }
    const wasOpen = state.open;
    state.open = true;
    state.start = start;
    state.matches = matches;
    draw(field, matches);
    const list = listOf(field);
    list.hidden = false;
    textarea.setAttribute("aria-autocomplete", "list");
    textarea.setAttribute("aria-controls", list.id);
    setActive(field, 0);
    const count = matches.length === 1 ? "1 person matches" : `${matches.length} people match`;
    say(field, `${count}. Up and down arrows to choose, Enter to insert, Escape to close.`);
    if (!wasOpen) {
      field.classList.add("mention-open");
    }
  }

  function close(field) {
    const state = stateOf(field);
    if (!state.open) {
      return;
    }
    state.open = false;
    state.start = -1;
    state.active = -1;
    const list = listOf(field);
    list.hidden = true;
    list.replaceChildren();
    field.classList.remove("mention-open");
    const textarea = textOf(field);
    textarea.removeAttribute("aria-activedescendant");
    textarea.removeAttribute("aria-controls");
    textarea.removeAttribute("aria-autocomplete");
    say(field, "");
  }

  // "@Ana Agent " in place of the "@an" typed; the browser's undo history keeps it when it can.
  function choose(field, index) {
    const state = stateOf(field);
    const person = state.matches[index];
    const textarea = textOf(field);
    if (!person || !textarea || state.start < 0) {
      return;
    }
    const start = state.start;
    const end = textarea.selectionEnd;
    const spaced = /^\s/.test(textarea.value.slice(end));
    const text = `@${person.name}${spaced ? "" : " "}`;
    close(field);
    insertAtCaret(textarea, text, start, end); // app.js
    if (spaced) {
      const after = start + text.length + 1;
      textarea.setSelectionRange(after, after);
    }
    say(field, `${person.name} mentioned.`);
  }

  document.addEventListener("input", (event) => {
    const textarea = event.target;
    if (!textarea.matches || !textarea.matches("textarea[data-composer-text]")) {
      return;
    }
    const field = fieldOf(textarea);
    if (!field) {
      return;
    }
    const state = stateOf(field);
    const caret = textarea.selectionStart;
    const found = isNote(textarea) && caret === textarea.selectionEnd
      && AT.exec(textarea.value.slice(0, caret));
    if (!found) {
      state.dismissed = -1; // that "@" is gone: a new one opens the list again
      close(field);
      return;
    }
    const start = caret - found[1].length - 1;
    if (start === state.dismissed && textarea.value[start] === "@") {
      return; // closed with Escape: typing on does not reopen it
    }
    state.dismissed = -1;
    show(field, textarea, found[1], start);
  });

  // Capture phase: the keys the open list handles reach neither the composer nor the page's
  // shortcuts (Escape would otherwise close menus, Enter would add a line).
  document.addEventListener(
    "keydown",
    (event) => {
      const textarea = event.target;
      if (event.isComposing || !textarea.matches || !textarea.matches("textarea[data-composer-text]")) {
        return;
      }
      const field = fieldOf(textarea);
      const state = field && stateOf(field);
      if (!state || !state.open) {
        return;
      }
      optionListKey(event, { // app.js
        size: state.matches.length,
        active: state.active,
        move: (index) => setActive(field, index),
        choose: (index) => choose(field, index),
        close: () => {
          state.dismissed = state.start;
          close(field);
        },
        chooseKeys: ["Enter", "Tab"],
        shiftIsText: true,
      });
    },
    true,
  );

  // Pressing on an option keeps the focus in the text; the click chooses it.
  document.addEventListener("mousedown", (event) => {
    if (event.target.closest && event.target.closest(".mention-option")) {
      event.preventDefault();
    }
  });

  document.addEventListener("click", (event) => {
    const option = event.target.closest && event.target.closest(".mention-option");
    if (option) {
      choose(option.closest(".mention-field"), Number(option.dataset.index));
    }
  });

  // Leaving the text (Tab past a closed list, a click elsewhere) closes the list; so does a
  // move of the caret away from the "@" with the mouse or the arrow keys.
  document.addEventListener("focusout", (event) => {
    const textarea = event.target;
    if (textarea.matches && textarea.matches("textarea[data-composer-text]")) {
      const field = fieldOf(textarea);
      if (field) {
        close(field);
      }
    }
  });
  document.addEventListener("selectionchange", () => {
    const textarea = document.activeElement;
    if (!textarea || !textarea.matches || !textarea.matches("textarea[data-composer-text]")) {
      return;
    }
    const field = fieldOf(textarea);
    const state = field && stateOf(field);
    if (state && state.open && (textarea.selectionStart <= state.start
      || textarea.selectionStart !== textarea.selectionEnd)) {
      close(field);
    }
  });
  // The Reply tab: no list (an address has an "@" in it).
  document.addEventListener("change", (event) => {
    const radio = event.target;
    if (radio.matches && radio.matches("[data-composer-mode]") && radio.form) {
      radio.form.querySelectorAll(".mention-field[data-mentions]").forEach(close);
    }
  });
})();
