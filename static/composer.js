/* The composer (templates/conversations/_composer.html), on top of a form that works without
   it: To/CC/BCC chips over the comma-separated inputs, attachments dropped onto the composer,
   and a note that never carries recipients. Reply/Note are radios (`private`) that CSS draws
   as tabs; the draft is saved by htmx (the status line's hx-post) as the agent types. A sent
   reply's undo window counts down in the thread; Enter in "Send later"'s time schedules. */
"use strict";

(function () {
  const ADDRESS = /^[^\s@<>,;]+@[^\s@<>,;]+\.[^\s@<>,;]+$/;

  function changed(form) {
    form.dispatchEvent(new CustomEvent("composer-changed", { bubbles: true }));
  }

  function isNote(form) {
    const note = form.querySelector('[data-composer-mode="note"]');
    return Boolean(note && note.checked);
  }

  /* --- chips: the real input becomes hidden and holds "a@x, b@y"; an entry box beside the
     chips takes what is typed and turns it into a chip at a comma, Enter, Tab or blur. --- */
  function chipField(input) {
    const form = input.form;
    const what = input.dataset.chips;
    // The contact's chip shows their name too (data-chip-name for data-chip-name-for).
    const knownName = input.dataset.chipName || "";
    const knownFor = (input.dataset.chipNameFor || "").toLowerCase();
    const box = document.createElement("div");
    box.className = "chip-field";
    const list = document.createElement("ul");
    list.className = "chips";
    list.setAttribute("aria-label", what + " recipients");
    const entry = document.createElement("input");
    entry.type = "text";
    entry.className = "chip-entry";
    entry.id = input.id;
    entry.autocomplete = "off";
    entry.placeholder = "Add an address";
    if (input.hasAttribute("aria-describedby")) {
      entry.setAttribute("aria-describedby", input.getAttribute("aria-describedby"));
      entry.setAttribute("aria-invalid", "true");
    }
    input.id = input.id + "-value";
    input.type = "hidden";
    input.removeAttribute("placeholder");
    input.parentNode.insertBefore(box, input);
    box.append(list, entry, input);
    box.addEventListener("click", (event) => { if (event.target === box) entry.focus(); });

    let addresses = input.value.split(/[,;]/).map((a) => a.trim()).filter(Boolean);

    function draw() {
      list.replaceChildren();
      addresses.forEach((address, index) => {
        const chip = document.createElement("li");
        chip.className = "chip" + (ADDRESS.test(address) ? "" : " chip-bad");
        chip.dataset.address = address;
        const text = document.createElement("span");
        const named = knownName && address.toLowerCase() === knownFor;
        text.textContent = named ? knownName + " <" + address + ">" : address;
        if (!ADDRESS.test(address)) chip.title = "Not an email address";
        const remove = document.createElement("button");
        remove.type = "button";
        remove.textContent = "×";
        remove.setAttribute("aria-label", "Remove " + address);
        remove.addEventListener("click", () => {
          addresses.splice(index, 1);
          sync();
          entry.focus();
        });
        chip.append(text, remove);
        list.append(chip);
      });
      list.hidden = addresses.length === 0;
    }

    function sync() {
      input.value = addresses.join(", ");
      draw();
      changed(form);
    }

    function commit() {
      const parts = entry.value.split(/[,;\s]+/).map((a) => a.trim().replace(/^<|>$/g, "")).filter(Boolean);
      entry.value = "";
      const fresh = parts.filter((a) => !addresses.some((b) => b.toLowerCase() === a.toLowerCase()));
      if (fresh.length) {
        addresses = addresses.concat(fresh);
        sync();
      }
    }

    entry.addEventListener("keydown", (event) => {
      if ((event.key === "Enter" || event.key === "," || event.key === ";") && entry.value.trim()) {
        event.preventDefault();
        commit();
      } else if (event.key === "Enter") {
        event.preventDefault(); // Enter in the address box never sends the reply
      } else if (event.key === "Tab" && entry.value.trim()) {
        commit();
      } else if (event.key === "Backspace" && !entry.value && addresses.length) {
        addresses.pop();
        sync();
      }
    });
    entry.addEventListener("input", () => { if (/[,;]/.test(entry.value)) commit(); });
    entry.addEventListener("blur", commit);
    entry.addEventListener("paste", () => setTimeout(commit, 0));
    box.commit = commit;
    draw();
  }

  /* --- attachments: dropped files join the ones already chosen (DataTransfer), listed with a
     button to take each one off again. --- */
  function dropZone(zone) {
    const input = zone.querySelector('input[type="file"]');
    const list = zone.querySelector("[data-composer-files]");
    if (!input || !list || typeof DataTransfer === "undefined") return;

    function setFiles(files) {
      const transfer = new DataTransfer();
      files.forEach((file) => transfer.items.add(file));
      input.files = transfer.files;
      draw();
    }

    function draw() {
      list.replaceChildren();
      Array.from(input.files).forEach((file, index) => {
        const item = document.createElement("li");
        item.className = "chip";
        const name = document.createElement("span");
        name.textContent = file.name;
        const remove = document.createElement("button");
        remove.type = "button";
        remove.textContent = "×";
        remove.setAttribute("aria-label", "Remove " + file.name);
        remove.addEventListener("click", () => {
          const files = Array.from(input.files);
          files.splice(index, 1);
          setFiles(files);
        });
        item.append(name, remove);
        list.append(item);
      });
    }

    const form = zone.closest("form");
    let depth = 0;
    form.addEventListener("dragenter", (event) => {
      if (!Array.from(event.dataTransfer.types).includes("Files")) return;
      event.preventDefault();
      depth += 1;
      form.classList.add("is-dropping");
    });
    form.addEventListener("dragover", (event) => {
      if (!Array.from(event.dataTransfer.types).includes("Files")) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
    });
    form.addEventListener("dragleave", () => {
      depth = Math.max(0, depth - 1);
      if (!depth) form.classList.remove("is-dropping");
    });
    form.addEventListener("drop", (event) => {
      if (!event.dataTransfer || !event.dataTransfer.files.length) return;
      event.preventDefault();
      depth = 0;
      form.classList.remove("is-dropping");
      setFiles(Array.from(input.files).concat(Array.from(event.dataTransfer.files)));
    });
    input.addEventListener("change", draw);
    draw();
  }

  function setUp(root) {
    const scope = root && root.querySelectorAll ? root : document;
    const forms = scope.matches && scope.matches("[data-composer]") ? [scope] : scope.querySelectorAll("[data-composer]");
    forms.forEach((form) => {
      if (form.dataset.composerReady) return;
      form.dataset.composerReady = "1";
      form.querySelectorAll("input[data-chips]").forEach(chipField);
      form.querySelectorAll("[data-composer-drop]").forEach(dropZone);
      // A note is never emailed: it never carries the reply's To/CC/BCC (kept for the reply tab).
      form.addEventListener("htmx:configRequest", (event) => {
        if (event.detail.elt !== form) return;
        if (isNote(form)) {
          delete event.detail.parameters.to;
          delete event.detail.parameters.cc;
          delete event.detail.parameters.bcc;
        }
        form.dataset.sending = "1";
      });
      // Nothing typed afterwards may bring back the draft that sending deletes.
      form.addEventListener("htmx:beforeRequest", (event) => {
        if (event.detail.elt !== form && form.dataset.sending) event.preventDefault();
      });
      form.addEventListener("htmx:afterRequest", (event) => {
        if (event.detail.elt === form) delete form.dataset.sending;
      });
      // The draft's status line takes only the route's own words: a sign-in page (session
      // expired) or an error says the draft was not saved instead.
      const status = form.querySelector(".composer-draft");
      if (status) {
        const notSaved = () => { status.textContent = "Draft not saved (check your connection or sign in again)"; };
        status.addEventListener("htmx:beforeSwap", (event) => {
          const type = event.detail.xhr.getResponseHeader("Content-Type") || "";
          if (!type.startsWith("text/plain")) {
            event.detail.shouldSwap = false;
            notSaved();
          }
        });
        status.addEventListener("htmx:responseError", notSaved);
        status.addEventListener("htmx:sendError", notSaved);
      }
      // The note look (is-note) follows the tab; CSS's :has() does the same without JS.
      form.querySelectorAll("[data-composer-mode]").forEach((radio) => {
        radio.addEventListener("change", () => {
          form.classList.toggle("is-note", isNote(form));
        });
      });
      form.classList.toggle("is-note", isNote(form));
      // Enter in "Send later"'s time schedules (the form's first button would send now).
      const sendAt = form.querySelector('input[name="send_at"]');
      const schedule = form.querySelector('button[name="later"]');
      if (sendAt && schedule) {
        sendAt.addEventListener("keydown", (event) => {
          if (event.key !== "Enter") return;
          event.preventDefault();
          schedule.click();
        });
      }
    });
  }

  /* A reply in its undo window (_message.html) counts down to its sending. The seconds come
     from the server when the thread is drawn, so a wrong clock here changes nothing. */
  function countDown() {
    document.querySelectorAll("[data-send-countdown]").forEach((span) => {
      if (!span.dataset.sendBy) span.dataset.sendBy = String(Date.now() + 1000 * Number(span.dataset.sendIn || 0));
      const left = Math.ceil((Number(span.dataset.sendBy) - Date.now()) / 1000);
      span.textContent = left > 0 ? "Sending in " + left + " s" : "Sending…";
    });
  }
  setInterval(countDown, 1000);

  // Addresses still in an entry box become chips before the form's values are read.
  document.addEventListener("submit", (event) => {
    if (!event.target.matches || !event.target.matches("[data-composer]")) return;
    event.target.querySelectorAll(".chip-field").forEach((box) => box.commit && box.commit());
  }, true);

  document.addEventListener("DOMContentLoaded", () => setUp(document));
  document.addEventListener("htmx:load", (event) => setUp(event.detail.elt));
})();
