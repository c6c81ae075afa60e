/* Render progress driven by the job's real state: queue position, progress and ETA from
   GET /api/renders/<key>, polled with a gentle backoff; never a fake spinner. */
(function () {
  "use strict";

  var Hop = (window.Hop = window.Hop || {});
  var FIRST_DELAY_MS = 400;
  var MAX_DELAY_MS = 800;
  var BACKOFF = 1.25;
  var NETWORK_RETRY_MS = 2000;

  /* Fills the progress block (partials/progress.html) from one API answer. */
  function Display(root) {
    this.track = root.querySelector("[role=progressbar]");
    this.bar = root.querySelector(".progress-bar");
    this.status = root.querySelector(".progress-status");
    this.eta = root.querySelector(".progress-eta");
    this.shown = 0;
  }

  Display.prototype.show = function (state) {
    var percent = 0;
    var text;
    if (state.status === "done" ||
        (state.renditions && state.renditions.gif === true && state.renditions.poster === true)) {
      percent = 100;
      text = Hop.t("progress.done");
    } else if (state.status === "queued") {
      var ahead = Math.max(0, state.position || 0);
      text = ahead > 0 ? Hop.tn("progress.ahead", ahead) : Hop.t("progress.next");
    } else {
      percent = Math.round(Math.max(0, Math.min(1, state.progress || 0)) * 100);
      text = Hop.t("progress.rendering", { percent: percent });
    }
    // The bar never moves backwards (a takeover may restart a render's count).
    this.shown = Math.max(this.shown, percent);
    this.bar.style.width = this.shown + "%";
    this.track.setAttribute("aria-valuenow", String(this.shown));
    this.track.setAttribute("aria-valuetext", text);
    this.status.textContent = text;
    var eta = state.eta_seconds;
    if (state.status !== "done" && typeof eta === "number" && isFinite(eta)) {
      var seconds = Math.max(1, Math.ceil(eta));
      this.eta.textContent = Hop.tn("progress.eta", seconds);
    } else {
      this.eta.textContent = "";
    }
  };

  Display.prototype.message = function (text) {
    this.status.textContent = text;
  };

  /* Polls until the render is done or its GIF is stored; calls onDone(body) then, or onError(message) for an answer
     that will not change by asking again (a refused caption, a failed or unknown render).
     Busy answers (429/503) wait as long as Retry-After says, showing onBusy(seconds). */
  Hop.trackRender = function (options) {
    var display = new Display(options.root);
    var delay = FIRST_DELAY_MS;
    var stopped = false;

    function schedule(ms) {
      if (!stopped) {
        window.setTimeout(poll, ms);
      }
    }

    function handle(answer) {
      var body = answer.body || {};
      // The GIF lands before the MP4 (status still "rendering"), the poster a few milliseconds
      // after it: the result page can offer the GIF and show the poster now, and brings the
      // video in when it lands (the GIF itself is never fetched just to be looked at).
      var gifReady = answer.status === 202 && body.renditions &&
        body.renditions.gif === true && body.renditions.poster === true;
      if ((answer.status === 200 && body.status === "done") || gifReady) {
        display.show(body);
        stopped = true;
        options.onDone(body);
        return;
      }
      if (answer.status === 200 || answer.status === 202) {
        if (options.onBusy) {
          options.onBusy(null);
        }
        display.show(body);
        delay = Math.min(MAX_DELAY_MS, delay * BACKOFF);
        schedule(delay);
        return;
      }
      if (answer.status === 429 || answer.status === 503) {
        var wait = answer.retryAfter !== null ? answer.retryAfter : 5;
        if (options.onBusy) {
          options.onBusy(wait, Hop.errorMessage(body, ""));
        }
        schedule(Math.max(1, wait) * 1000);
        return;
      }
      stopped = true;
      var fallback = Hop.t(answer.status === 404 ? "progress.lost" : "progress.failed");
      options.onError(Hop.errorMessage(body, fallback), answer.status);
    }

    function poll() {
      Hop.fetchJSON(options.statusUrl)
        .then(handle)
        .catch(function () {
          display.message(Hop.t("progress.offline"));
          schedule(NETWORK_RETRY_MS);
        });
    }

    if (options.initial) {
      handle({ status: 202, body: options.initial, retryAfter: null });
    } else {
      poll();
    }
    return {
      stop: function () {
        stopped = true;
      },
    };
  };

  /* The result page while a render is still running: track it, then reload to show the GIF
     (as soon as it is stored; the page brings the MP4 in when it lands). */
  var pending = document.getElementById("result-pending");
  if (pending) {
    var retry = document.getElementById("retry-message");
    Hop.trackRender({
      root: pending,
      statusUrl: pending.dataset.statusUrl,
      onDone: function () {
        window.location.replace(pending.dataset.resultUrl);
      },
      onBusy: function (seconds, message) {
        retry.hidden = seconds === null;
        if (seconds !== null) {
          retry.textContent = (message || Hop.t("progress.busy")) + " " +
            Hop.t("progress.check_in", { seconds: seconds });
        }
      },
      onError: function (message) {
        retry.hidden = false;
        retry.textContent = message;
      },
    });
  }
})();
