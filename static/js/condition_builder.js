// Condition builder (leadfunnel/widgets.py): show each row's parts for its kind, hide the value
// for present/absent, add and remove rows. Delegated on the document, so rows added later
// (and builders inside rows cloned from a <template>) work without setup.
(function () {
  function syncRow(row) {
    var kind = row.querySelector(".cond-kind").value;
    row.setAttribute("data-kind", kind);
    row.querySelectorAll("[data-part-for]").forEach(function (part) {
      part.hidden = part.getAttribute("data-part-for").split(" ").indexOf(kind) === -1;
    });
    var operator = row.querySelector(".cond-operator");
    var value = row.querySelector(".cond-value");
    if (operator && value) value.hidden = operator.value === "present" || operator.value === "absent";
  }
  function syncAll(root) { root.querySelectorAll(".condition-row").forEach(syncRow); }
  document.addEventListener("change", function (event) {
    var row = event.target.closest(".condition-row");
    if (row && (event.target.classList.contains("cond-kind") || event.target.classList.contains("cond-operator"))) syncRow(row);
  });
  document.addEventListener("click", function (event) {
    var builder = event.target.closest(".condition-builder");
    if (event.target.hasAttribute("data-cond-remove")) {
      event.target.closest(".condition-row").remove();
    } else if (builder && event.target.hasAttribute("data-cond-add")) {
      var row = builder.querySelector("template").content.firstElementChild.cloneNode(true);
      builder.querySelector(".condition-rows").appendChild(row);
      syncRow(row);
    }
  });
  window.conditionBuilderSync = syncAll;
  syncAll(document);
})();
