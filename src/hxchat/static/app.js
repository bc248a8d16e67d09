// hxchat's one first-party script: small behaviours htmx does not cover.
// No inline handlers, no eval: the page runs under a strict Content-Security-Policy.
(function () {
  "use strict";

  var STICK_PX = 80; // closer than this to the bottom counts as "at the bottom"

  function $(selector) { return document.querySelector(selector); }

  function transcript() { return $("#transcript"); }
  function composer() { return $("#composer"); }
  function textarea() { return $("#message"); }

  // -- the composer ------------------------------------------------------------

  function autosize() {
    var t = textarea();
    if (!t) return;
    t.style.height = "auto";
    t.style.height = Math.min(t.scrollHeight, 240) + "px";
  }

  function clearError() {
    var e = $("#composer-error");
    if (e) e.textContent = "";
  }

  document.addEventListener("keydown", function (event) {
    var t = textarea();
    if (event.target !== t) return;
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      composer().requestSubmit();
    } else if (event.key === "Escape") {
      var stop = $("#stop-slot button");
      if (stop) { event.preventDefault(); stop.click(); }
    }
  });

  document.addEventListener("input", function (event) {
    if (event.target === textarea()) autosize();
  });

  // Escape clears the library's search field and brings the conversations back (#12),
  // in every browser: its `search` event is what htmx listens for besides typing.
  document.addEventListener("keydown", function (event) {
    var field = event.target;
    if (event.key !== "Escape" || !field || field.id !== "library-search" || !field.value) return;
    event.preventDefault();
    field.value = "";
    field.dispatchEvent(new Event("search"));
  });

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) return;
    var example = target.closest("[data-prompt]");
    if (example) {
      var t = textarea();
      t.value = example.getAttribute("data-prompt");
      autosize();
      t.focus();
      return;
    }
    var copy = target.closest("button.copy");
    if (copy) {
      var code = copy.closest(".codeblock").querySelector("pre");
      navigator.clipboard.writeText(code ? code.innerText : "").then(function () {
        copy.textContent = "Copied";
        setTimeout(function () { copy.textContent = "Copy"; }, 1500);
      }, function () { copy.textContent = "Copy failed"; });
      return;
    }
    var menu = target.closest("button.menu");
    if (menu) {
      var open = document.body.classList.toggle("nav-open");
      menu.setAttribute("aria-expanded", open ? "true" : "false");
      return;
    }
    if (target.closest("#jump")) { scrollToBottom(true); }
  });

  document.addEventListener("htmx:beforeRequest", function (event) {
    if (event.detail.elt === composer()) clearError();
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail.elt !== composer()) return;
    if (event.detail.successful) {
      textarea().value = "";
      autosize();
      stick = true;
      scrollToBottom(false);
    }
    textarea().focus();
  });

  document.addEventListener("htmx:sendError", function () {
    var e = $("#composer-error");
    if (e) e.textContent = "The server could not be reached. Your message is still here; try again.";
  });

  // -- following the answer ------------------------------------------------------

  var stick = true;

  function distanceFromBottom(el) { return el.scrollHeight - el.scrollTop - el.clientHeight; }

  function scrollToBottom(smooth) {
    var el = transcript();
    if (!el) return;
    el.scrollTo({ top: el.scrollHeight, behavior: smooth ? "smooth" : "auto" });
    stick = true;
    updateJump();
  }

  function updateJump() {
    var jump = $("#jump");
    if (jump) jump.hidden = stick;
  }

  function decorate(root) {
    var blocks = (root || document).querySelectorAll(".codeblock:not([data-copy-ready])");
    for (var i = 0; i < blocks.length; i++) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "copy";
      button.textContent = "Copy";
      blocks[i].setAttribute("data-copy-ready", "");
      blocks[i].insertBefore(button, blocks[i].firstChild);
    }
  }

  function observe() {
    var el = transcript();
    if (!el) return;
    el.addEventListener("scroll", function () {
      stick = distanceFromBottom(el) < STICK_PX;
      updateJump();
    }, { passive: true });
    new MutationObserver(function () {
      decorate(el);
      if (stick) el.scrollTop = el.scrollHeight;
      updateJump();
    }).observe(el, { childList: true, subtree: true, characterData: true });
    decorate(el);
    el.scrollTop = el.scrollHeight;
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { observe(); autosize(); });
  } else {
    observe();
    autosize();
  }
})();
