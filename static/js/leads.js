// Leads list: select-all and the selected counter for bulk actions; the bulk
// fields and button that do not apply to the chosen action are hidden and disabled.
// "Enrol in sequence" submits with the Enrol button (it posts to /sequences/enroll/),
// the other actions with Apply (/leads/bulk/); a tag action shows the tag field instead of the
// reason, the list picker shows for the list actions and "all leads of the segment" for the
// actions that can take a whole segment. Without this script all are shown.
(function () {
  var form = document.getElementById("bulk-form");
  if (!form) return;
  var all = document.getElementById("select-all");
  var counter = document.getElementById("selected-count");
  var action = document.getElementById("bulk-action");
  var sequence = document.getElementById("bulk-sequence");
  var enroll = document.getElementById("bulk-enroll");
  var reason = document.getElementById("bulk-reason");
  var apply = document.getElementById("bulk-apply");
  var tag = document.getElementById("bulk-tag");
  var list = document.getElementById("bulk-list");
  var scope = document.getElementById("bulk-scope-label");
  function boxes() { return form.querySelectorAll('input[name="ids"]'); }
  function refresh() {
    var n = 0;
    boxes().forEach(function (box) { if (box.checked) n += 1; });
    if (counter) counter.textContent = String(n);
  }
  function show(element, on) {
    if (!element) return;
    element.hidden = !on;
    if (element.tagName === "BUTTON") element.disabled = !on;
  }
  function toggleFields() {
    if (!action) return;
    var enrolling = action.value === "enroll";
    var tagging = action.value === "add_tag" || action.value === "remove_tag";
    show(sequence, enrolling);
    show(enroll, enrolling);
    var listAction = action.value === "add_to_list" || action.value === "remove_from_list";
    show(reason, !enrolling && !tagging && !listAction);
    show(tag, tagging);
    show(list, listAction);
    show(scope, !enrolling);
    show(apply, !enrolling);
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
