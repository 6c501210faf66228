/* alliance: the little behaviour pages need beyond htmx. Every page works without it.
   Kept in a file (not inline) because the Content-Security-Policy allows only this site's scripts. */
(function () {
  "use strict";

  // A visual-analogue item: a slider beside the number field; the number field is what is sent,
  // so an untouched slider never answers for the participant.
  function linkSliders(root) {
    root.querySelectorAll("input[type=range][data-for]").forEach(function (slider) {
      var field = document.getElementById(slider.dataset.for);
      if (!field) { return; }
      // Until answered, the slider's thumb is dimmed: its middle position is not an answer.
      var show = function () {
        slider.classList.toggle("unset", field.value === "");
        if (field.value !== "") { slider.value = field.value; }
      };
      slider.hidden = false;
      show();
      slider.addEventListener("input", function () {
        field.value = slider.value;
        slider.classList.remove("unset");
      });
      slider.addEventListener("change", function () {
        field.value = slider.value;
        field.dispatchEvent(new Event("change", { bubbles: true }));
      });
      field.addEventListener("input", show);
    });
  }

  // "Copy" next to a private link.
  function linkCopyButtons(root) {
    root.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        var field = document.getElementById(button.dataset.copy);
        if (!field) { return; }
        field.select();
        var done = function () { button.textContent = "Copied"; };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(field.value).then(done, function () { document.execCommand("copy"); done(); });
        } else {
          document.execCommand("copy");
          done();
        }
      });
    });
  }

  // After a failed submit the page opens on its error summary: focus moves there, so a keyboard
  // or screen-reader user starts at what went wrong (WCAG 3.3.1), not at the top of the page.
  // A link in the summary moves focus to the question itself, not only the view: the first
  // answer of a group, or the field.
  function focusErrorSummary(root) {
    var summary = root.querySelector("[data-error-summary]");
    if (!summary) { return; }
    summary.querySelectorAll("a[href^='#']").forEach(function (link) {
      link.addEventListener("click", function (event) {
        var target = document.getElementById(link.getAttribute("href").slice(1));
        if (!target) { return; }
        var field = target.matches("input, select, textarea") ? target
          : target.querySelector("input:checked, input:not([type=hidden]):not([hidden]), select, textarea");
        if (!field) { return; }
        event.preventDefault();
        var group = target.closest("fieldset") || target;
        group.scrollIntoView({ block: "start" });
        field.focus({ preventScroll: true });
      });
    });
    summary.focus();
  }

  document.addEventListener("DOMContentLoaded", function () {
    linkSliders(document);
    linkCopyButtons(document);
    focusErrorSummary(document);
  });
})();
