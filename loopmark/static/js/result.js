/* Result and share pages: the GIF loaded lazily by script (poster first; the loop unless the
   visitor prefers reduced motion; a clear message when it fails), copy-link, and the Web Share
   API (sharing the GIF file itself where the browser can). */
(function () {
  "use strict";

  var Hop = (window.Hop = window.Hop || {});

  // -- the GIF -------------------------------------------------------------------------------

  function setupMedia(figure) {
    var img = figure.querySelector(".media-img");
    var status = figure.querySelector(".media-status");
    var play = figure.querySelector(".media-play");
    var retry = figure.querySelector(".media-retry");
    var gif = figure.dataset.gif;
    var showingGif = false;

    function failed() {
      figure.classList.add("is-failed");
      figure.dataset.state = "failed";
      status.textContent = "We couldn't load this GIF. It may have been removed, or the " +
        "connection dropped.";
      play.hidden = true;
      retry.hidden = false;
    }

    function load() {
      figure.classList.remove("is-failed");
      figure.dataset.state = "loading";
      status.textContent = "Loading the GIF…";
      play.hidden = true;
      retry.hidden = true;
      var probe = new Image();
      probe.onload = function () {
        showingGif = true;
        img.src = gif;
        figure.dataset.state = "gif";
        status.textContent = "";
        document.dispatchEvent(new CustomEvent("hop:gif-loaded"));
      };
      probe.onerror = failed;
      probe.src = gif;
    }

    // A poster that fails (an unknown key on the share page) is a failure as well.
    img.addEventListener("error", function () {
      if (!showingGif) {
        figure.classList.add("no-poster");
        failed();
      }
    });
    play.addEventListener("click", load);
    retry.addEventListener("click", load);

    if (img.complete && img.naturalWidth === 0 && img.getAttribute("src")) {
      figure.classList.add("no-poster");
      failed();
      return;
    }
    if (Hop.reducedMotion && Hop.reducedMotion()) {
      // Reduced motion: the still poster stays until the visitor asks for the animation.
      figure.dataset.state = "poster";
      play.hidden = false;
      return;
    }
    load();
  }

  document.querySelectorAll("figure.media[data-gif]").forEach(setupMedia);

  // -- sharing -------------------------------------------------------------------------------

  function setupShare(box) {
    var url = box.dataset.shareUrl;
    var text = box.dataset.shareText || "";
    var feedback = box.querySelector(".share-feedback");
    var copy = box.querySelector(".share-copy");
    var native = box.querySelector(".share-native");
    var field = box.querySelector(".share-url");
    var file = null;

    function say(message) {
      feedback.textContent = message;
    }

    copy.addEventListener("click", function () {
      var done = function () {
        say("Link copied!");
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(url).then(done, function () {
          fallbackCopy();
        });
      } else {
        fallbackCopy();
      }
      function fallbackCopy() {
        field.focus();
        field.select();
        var ok = false;
        try {
          ok = document.execCommand("copy");
        } catch (err) {
          ok = false;
        }
        say(ok ? "Link copied!" : "Select the link below and copy it.");
      }
    });

    if (!navigator.share) {
      return;
    }
    native.hidden = false;
    // The GIF file is read ahead of the tap (a share must start inside the tap's user
    // activation): once the page has shown it (so it comes from the HTTP cache), or when the
    // visitor heads for the button.
    var preparing = false;
    function prepareFile() {
      if (preparing || !box.dataset.shareFile || !navigator.canShare || !window.File) {
        return;
      }
      preparing = true;
      fetch(box.dataset.shareFile)
        .then(function (response) {
          return response.ok ? response.blob() : null;
        })
        .then(function (blob) {
          if (!blob) {
            return;
          }
          var candidate = new File([blob], box.dataset.shareFileName || "loop.gif", {
            type: "image/gif",
          });
          if (navigator.canShare({ files: [candidate] })) {
            file = candidate;
            box.dataset.fileReady = "true";
          }
        })
        .catch(function () {
          preparing = false; /* No file then: the link is shared instead. */
        });
    }
    document.addEventListener("hop:gif-loaded", prepareFile);
    native.addEventListener("pointerenter", prepareFile);
    native.addEventListener("focus", prepareFile);
    native.addEventListener("click", function () {
      var data = file
        ? { files: [file], title: text, text: text + " " + url }
        : { title: text, text: text, url: url };
      navigator.share(data).catch(function (err) {
        if (err && err.name !== "AbortError") {
          say("Sharing didn't work here: try a button below.");
        }
      });
    });
  }

  document.querySelectorAll(".share[data-share-url]").forEach(setupShare);
})();
