// Sends the browser on from the worker's `/2fa/complete` page to Auth0, carrying the result.

const form = document.getElementById("continue");

if (form) {
  const button = form.querySelector("button");
  if (button) button.textContent = "Continuing…";
  if (typeof form.requestSubmit === "function") {
    form.requestSubmit();
  } else {
    form.submit();
  }
}
