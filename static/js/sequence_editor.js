// Sequence editor: add, remove and reorder step rows; show the inputs of each
// row's kind (and of an action step, its action's own fields); show the enrolment
// trigger's own input. Without JavaScript every field shows.
(function () {
  var list = document.getElementById("steps");
  var template = document.getElementById("step-template");
  if (!list) return;
  function syncRow(row) {
    var kind = row.querySelector(".step-kind").value;
    row.setAttribute("data-kind", kind);
    row.querySelectorAll("[data-for]").forEach(function (part) {
      part.hidden = part.getAttribute("data-for").split(" ").indexOf(kind) === -1;
    });
    var action = row.querySelector(".step-action");
    row.querySelectorAll("[data-action]").forEach(function (part) {
      part.hidden = !action || part.getAttribute("data-action") !== action.value;
    });
  }
  list.querySelectorAll(".step-row").forEach(syncRow);
  list.addEventListener("change", function (event) {
    var target = event.target.classList;
    if (target.contains("step-kind") || target.contains("step-action")) syncRow(event.target.closest(".step-row"));
  });
  list.addEventListener("click", function (event) {
    var row = event.target.closest(".step-row");
    if (!row) return;
    if (event.target.hasAttribute("data-remove")) row.remove();
    var move = event.target.getAttribute("data-move");
    if (move === "up" && row.previousElementSibling) list.insertBefore(row, row.previousElementSibling);
    if (move === "down" && row.nextElementSibling) list.insertBefore(row.nextElementSibling, row);
  });
  document.getElementById("add-step").addEventListener("click", function () {
    var row = template.content.firstElementChild.cloneNode(true);
    list.appendChild(row);
    syncRow(row);
  });
  var trigger = document.getElementById("id_enroll_kind");
  function syncTrigger() {
    document.querySelectorAll("[data-enroll]").forEach(function (el) {
      el.hidden = el.getAttribute("data-enroll") !== trigger.value;
    });
  }
  if (trigger) { trigger.addEventListener("change", syncTrigger); syncTrigger(); }
})();
