/* Result and share pages: the loop as a muted MP4 video (poster first; paused on the poster
   with a play button where the visitor prefers reduced motion; a clear message when it fails),
   copy-link, and the Web Share API (sharing the GIF file itself where the browser can). The GIF
   is fetched only for sharing, never to be looked at. */
(function () {
  "use strict";

  var Hop = (window.Hop = window.Hop || {});
  // While the MP4 is being made (the GIF is stored first), how often to ask whether it landed.
  var VIDEO_POLL_FIRST_MS = 300;
  var VIDEO_POLL_MAX_MS = 1000;

  // -- the loop ------------------------------------------------------------------------------

  function setupMedia(figure) {
    var video = figure.querySelector("video.media-video");
    var source = video.querySelector("source");
    var status = figure.querySelector(".media-status");
    var play = figure.querySelector(".media-play");
    var retry = figure.querySelector(".media-retry");

    function state(name) {
      figure.dataset.state = name;
    }

    function failed() {
      video.pause();
      figure.classList.add("is-failed");
      state("failed");
      status.textContent = Hop.t("media.failed");
      play.hidden = true;
      retry.hidden = false;
      // No poster either (an unknown key): show the branded placeholder instead.
      var probe = new Image();
      probe.onerror = function () {
        figure.classList.add("no-poster");
      };
      probe.src = figure.dataset.poster;
    }

    function onPoster() {
      // Still: the poster (or the first frame) until the visitor asks for the loop.
      state("poster");
      status.textContent = "";
      play.hidden = false;
      retry.hidden = true;
    }

    function start() {
      var playing = video.play();
      if (playing && playing.catch) {
        playing.catch(function (err) {
          if (figure.dataset.state !== "failed" && !(err && err.name === "AbortError")) {
            onPoster(); // autoplay refused (data saver, low power): a tap plays it
          }
        });
      }
    }

    video.addEventListener("playing", function () {
      figure.classList.remove("is-failed", "no-poster");
      state("playing");
      status.textContent = "";
      play.hidden = true;
      retry.hidden = true;
    });
    // With <source> children a failed fetch fires "error" on the source, not the video.
    if (source) {
      source.addEventListener("error", failed);
    }
    video.addEventListener("error", failed);
    play.addEventListener("click", start);
    retry.addEventListener("click", function () {
      figure.classList.remove("is-failed", "no-poster");
      state("loading");
      status.textContent = Hop.t("media.loading");
      retry.hidden = true;
      video.load();
      start();
    });

    // Whether the video's sources all failed before this script listened for their errors.
    // NETWORK_NO_SOURCE alone does not say so: the browser sets it first thing when it starts
    // choosing a source, before it tries any (currentSrc still empty), and a script that runs in
    // that moment (a busy phone, a slow parse) would call a loop that is about to play broken.
    function failedAlready() {
      return (
        !!video.error ||
        (video.networkState === HTMLMediaElement.NETWORK_NO_SOURCE && video.currentSrc !== "")
      );
    }

    if (!source && figure.dataset.statusUrl) {
      // The GIF is stored, the MP4 not yet: show the still and bring the video in when it lands.
      waitForVideo();
      return;
    }
    begin(false);

    function waitForVideo() {
      var delay = VIDEO_POLL_FIRST_MS;
      function poll() {
        fetch(figure.dataset.statusUrl, { headers: { Accept: "application/json" } })
          .then(function (response) {
            if (response.status === 404 || response.status === 410) {
              return null;
            }
            return response.json().then(function (body) {
              return body || {};
            });
          })
          .then(function (body) {
            if (body === null) {
              failed();
              return;
            }
            var stored = body.renditions || {};
            if (stored.poster && body.poster_url && figure.dataset.poster !== body.poster_url) {
              figure.dataset.poster = body.poster_url;
              video.poster = body.poster_url;
            }
            if (stored.mp4 && body.mp4_url) {
              addSource(body.mp4_url);
              return;
            }
            delay = Math.min(VIDEO_POLL_MAX_MS, delay * 1.5);
            window.setTimeout(poll, delay);
          })
          .catch(function () {
            window.setTimeout(poll, VIDEO_POLL_MAX_MS);
          });
      }
      window.setTimeout(poll, delay);
    }

    function addSource(url) {
      source = document.createElement("source");
      source.type = "video/mp4";
      source.src = url;
      source.addEventListener("error", failed);
      video.appendChild(source);
      delete figure.dataset.statusUrl;
      status.textContent = "";
      document.querySelectorAll("a.download-mp4[hidden]").forEach(function (link) {
        link.hidden = false;
      });
      video.load();
      begin(true);
    }

    // ``justAdded``: the source was added just now, so "no source" only means it is being chosen.
    function begin(justAdded) {
      if (!justAdded && failedAlready()) {
        failed(); // failed before this script ran
        return;
      }
      if (Hop.reducedMotion && Hop.reducedMotion()) {
        video.removeAttribute("autoplay");
        video.autoplay = false;
        video.pause();
        if (video.currentTime > 0) {
          video.currentTime = 0;
        }
        onPoster();
        return;
      }
      if (video.paused) {
        state("loading");
        start();
      } else {
        state("playing");
      }
    }
  }

  Hop.setupMedia = setupMedia; // for a figure added later (and the browser tests)
  document.querySelectorAll("figure.media").forEach(setupMedia);

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
        say(Hop.t("share.copied"));
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
        say(Hop.t(ok ? "share.copied" : "share.copy_manually"));
      }
    });

    if (!navigator.share) {
      return;
    }
    native.hidden = false;
    // The GIF file is read ahead of the tap (a share must start inside the tap's user
    // activation) when the visitor heads for the button: never just because the page shows it.
    var preparing = null; // the file's fetch, once started
    var FILE_WAIT_MS = 2500; // within the tap's user activation (about 5 s in Chromium)
    function prepareFile() {
      if (preparing || !box.dataset.shareFile || !navigator.canShare || !window.File) {
        return preparing;
      }
      preparing = fetch(box.dataset.shareFile)
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
          preparing = null; /* No file then: the link is shared instead. */
        });
      return preparing;
    }

    function share() {
      var data = file
        ? { files: [file], title: text, text: text + " " + url }
        : { title: text, text: text, url: url };
      navigator.share(data).catch(function (err) {
        if (err && err.name !== "AbortError") {
          say(Hop.t("share.failed"));
        }
      });
    }

    native.addEventListener("pointerdown", prepareFile);
    native.addEventListener("pointerenter", prepareFile);
    native.addEventListener("focus", prepareFile);
    native.addEventListener("click", function () {
      var pending = file ? null : prepareFile();
      if (!pending) {
        share();
        return;
      }
      // A tap on a phone starts the fetch just before the click: wait briefly for the file,
      // then share the link if it is not there yet.
      var waited = new Promise(function (resolve) {
        window.setTimeout(resolve, FILE_WAIT_MS);
      });
      Promise.race([pending, waited]).then(share);
    });
  }

  document.querySelectorAll(".share[data-share-url]").forEach(setupShare);
})();
