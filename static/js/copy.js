// Copy a <pre> block's text to the clipboard (a form's snippet, a webhook secret). Delegated, so a snippet that htmx
// swapped in (the editor's live preview) copies too.
(function () {
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-target]");
    if (!button) return;
    var text = document.getElementById(button.getAttribute("data-target")).textContent;
    var label = button.getAttribute("data-label") || button.textContent;
    button.setAttribute("data-label", label);
    navigator.clipboard.writeText(text).then(function () {
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    });
  });
})();
