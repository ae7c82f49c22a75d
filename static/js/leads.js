// Leads list: select-all and the selected counter for bulk actions; the bulk
// fields that do not apply to the chosen action are hidden.
(function () {
  var form = document.getElementById("bulk-form");
  if (!form) return;
  var all = document.getElementById("select-all");
  var counter = document.getElementById("selected-count");
  var action = document.getElementById("bulk-action");
  var sequence = document.getElementById("bulk-sequence");
  var reason = document.getElementById("bulk-reason");
  function boxes() { return form.querySelectorAll('input[name="ids"]'); }
  function refresh() {
    var n = 0;
    boxes().forEach(function (box) { if (box.checked) n += 1; });
    if (counter) counter.textContent = String(n);
  }
  function toggleFields() {
    if (!action) return;
    sequence.hidden = action.value !== "enroll";
    reason.hidden = action.value === "enroll";
  }
  if (all) all.addEventListener("change", function () {
    boxes().forEach(function (box) { box.checked = all.checked; });
    refresh();
  });
  form.addEventListener("change", refresh);
  if (action) action.addEventListener("change", toggleFields);
  toggleFields();
  refresh();
})();
