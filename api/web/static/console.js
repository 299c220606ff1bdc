// Progressive enhancement only: every page works without this file.
// Asks before the buttons that cannot be undone (complete, deploy, close).
document.addEventListener("submit", function (event) {
  var button = event.submitter;
  if (button && (button.id === "deploy") && !window.confirm(button.textContent + "?")) {
    event.preventDefault();
  }
});
