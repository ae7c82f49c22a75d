// Copy a <pre> block's text to the clipboard (forms snippet).
(function () {
  document.querySelectorAll("[data-target]").forEach(function (button) {
    button.addEventListener("click", function () {
      var text = document.getElementById(button.getAttribute("data-target")).textContent;
      navigator.clipboard.writeText(text).then(function () {
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = "Copy snippet"; }, 1500);
      });
    });
  });
})();
