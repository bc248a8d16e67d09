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

  // -- the keyboard ------------------------------------------------------------
  // Enter sends, Escape stops the answer being written, Ctrl+Shift+O (⌘⇧O on a Mac)
  // starts a new chat, ArrowUp in an empty composer edits the last message. Each
  // shortcut only does what a button or link on the page does, and says so in the
  // page's live region, for screen readers.

  var ANNOUNCE_KEY = "hxchat-announce"; // said once the next page has loaded

  function announce(text) {
    var region = $("#announcer");
    if (!region) return;
    region.textContent = "";
    // A change a moment later: the region is read out even when the text repeats.
    setTimeout(function () { region.textContent = text; }, 50);
  }

  function newChat() {
    var link = $("a.new-chat");
    try { sessionStorage.setItem(ANNOUNCE_KEY, "New chat"); } catch (e) { /* storage off */ }
    window.location.assign(link ? link.href : "/");
  }

  function editLastMessage() {
    var questions = document.querySelectorAll("#transcript article[data-role=user]");
    var last = questions[questions.length - 1];
    var edit = last && last.querySelector("button.edit");
    if (!edit) return false; // none yet, or already being edited
    edit.click(); // htmx swaps in the form; its field has autofocus
    announce("Editing your last message");
    return true;
  }

  document.addEventListener("keydown", function (event) {
    if (event.isComposing || event.keyCode === 229) return;
    var t = textarea();
    var modified = event.ctrlKey || event.metaKey || event.altKey;
    if ((event.ctrlKey || event.metaKey) && event.shiftKey && !event.altKey && event.code === "KeyO") {
      event.preventDefault();
      newChat();
    } else if (event.key === "Escape") {
      var stop = $("#stop-slot button");
      if (stop) {
        event.preventDefault();
        stop.click();
        announce("Answer stopped");
      }
    } else if (event.target !== t) {
      return;
    } else if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      composer().requestSubmit();
    } else if (event.key === "ArrowUp" && !modified && !event.shiftKey && t.value === "") {
      if (editLastMessage()) event.preventDefault();
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
      copyText(copy, code ? code.innerText : "");
      return;
    }
    // An answer's Markdown (kept in a <template>) or a share link (in its field).
    var copySource = target.closest("button.copy-answer, button.copy-link");
    if (copySource) {
      var source = document.getElementById(copySource.getAttribute("data-source") || "");
      var text = "";
      if (source instanceof HTMLTemplateElement) text = source.content.textContent;
      else if (source instanceof HTMLInputElement) text = source.value;
      copyText(copySource, text);
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
    showProgress(null);
    if (event.detail.successful) {
      textarea().value = "";
      clearFiles();
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

  function copyText(button, text) {
    var label = button.textContent;
    navigator.clipboard.writeText(text).then(function () {
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    }, function () { button.textContent = "Copy failed"; });
  }

  // -- attachments (#11): chips with Remove, drop and paste, upload progress ------
  // The file input is the one truth: chips show its files, Remove and drop and
  // paste rebuild its FileList, and the form posts it as it would without script.

  var BIG_UPLOAD = 1024 * 1024; // show a progress bar for bodies larger than this

  function fileInput() { return $("#attach"); }
  function chips() { return $("#attached"); }

  function setFiles(list) {
    var input = fileInput();
    if (!input || typeof DataTransfer === "undefined") return;
    var transfer = new DataTransfer();
    for (var i = 0; i < list.length; i++) transfer.items.add(list[i]);
    input.files = transfer.files;
    renderChips();
  }

  function addFiles(added) {
    var input = fileInput();
    if (!input || !added || !added.length) return;
    setFiles(Array.prototype.slice.call(input.files).concat(Array.prototype.slice.call(added)));
  }

  function renderChips() {
    var list = chips(), input = fileInput();
    if (!list || !input) return;
    var old = list.querySelectorAll("li[data-chosen]");
    for (var i = 0; i < old.length; i++) old[i].remove();
    for (var j = 0; j < input.files.length; j++) {
      var item = document.createElement("li");
      item.className = "chip";
      item.setAttribute("data-chosen", String(j));
      var name = document.createElement("span");
      name.id = "chosen-" + j;
      name.textContent = input.files[j].name;
      // Named `Remove`, like the list's Rename and Pin; the file's name describes it.
      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "remove";
      remove.textContent = "Remove";
      remove.setAttribute("aria-describedby", name.id);
      item.appendChild(name);
      item.appendChild(remove);
      list.appendChild(item);
    }
  }

  function clearFiles() {
    var input = fileInput(), list = chips();
    if (input) input.value = "";
    if (list) list.textContent = "";
  }

  function showProgress(fraction) {
    var bar = $("#upload-progress");
    if (fraction === null) { if (bar) bar.remove(); return; }
    if (!bar) {
      bar = document.createElement("progress");
      bar.id = "upload-progress";
      bar.max = 1;
      bar.setAttribute("aria-label", "Uploading files");
      chips().appendChild(bar);
    }
    bar.value = fraction;
  }

  document.addEventListener("change", function (event) {
    if (event.target === fileInput()) renderChips();
  });

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) return;
    var remove = target.closest("#attached li[data-chosen] button.remove");
    if (!remove) return;
    var index = Number(remove.parentElement.getAttribute("data-chosen"));
    var kept = Array.prototype.slice.call(fileInput().files);
    kept.splice(index, 1);
    setFiles(kept);
    textarea().focus();
  });

  document.addEventListener("dragover", function (event) {
    if (event.target instanceof Element && event.target.closest("#composer")) event.preventDefault();
  });

  document.addEventListener("drop", function (event) {
    if (!(event.target instanceof Element) || !event.target.closest("#composer")) return;
    if (!event.dataTransfer || !event.dataTransfer.files.length) return;
    event.preventDefault();
    addFiles(event.dataTransfer.files);
  });

  document.addEventListener("paste", function (event) {
    if (event.target !== textarea() || !event.clipboardData) return;
    if (!event.clipboardData.files.length) return;
    event.preventDefault(); // a pasted screenshot becomes a file, not its name as text
    addFiles(event.clipboardData.files);
  });

  document.addEventListener("htmx:xhr:progress", function (event) {
    if (event.detail.elt !== composer() || !event.detail.lengthComputable) return;
    if (event.detail.total < BIG_UPLOAD) return;
    showProgress(event.detail.loaded / event.detail.total);
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
    // Copy buttons need this script (the clipboard): hidden until it runs.
    var copies = (root || document).querySelectorAll("button.copy-answer[hidden], button.copy-link[hidden]");
    for (var j = 0; j < copies.length; j++) copies[j].hidden = false;
  }

  // New content outside the transcript (the Share panel): its Copy link button.
  document.addEventListener("htmx:load", function (event) {
    if (event.detail && event.detail.elt instanceof Element) decorate(event.detail.elt);
  });

  function observe() {
    decorate(document); // the Share panel, and a shared page's code blocks
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

  function announcePending() {
    var text = null;
    try {
      text = sessionStorage.getItem(ANNOUNCE_KEY);
      sessionStorage.removeItem(ANNOUNCE_KEY);
    } catch (e) { /* storage off */ }
    if (text) announce(text);
  }

  function start() { observe(); autosize(); announcePending(); }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
