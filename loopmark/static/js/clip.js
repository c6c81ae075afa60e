/* "Use your own clip" on the home page (issue 13): pick a video, watch it, choose a start and a
   length, add an optional caption; then upload it with real progress (POST /api/uploads, then
   the form to its upload.url), render it (POST /api/renders {upload, start, duration, caption})
   and follow the same progress as template renders to the same result page.
   Every word shown comes from the page's strings (Hop.t, web/i18n.py). */
(function () {
  "use strict";

  var Hop = window.Hop;
  var root = document.getElementById("clip");
  if (!root || !Hop || !window.XMLHttpRequest) {
    return;
  }
  var STEP = 0.1;
  var MIN_LENGTH = 0.5;
  var UNKNOWN_DURATION_S = 60; // the start slider's reach when the browser cannot read the clip
  var BUSY_FALLBACK_S = 5;
  // What the API accepts (loopmark/service/uploads.py); anything else is refused before upload.
  var TYPES = ["video/mp4", "video/quicktime", "video/webm", "video/x-matroska", "video/3gpp",
    "video/3gpp2", "video/x-m4v"];

  var maxBytes = parseInt(root.dataset.maxBytes, 10) || 50 * 1024 * 1024;
  var maxSeconds = parseFloat(root.dataset.maxSeconds) || 6;
  var maxGraphemes = parseInt(root.dataset.maxGraphemes, 10) || 80;

  var el = {
    file: document.getElementById("clip-file"),
    fileName: document.getElementById("clip-file-name"),
    fileError: document.getElementById("clip-file-error"),
    form: document.getElementById("clip-form"),
    video: document.getElementById("clip-video"),
    note: document.getElementById("clip-note"),
    start: document.getElementById("clip-start"),
    length: document.getElementById("clip-length"),
    summary: document.getElementById("clip-trim-summary"),
    caption: document.getElementById("clip-caption"),
    count: document.getElementById("clip-caption-count"),
    error: document.getElementById("clip-error"),
    cancel: document.getElementById("clip-cancel"),
    create: document.getElementById("clip-create"),
    progress: document.getElementById("clip-progress"),
    track: document.getElementById("clip-progress-track"),
  };
  el.bar = el.progress.querySelector(".progress-bar");
  el.status = el.progress.querySelector(".progress-status");
  el.eta = el.progress.querySelector(".progress-eta");

  var state = { file: null, url: null, duration: null, busy: false, tracker: null, timer: null };

  function seconds(value) {
    return (Math.round(value * 10) / 10).toFixed(1);
  }

  function showFileError(message) {
    el.fileError.textContent = message;
    el.fileError.hidden = !message;
    if (message) {
      el.file.setAttribute("aria-invalid", "true");
    } else {
      el.file.removeAttribute("aria-invalid");
    }
  }

  function showError(message) {
    el.error.textContent = message;
    el.error.hidden = !message;
  }

  // -- picking a file ------------------------------------------------------------------------

  /* What the browser can already tell (size, type) before a byte is sent; null when fine. */
  function refusal(file) {
    if (file.size === 0) {
      return Hop.t("clip.empty");
    }
    if (file.size > maxBytes) {
      return Hop.t("clip.too_big", { max: Math.floor(maxBytes / (1024 * 1024)) });
    }
    if (file.type && TYPES.indexOf(file.type) < 0) {
      return Hop.t("clip.not_video");
    }
    return null;
  }

  function reset() {
    if (state.tracker) {
      state.tracker.stop();
    }
    window.clearTimeout(state.timer);
    if (state.url) {
      URL.revokeObjectURL(state.url);
    }
    el.video.pause();
    el.video.removeAttribute("src");
    el.video.load();
    state = { file: null, url: null, duration: null, busy: false, tracker: null, timer: null };
    el.form.hidden = true;
    el.progress.hidden = true;
    el.note.hidden = true;
    el.fileName.textContent = "";
    showError("");
    setBusy(false);
  }

  el.file.addEventListener("change", function () {
    var file = el.file.files && el.file.files[0];
    reset();
    showFileError("");
    if (!file) {
      return;
    }
    el.fileName.textContent = file.name;
    var why = refusal(file);
    if (why) {
      showFileError(why);
      return;
    }
    state.file = file;
    state.url = URL.createObjectURL(file);
    el.video.src = state.url;
    setDuration(null);
    el.form.hidden = false;
    if (!Hop.reducedMotion()) {
      var playing = el.video.play();
      if (playing && playing.catch) {
        playing.catch(function () {
          /* Not playable here, or autoplay refused: the scrubber still works. */
        });
      }
    }
  });

  el.video.addEventListener("loadedmetadata", function () {
    if (isFinite(el.video.duration) && el.video.duration > 0) {
      setDuration(el.video.duration);
    }
  });

  el.video.addEventListener("error", function () {
    if (state.file) {
      el.note.textContent = Hop.t("clip.no_preview");
      el.note.hidden = false;
    }
  });

  // Loop the chosen part only, so the visitor sees what the GIF will hold.
  el.video.addEventListener("timeupdate", function () {
    var start = parseFloat(el.start.value);
    var end = start + parseFloat(el.length.value);
    if (state.duration !== null && (el.video.currentTime > end || el.video.currentTime < start - STEP)) {
      el.video.currentTime = start;
    }
  });

  // -- the scrubber --------------------------------------------------------------------------

  function setDuration(duration) {
    state.duration = duration;
    var total = duration === null ? UNKNOWN_DURATION_S : duration;
    var startMax = Math.max(0, total - MIN_LENGTH);
    el.start.max = seconds(startMax);
    if (parseFloat(el.start.value) > startMax) {
      el.start.value = seconds(startMax);
    }
    updateTrim();
  }

  function updateTrim() {
    var start = parseFloat(el.start.value) || 0;
    var room = state.duration === null ? maxSeconds : Math.min(maxSeconds, state.duration - start);
    room = Math.max(MIN_LENGTH, Math.floor(room * 10) / 10);
    el.length.max = seconds(room);
    if (parseFloat(el.length.value) > room) {
      el.length.value = seconds(room);
    }
    var length = parseFloat(el.length.value);
    var values = { start: seconds(start), end: seconds(start + length), length: seconds(length) };
    el.summary.textContent = (state.duration === null ? Hop.t("clip.summary_unknown", values) : Hop.t("clip.summary", values));
    el.start.setAttribute("aria-valuetext", seconds(start) + " s");
    el.length.setAttribute("aria-valuetext", seconds(length) + " s");
  }

  el.start.addEventListener("input", function () {
    updateTrim();
    if (state.duration !== null) {
      el.video.currentTime = parseFloat(el.start.value);
    }
  });
  el.length.addEventListener("input", updateTrim);

  // -- the caption ---------------------------------------------------------------------------

  function captionTooLong() {
    return Hop.graphemes(el.caption.value.trim()).length > maxGraphemes;
  }

  el.caption.addEventListener("input", function () {
    var length = Hop.graphemes(el.caption.value).length;
    el.count.textContent = length + " / " + maxGraphemes;
    el.count.classList.toggle("is-over", length > maxGraphemes);
    el.caption.removeAttribute("aria-invalid");
    showError(length > maxGraphemes ? Hop.t("caption.too_long", { max: maxGraphemes }) : "");
  });

  // -- upload, render, result ----------------------------------------------------------------

  function setBusy(busy) {
    state.busy = busy;
    el.create.disabled = busy;
    el.create.setAttribute("aria-busy", busy ? "true" : "false");
    el.create.textContent = busy ? Hop.t("create.busy") : Hop.t("create.button");
    el.start.disabled = busy;
    el.length.disabled = busy;
    el.caption.disabled = busy;
    el.file.disabled = busy;
  }

  function setProgress(percent, status) {
    el.progress.hidden = false;
    el.bar.style.width = percent + "%";
    el.track.setAttribute("aria-valuenow", String(percent));
    el.track.setAttribute("aria-valuetext", status);
    el.status.textContent = status;
    el.eta.textContent = "";
  }

  function fail(message, field) {
    setBusy(false);
    el.progress.hidden = true;
    if (field === "file") {
      el.form.hidden = true;
      showFileError(message);
      el.file.focus();
      return;
    }
    showError(message);
    if (field === "caption") {
      el.caption.setAttribute("aria-invalid", "true");
      el.caption.focus();
    }
  }

  /* Sends the form to upload.url: every field first, the file last as "file". Resolves to
     {status, body}; the upload's real progress fills the bar meanwhile. */
  function send(upload, token) {
    return new Promise(function (resolve, reject) {
      var form = new FormData();
      var fields = upload.fields || {};
      Object.keys(fields).forEach(function (name) {
        form.append(name, fields[name]);
      });
      form.append("file", state.file);
      var xhr = new XMLHttpRequest();
      xhr.open("POST", upload.url);
      xhr.setRequestHeader("Accept", "application/json");
      if (token && /^\/api\//.test(upload.url)) {
        xhr.setRequestHeader("X-Loopmark-Visitor", token); // never sent to another origin
      }
      xhr.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable) {
          var percent = Math.min(100, Math.round((100 * event.loaded) / event.total));
          setProgress(percent, Hop.t("clip.uploading", { percent: percent }));
        }
      });
      xhr.addEventListener("load", function () {
        var body = null;
        try {
          body = JSON.parse(xhr.responseText || "null");
        } catch (e) {
          /* S3 answers 204 with no body, or XML on a refusal. */
        }
        resolve({ status: xhr.status, body: body });
      });
      xhr.addEventListener("error", reject);
      xhr.addEventListener("abort", reject);
      xhr.send(form);
    });
  }

  function trim(answer) {
    var start = parseFloat(el.start.value) || 0;
    var duration = parseFloat(el.length.value) || maxSeconds;
    var body = answer.body || {};
    if (typeof body.duration === "number" && body.duration > 0) {
      // The server's probe is the truth: keep the trim inside the clip it measured.
      start = Math.min(start, Math.max(0, body.duration - MIN_LENGTH));
      duration = Math.min(duration, body.duration - start);
    }
    if (typeof body.max_seconds === "number") {
      duration = Math.min(duration, body.max_seconds);
    }
    return { start: Math.round(start * 10) / 10, duration: Math.floor(duration * 10) / 10 };
  }

  function render(uploadId, choice) {
    var json = { upload: uploadId, start: choice.start, duration: choice.duration };
    var caption = el.caption.value.trim();
    if (caption) {
      json.caption = caption;
    }
    return Hop.fetchJSON(root.dataset.rendersUrl, { method: "POST", json: json }).then(function (answer) {
      var body = answer.body || {};
      if (answer.status === 200 && body.status === "done") {
        goToResult(body);
      } else if (answer.status === 202) {
        track(body);
      } else if (answer.status === 429 || answer.status === 503) {
        var wait = Math.max(1, answer.retryAfter !== null ? answer.retryAfter : BUSY_FALLBACK_S);
        setProgress(100, Hop.t("create.oven_busy") + " " + Hop.t("create.retry_in", { seconds: wait }));
        state.timer = window.setTimeout(function () {
          render(uploadId, choice).catch(function () {
            fail(Hop.t("create.offline"));
          });
        }, wait * 1000);
      } else {
        var code = body.error && body.error.code ? String(body.error.code) : "";
        fail(Hop.errorMessage(body, Hop.t("create.failed")), /^caption/.test(code) ? "caption" : null);
      }
    });
  }

  function goToResult(body) {
    window.location.assign(body.result_url || "/r/" + body.key);
  }

  function track(initial) {
    el.bar.style.width = "0%";
    state.tracker = Hop.trackRender({
      root: el.progress,
      statusUrl: root.dataset.rendersUrl + "/" + encodeURIComponent(initial.key),
      initial: initial,
      onDone: function (body) {
        goToResult({ result_url: body.result_url || initial.result_url, key: initial.key });
      },
      onBusy: function (wait) {
        if (wait !== null) {
          el.eta.textContent = Hop.t("create.oven_busy") + " " + Hop.t("create.retry_in", { seconds: wait });
        }
      },
      onError: function (message) {
        fail(message);
      },
    });
  }

  function create() {
    showError("");
    showFileError("");
    if (!state.file) {
      el.file.focus();
      return;
    }
    if (captionTooLong()) {
      fail(Hop.t("caption.too_long", { max: maxGraphemes }), "caption");
      return;
    }
    var choice = trim({ body: null });
    setBusy(true);
    setProgress(0, Hop.t("clip.uploading", { percent: 0 }));
    var file = state.file;
    var declared = {
      filename: file.name,
      content_type: file.type || "application/octet-stream",
      size: file.size,
    };
    Hop.fetchJSON(root.dataset.uploadsUrl, { method: "POST", json: declared })
      .then(function (answer) {
        var body = answer.body || {};
        if (answer.status !== 201 || !body.upload) {
          fail(Hop.errorMessage(body, Hop.t("clip.upload_failed")),
            answer.status === 413 || answer.status === 415 ? "file" : null);
          return null;
        }
        return Hop.visitorToken().then(function (token) {
          return send(body.upload, token).then(function (sent) {
            if (sent.status !== 201 && sent.status !== 204) {
              var refused = sent.status === 413 || sent.status === 415 || sent.status === 422;
              fail(Hop.errorMessage(sent.body, Hop.t("clip.upload_failed")), refused ? "file" : null);
              return null;
            }
            setProgress(100, Hop.t("clip.uploaded"));
            choice = trim(sent);
            return render(body.id, choice);
          });
        });
      })
      .catch(function () {
        fail(Hop.t("create.offline"));
      });
  }

  el.form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!state.busy) {
      create();
    }
  });

  el.cancel.addEventListener("click", function () {
    reset();
    el.file.value = "";
    el.file.focus();
  });

  // Back from the result page (back/forward cache): ready to make another.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted && state.file) {
      if (state.tracker) {
        state.tracker.stop();
      }
      window.clearTimeout(state.timer);
      setBusy(false);
      el.progress.hidden = true;
    }
  });

  root.hidden = false;
  updateTrim();
})();
