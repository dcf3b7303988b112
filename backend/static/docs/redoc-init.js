// Starts ReDoc on /redoc (what FastAPI's page does inline; the app's CSP allows no inline script).
window.addEventListener("load", function () {
  var root = document.getElementById("redoc");
  Redoc.init(root.getAttribute("data-openapi-url"), {}, root);
});
