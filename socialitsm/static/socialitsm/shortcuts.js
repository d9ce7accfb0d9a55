/* Keyboard shortcuts of the agents' UI (listed on the "?" overlay): j/k move through the queue,
   o or Enter opens, x selects, a assigns to me, r replies on the incident page, / searches.
   Keys typed into fields are left alone. */
(function () {
  "use strict";

  var current = -1;

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("#queue-rows tr[data-number]"));
  }

  function typing(target) {
    if (!target || !target.tagName) return false;
    var tag = target.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
  }

  function mark(index) {
    var all = rows();
    if (!all.length) return;
    index = Math.max(0, Math.min(all.length - 1, index));
    all.forEach(function (row) { row.classList.remove("is-current"); row.removeAttribute("aria-current"); });
    var row = all[index];
    row.classList.add("is-current");
    row.setAttribute("aria-current", "true");
    row.scrollIntoView({ block: "nearest" });
    current = index;
  }

  function currentRow() {
    var all = rows();
    return current >= 0 && current < all.length ? all[current] : null;
  }

  function assignToMe(row) {
    var selection = document.getElementById("selection");
    if (!row || !selection) return;
    var form = document.createElement("form");
    form.method = "post";
    form.action = selection.querySelector("[name=action][value=assign]").getAttribute("formaction");
    [["csrfmiddlewaretoken", selection.querySelector("[name=csrfmiddlewaretoken]").value],
     ["back", selection.querySelector("[name=back]").value],
     ["action", "assign"], ["assignee", "me"], ["incidents", row.dataset.number]].forEach(function (pair) {
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = pair[0];
      input.value = pair[1];
      form.appendChild(input);
    });
    document.body.appendChild(form);
    form.submit();
  }

  function help() {
    var dialog = document.getElementById("shortcuts-help");
    if (!dialog) return;
    if (dialog.open) dialog.close(); else dialog.showModal();
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target)) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    // Enter on a focused link or button does what it always does.
    if (event.key === "Enter" && event.target !== document.body) return;
    var dialog = document.getElementById("shortcuts-help");
    if (dialog && dialog.open && event.key !== "?") return;
    var row = currentRow();
    switch (event.key) {
      case "j": mark(current + 1); break;
      case "k": mark(current < 0 ? 0 : current - 1); break;
      case "o":
      case "Enter":
        if (!row) return;
        window.location.assign(row.dataset.href);
        break;
      case "x":
        if (!row) return;
        var box = row.querySelector("input[type=checkbox]");
        box.checked = !box.checked;
        break;
      case "a": if (!row) return; assignToMe(row); break;
      case "r":
        var reply = document.getElementById("reply-text");
        if (!reply) return;
        reply.focus();
        reply.scrollIntoView({ block: "center" });
        break;
      case "/":
        var search = document.getElementById("queue-search");
        if (!search) return;
        search.focus();
        search.select();
        break;
      case "?": help(); break;
      default: return;
    }
    event.preventDefault();
  });

  /* Select all on the page, and keep the selection and the current row when the live poll
     swaps the rows. */
  document.addEventListener("change", function (event) {
    if (event.target.id !== "select-all") return;
    rows().forEach(function (row) { row.querySelector("input[type=checkbox]").checked = event.target.checked; });
  });

  var kept = null;
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    if (!event.detail.target || event.detail.target.id !== "queue-rows") return;
    var row = currentRow();
    kept = {
      checked: Array.prototype.map.call(
        document.querySelectorAll("#queue-rows input[name=incidents]:checked"), function (box) { return box.value; }),
      current: row ? row.dataset.number : null
    };
  });
  document.addEventListener("htmx:oobAfterSwap", function (event) {
    if (!kept || !event.detail.target || event.detail.target.id !== "queue-rows") return;
    var state = kept;
    kept = null;
    current = -1;
    rows().forEach(function (row, index) {
      if (state.checked.indexOf(row.dataset.number) >= 0) row.querySelector("input[type=checkbox]").checked = true;
      if (row.dataset.number === state.current) mark(index);
    });
  });
})();

document.addEventListener("change", function (event) {
  "use strict";
  if (event.target.id !== "triage-select-all") return;
  document.querySelectorAll("input[name=posts][form=triage-bulk]").forEach(function (box) {
    box.checked = event.target.checked;
  });
});
