// The page's only script besides htmx. The Content-Security-Policy allows no inline code
// (no onclick=, no hx-on), so behaviour hangs off data- attributes through event delegation
// on the document: it works for content htmx swaps in later without rebinding anything.
"use strict";

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
