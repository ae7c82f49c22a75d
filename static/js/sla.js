// Queue: keep the SLA countdowns current without reloading (every 30 s).
(function () {
  function span(seconds) {
    seconds = Math.abs(Math.floor(seconds));
    var d = Math.floor(seconds / 86400), h = Math.floor((seconds % 86400) / 3600), m = Math.floor((seconds % 3600) / 60);
    if (d) return d + "d " + h + "h";
    if (h) return h + "h " + m + "m";
    return m + "m";
  }
  function tick() {
    document.querySelectorAll("[data-due]").forEach(function (el) {
      var due = Date.parse(el.getAttribute("data-due"));
      if (isNaN(due)) return;
      var left = (due - Date.now()) / 1000;
      el.textContent = left >= 0 ? "due in " + span(left) : "overdue by " + span(left);
      var state = left < 0 ? "breached" : left < 7200 ? "soon" : "ok";
      el.className = "sla sla-" + state;
      var card = el.closest(".lead-card");
      if (card) { card.classList.remove("ok", "soon", "breached"); card.classList.add(state); }
    });
  }
  setInterval(tick, 30000);
})();
