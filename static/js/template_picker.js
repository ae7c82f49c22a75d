// Sequence editor: "Start from template" on an email step fills its subject and body from a
// saved email template (the page carries them as JSON in #email-templates-data). Asks before
// replacing text the marketer already wrote.
(function () {
  var data = document.getElementById("email-templates-data");
  if (!data) return;
  var templates = {};
  JSON.parse(data.textContent).forEach(function (t) { templates[String(t.id)] = t; });
  document.addEventListener("change", function (event) {
    if (!event.target.classList.contains("template-pick")) return;
    var picked = templates[event.target.value];
    var row = event.target.closest(".step-row");
    if (!picked || !row) return;
    var subject = row.querySelector('[name="step_subject"]');
    var body = row.querySelector('[name="step_body"]');
    var written = body.value.trim() && body.value.trim() !== "<p>…</p>";
    if (written && body.value !== picked.body && !window.confirm("Replace this step's subject and body with “" + picked.name + "”?")) {
      event.target.value = "";
      return;
    }
    subject.value = picked.subject;
    body.value = picked.body;
  });
})();
