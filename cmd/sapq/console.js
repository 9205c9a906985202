// Follows a running bulk action: polls its status and updates the page
// until it has finished.
(function () {
  var el = document.getElementById("operation");
  if (!el || el.dataset.finished === "true") return;
  function set(id, v) { document.getElementById(id).textContent = v; }
  function poll() {
    fetch(el.dataset.status, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    }).then(function (op) {
      var bar = document.getElementById("progress");
      bar.max = op.selected; bar.value = op.done + op.skipped;
      set("done", op.done); set("skipped", op.skipped); set("selected", op.selected);
      if (op.finished) { location.reload(); return; }
      setTimeout(poll, 1000);
    }).catch(function () { setTimeout(poll, 3000); });
  }
  setTimeout(poll, 500);
})();
