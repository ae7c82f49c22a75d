// Rule editor: show the profile or the interaction inputs for the chosen source;
// ask before deleting a rule.
(function () {
  var source = document.getElementById("id_source");
  function sync() {
    document.querySelectorAll("[data-show]").forEach(function (el) {
      el.hidden = source && el.getAttribute("data-show") !== source.value;
    });
  }
  if (source) { source.addEventListener("change", sync); sync(); }
  document.querySelectorAll("[data-confirm]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(button.getAttribute("data-confirm"))) event.preventDefault();
    });
  });
})();
