// Condition builder (leadfunnel/widgets.py): show each row's parts for its kind, hide the value
// for present/absent, add and remove rows. Delegated on the document, so rows added later
// (and builders inside rows cloned from a <template>) work without setup. A builder is any
// .condition-builder holding .condition-rows, a [data-cond-add] button and a <template> of one
// row; a row is any [data-builder-item] (a condition row, or a larger row that contains one).
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
      event.target.closest("[data-builder-item]").remove();
    } else if (builder && event.target.hasAttribute("data-cond-add")) {
      var row = builder.querySelector(":scope > template").content.firstElementChild.cloneNode(true);
      builder.querySelector(":scope > .condition-rows").appendChild(row);
      syncAll(row.classList.contains("condition-row") ? row.parentNode : row);
    }
  });
  window.conditionBuilderSync = syncAll;
  syncAll(document);
})();
