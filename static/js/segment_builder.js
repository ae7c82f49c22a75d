// Segment editor: add and remove condition rows; show the field or the behaviour part of a row;
// offer only the operators that fit the chosen field; show the second value for "between", the
// custom field's name for "Custom field…", the count for "did". Static lists have no conditions.
// Without this script every input is shown and the server still validates the rows.
(function () {
  var list = document.getElementById("conditions");
  var template = document.getElementById("condition-template");
  if (!list || !template) return;
  var builder = document.getElementById("builder");
  var kind = document.getElementById(builder.getAttribute("data-kind-field"));

  function refresh(row) {
    var type = row.querySelector(".c-type").value;
    row.querySelectorAll(".c-part").forEach(function (part) {
      part.hidden = part.getAttribute("data-part") !== type;
    });
    var field = row.querySelector(".c-field");
    var fieldKind = field.options[field.selectedIndex].getAttribute("data-kind");
    var operator = row.querySelector(".c-operator");
    Array.prototype.forEach.call(operator.options, function (option) {
      option.hidden = option.getAttribute("data-kinds").split(" ").indexOf(fieldKind) < 0;
    });
    if (operator.options[operator.selectedIndex].hidden) {
      var first = Array.prototype.find.call(operator.options, function (o) { return !o.hidden; });
      if (first) operator.value = first.value;
    }
    var op = operator.value;
    row.querySelector(".c-custom").hidden = field.value !== "custom";
    row.querySelector(".c-value").hidden = op === "present" || op === "empty";
    row.querySelector(".c-value2").hidden = op !== "between";
    var propOp = row.querySelector(".c-prop-operator").value;
    var hasProperty = row.querySelector(".c-property").value.trim() !== "";
    row.querySelector(".c-prop-operator").hidden = !hasProperty;
    row.querySelector(".c-prop-value").hidden = !hasProperty || propOp === "present" || propOp === "empty";
    row.querySelector(".c-times").hidden = row.querySelector(".c-mode").value === "never";
  }
  function refreshAll() {
    var isStatic = kind && kind.value === "static";
    builder.hidden = isStatic;
    list.querySelectorAll(".cond-row").forEach(refresh);
  }
  document.getElementById("add-condition").addEventListener("click", function () {
    list.appendChild(template.content.firstElementChild.cloneNode(true));
    refresh(list.lastElementChild);
  });
  list.addEventListener("click", function (event) {
    if (!event.target.classList.contains("c-remove")) return;
    var row = event.target.closest(".cond-row");
    if (list.querySelectorAll(".cond-row").length > 1) row.remove();
  });
  list.addEventListener("change", function (event) {
    var row = event.target.closest(".cond-row");
    if (row) refresh(row);
  });
  list.addEventListener("input", function (event) {
    if (event.target.classList.contains("c-property")) refresh(event.target.closest(".cond-row"));
  });
  // Rows of a static list are not posted (the builder is hidden and its inputs ignored by the server).
  if (kind) kind.addEventListener("change", refreshAll);
  refreshAll();
})();
