/* One click, one submission: a POST form's submit buttons are disabled once it is sent, so a
   double click cannot send it twice (the server also refuses a second create: the form's
   one-time token, core/submissions.py). The clicked button's name and value still go with
   the form ("Save and next missing form"). Buttons come back when the page is shown again
   from the browser's history, or after 10 s if no new page came (a file download). */
(function () {
  "use strict";
  function release(form) {
    delete form.dataset.submitting;
    form.querySelectorAll("[data-once-disabled]").forEach(function (button) {
      button.disabled = false;
      button.removeAttribute("data-once-disabled");
    });
    form.querySelectorAll("input[data-once-submitter]").forEach(function (input) {
      input.remove();
    });
  }
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || form.method.toLowerCase() !== "post") return;
    if (form.dataset.submitting) {
      event.preventDefault();
      return;
    }
    form.dataset.submitting = "1";
    var submitter = event.submitter;
    if (submitter && submitter.name) {
      var carry = document.createElement("input");
      carry.type = "hidden";
      carry.name = submitter.name;
      carry.value = submitter.value;
      carry.setAttribute("data-once-submitter", "");
      form.appendChild(carry);
    }
    form.querySelectorAll("button[type=submit], button:not([type]), input[type=submit]").forEach(
      function (button) {
        if (!button.disabled) {
          button.disabled = true;
          button.setAttribute("data-once-disabled", "");
        }
      }
    );
    setTimeout(function () { release(form); }, 10000);
  });
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[data-submitting]").forEach(release);
  });
})();
