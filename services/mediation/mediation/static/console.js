// Keyboard shortcuts for the staff console (the pages work without this file).
//   j / k   next / previous case in a list      Enter  open it
//   /       the search field                     g i    notifications   g q  my queue
//   ?       this help
(function () {
  "use strict";
  var pendingG = false;
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("[data-row-link]")); }
  function typing(el) {
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }
  function select(delta) {
    var all = rows();
    if (!all.length) return;
    var now = all.findIndex(function (r) { return r.classList.contains("selected"); });
    var next = Math.max(0, Math.min(all.length - 1, now < 0 ? 0 : now + delta));
    all.forEach(function (r) { r.classList.remove("selected"); r.removeAttribute("aria-selected"); });
    all[next].classList.add("selected");
    all[next].setAttribute("aria-selected", "true");
    var link = all[next].querySelector("a");
    if (link) link.focus();
  }
  // 打印回执 and other print buttons (a script: the CSP allows no inline handler)
  document.addEventListener("click", function (e) {
    if (e.target.closest && e.target.closest("[data-print]")) { window.print(); }
  });
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e.target)) return;
    if (pendingG) {
      pendingG = false;
      if (e.key === "i") { location.href = "/console/inbox"; }
      if (e.key === "q") { location.href = "/console/"; }
      return;
    }
    if (e.key === "j") { select(1); e.preventDefault(); }
    else if (e.key === "k") { select(-1); e.preventDefault(); }
    else if (e.key === "g") { pendingG = true; setTimeout(function () { pendingG = false; }, 1500); }
    else if (e.key === "/") {
      var search = document.querySelector("[data-search]");
      if (search) { search.focus(); e.preventDefault(); }
    } else if (e.key === "?") {
      var help = document.getElementById("shortcuts");
      if (help) { help.hidden = !help.hidden; }
    }
  });
})();
