// Starts Swagger UI on /docs (what FastAPI's page does inline; the app's CSP allows no inline
// script). The OpenAPI URL comes from the page; nothing is fetched from another origin.
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    // The default validator badge calls a public server: off, the docs stay on this origin.
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
  });
});
