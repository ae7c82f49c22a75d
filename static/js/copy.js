// Copy a <pre> block's text to the clipboard (forms snippet). Delegated, so a snippet that htmx
// swapped in (the editor's live preview) copies too.
(function () {
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-target]");
    if (!button) return;
    var text = document.getElementById(button.getAttribute("data-target")).textContent;
    navigator.clipboard.writeText(text).then(function () {
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = "Copy snippet"; }, 1500);
    });
  });
})();
