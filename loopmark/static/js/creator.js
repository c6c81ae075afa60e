/* The three-step creator on the home page: (1) pick a template, (2) caption it with a live
   preview, a character counter and the server's caption policy, (3) create it with progress
   from the job's real state, then go to the result page. */
(function () {
  "use strict";

  var Hop = window.Hop;
  var root = document.getElementById("create");
  if (!root || !Hop) {
    return;
  }
  var CHECK_DEBOUNCE_MS = 350;
  var BUSY_FALLBACK_S = 5;
  var WARMING_POLL_MS = 3000; // while loops are getting ready, the picker asks again this often

  var el = {
    picker: document.getElementById("picker"),
    stepPick: document.getElementById("step-pick"),
    stepCaption: document.getElementById("step-caption"),
    stepCreate: document.getElementById("step-create"),
    previewVideo: document.getElementById("preview-video"),
    previewCanvas: document.getElementById("preview-canvas"),
    presets: document.getElementById("presets"),
    chips: document.getElementById("preset-chips"),
    field: document.getElementById("caption-field"),
    input: document.getElementById("caption-input"),
    count: document.getElementById("caption-count"),
    fitHint: document.getElementById("caption-fit"),
    error: document.getElementById("caption-error"),
    back: document.getElementById("back-button"),
    create: document.getElementById("create-button"),
    retryMessage: document.getElementById("retry-message"),
    progressStatus: document.getElementById("progress-status"),
    retryButton: document.getElementById("retry-button"),
    stepper: root.querySelectorAll(".stepper-item"),
  };
  var maxGraphemes = parseInt(root.dataset.maxGraphemes, 10) || 80;
  var state = {
    templates: [],
    template: null,
    preview: null,
    caption: "",
    checkTimer: null,
    checkSeq: 0,
    busyTimer: null,
    resubmitTimer: null,
    tracker: null,
    refused: null, // the caption the policy last refused: not drawn, not submittable
  };

  // -- steps ---------------------------------------------------------------------------------

  function showStep(name) {
    el.stepPick.hidden = name !== "pick";
    el.stepCaption.hidden = name !== "caption";
    el.stepCreate.hidden = name !== "create";
    var order = ["pick", "caption", "create"];
    el.stepper.forEach(function (item) {
      var index = order.indexOf(item.dataset.step);
      item.classList.toggle("is-current", item.dataset.step === name);
      item.classList.toggle("is-done", index < order.indexOf(name));
      if (item.dataset.step === name) {
        item.setAttribute("aria-current", "step");
      } else {
        item.removeAttribute("aria-current");
      }
    });
  }

  function focusStep(step) {
    var title = step.querySelector(".step-title");
    if (title) {
      title.setAttribute("tabindex", "-1");
      title.focus({ preventScroll: true });
    }
    root.scrollIntoView({ behavior: Hop.reducedMotion() ? "auto" : "smooth", block: "start" });
  }

  // -- step 1: the template picker -----------------------------------------------------------

  // A template the server is still preparing (just started): shown, not chosen, until ready.
  function warmingCard(template) {
    var label = document.createElement("label");
    label.className = "tpl-card is-warming";
    label.setAttribute("aria-disabled", "true");
    var input = document.createElement("input");
    input.type = "radio";
    input.name = "template";
    input.value = template.id;
    input.disabled = true;
    var media = document.createElement("span");
    media.className = "tpl-media tpl-warming";
    media.textContent = Hop.t("picker.warming");
    var caption = document.createElement("span");
    caption.className = "tpl-label";
    var name = document.createElement("span");
    name.textContent = templateName(template);
    caption.appendChild(name);
    label.appendChild(input);
    label.appendChild(media);
    label.appendChild(caption);
    return label;
  }

  // The page's language's name where the template has one (names_by_language).
  function templateName(template) {
    var byLanguage = template.names_by_language || {};
    return byLanguage[Hop.lang] || template.name;
  }

  function card(template, index) {
    if (template.ready === false) {
      return warmingCard(template);
    }
    var label = document.createElement("label");
    label.className = "tpl-card";
    var input = document.createElement("input");
    input.type = "radio";
    input.name = "template";
    input.value = template.id;
    if (index === 0) {
      input.setAttribute("data-first", "");
    }
    var media = document.createElement("span");
    media.className = "tpl-media";
    var video = document.createElement("video");
    video.className = "js-loop";
    video.muted = true;
    video.loop = true;
    video.playsInline = true;
    video.preload = "none";
    video.setAttribute("aria-hidden", "true");
    video.dataset.src = template.preview_url;
    video.dataset.poster = template.poster_url;
    video.width = template.width;
    video.height = template.height;
    media.appendChild(video);
    var caption = document.createElement("span");
    caption.className = "tpl-label";
    var name = document.createElement("span");
    name.textContent = templateName(template);
    caption.appendChild(name);
    var mode = document.createElement("span");
    mode.className = "tpl-mode";
    mode.textContent = Hop.t(template.caption_mode === "free" ? "picker.free" : "picker.presets");
    caption.appendChild(mode);
    label.appendChild(input);
    label.appendChild(media);
    label.appendChild(caption);
    // A tap or click on a card moves on to the caption; arrow keys only move the choice
    // (radio-group style, so keyboard users can look at every loop), and Enter or Space
    // confirms it.
    var pointer = false;
    label.addEventListener("pointerdown", function () {
      pointer = true;
    });
    input.addEventListener("change", function () {
      if (input.checked && pointer) {
        choose(template);
      }
      pointer = false;
    });
    label.addEventListener("click", function (event) {
      if (pointer && input.checked && event.target !== input) {
        pointer = false;
        choose(template); // the already-chosen card, clicked again
      }
    });
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        input.checked = true;
        choose(template);
      }
    });
    return label;
  }

  function loadTemplates() {
    var status = el.picker.querySelector(".picker-status");
    Hop.fetchJSON(root.dataset.templatesUrl)
      .then(function (answer) {
        if (answer.status !== 200 || !Array.isArray(answer.body)) {
          throw new Error("templates " + answer.status);
        }
        state.templates = answer.body;
        el.picker.textContent = "";
        if (!answer.body.length) {
          el.picker.appendChild(status);
          status.textContent = Hop.t("picker.empty");
          return;
        }
        answer.body.forEach(function (template, index) {
          el.picker.appendChild(card(template, index));
        });
        Hop.lazyLoops(el.picker);
        var warming = answer.body.some(function (template) {
          return template.ready === false;
        });
        if (warming) {
          // Some loops are still being prepared (the server just started): ask again soon.
          window.clearTimeout(state.templatesTimer);
          state.templatesTimer = window.setTimeout(loadTemplates, WARMING_POLL_MS);
        }
      })
      .catch(function () {
        status.textContent = Hop.t("picker.failed");
      });
  }

  // -- step 2: caption -----------------------------------------------------------------------

  function choose(template) {
    state.template = template;
    state.caption = "";
    el.input.value = "";
    clearError();
    el.previewVideo.pause();
    el.previewVideo.removeAttribute("src");
    el.previewVideo.className = "preview-video js-loop";
    el.previewVideo.setAttribute("poster", template.poster_url);
    el.previewVideo.dataset.src = template.preview_url;
    el.previewVideo.dataset.poster = template.poster_url;
    el.previewVideo.width = template.width;
    el.previewVideo.height = template.height;
    el.previewVideo.setAttribute("aria-label", Hop.t("preview.label", { name: templateName(template) }));
    state.preview = new Hop.CaptionPreview(el.previewCanvas, template);
    state.preview.fontReady.then(function () {
      if (state.template === template) {
        redraw();
      }
    });
    buildPresets(template);
    var free = template.caption_mode === "free";
    el.field.hidden = !free;
    el.presets.querySelector("legend").textContent = Hop.t(
      free ? "presets.suggestions" : "presets.pick"
    );
    showStep("caption");
    Hop.playLoop(el.previewVideo);
    updateCount();
    redraw();
    focusStep(el.stepCaption);
  }

  function buildPresets(template) {
    el.chips.textContent = "";
    // The page's language's captions where the template has them (captions_by_language).
    var byLanguage = template.captions_by_language || {};
    var captions = byLanguage[Hop.lang] || template.captions || [];
    el.presets.hidden = captions.length === 0;
    captions.forEach(function (text, index) {
      var label = document.createElement("label");
      label.className = "chip";
      var input = document.createElement("input");
      input.type = "radio";
      input.name = "preset";
      input.value = text;
      input.id = "preset-" + index;
      var span = document.createElement("span");
      span.dir = "auto"; // an Arabic or Hebrew suggestion reads right to left
      span.textContent = text;
      label.appendChild(input);
      label.appendChild(span);
      input.addEventListener("change", function () {
        if (!input.checked) {
          return;
        }
        state.caption = text;
        if (template.caption_mode === "free") {
          el.input.value = text;
        }
        onCaptionChanged();
      });
      el.chips.appendChild(label);
    });
  }

  function onCaptionChanged() {
    clearError();
    updateCount();
    redraw();
    scheduleCheck();
  }

  function updateCount() {
    var length = Hop.graphemes(state.caption).length;
    el.count.textContent = length + " / " + maxGraphemes;
    el.count.classList.toggle("is-over", length > maxGraphemes);
    if (length > maxGraphemes) {
      showError(Hop.t("caption.too_long", { max: maxGraphemes }));
    }
  }

  function redraw() {
    if (!state.preview) {
      return;
    }
    // A caption the policy refused is never drawn over the loop, not even as a preview.
    var shown = state.caption === state.refused ? "" : state.caption;
    var result = state.preview.draw(shown);
    el.fitHint.textContent = result.fit ? "" : Hop.t("caption.too_wide");
  }

  /* A caption error (refused, empty, too long) disables "Create my GIF" until the caption
     changes; a connection error (``retryable``) leaves it enabled to try again. */
  function showError(message, retryable) {
    el.error.textContent = message;
    el.error.hidden = false;
    el.input.setAttribute("aria-invalid", "true");
    el.create.disabled = !retryable;
  }

  function clearError() {
    el.error.hidden = true;
    el.error.textContent = "";
    el.input.removeAttribute("aria-invalid");
    state.refused = null;
    el.create.disabled = false;
  }

  function refuse(caption, message) {
    state.refused = caption;
    showError(message);
    redraw();
  }

  /* The same caption policy as the render, asked of the API while the visitor types. */
  function scheduleCheck() {
    window.clearTimeout(state.checkTimer);
    var caption = state.caption;
    if (!caption.trim()) {
      return;
    }
    state.checkTimer = window.setTimeout(function () {
      var seq = ++state.checkSeq;
      Hop.fetchJSON(root.dataset.checkUrl, {
        method: "POST",
        json: { template: state.template.id, caption: caption },
      })
        .then(function (answer) {
          // Only the latest check speaks, and only about the caption still in the field.
          if (seq !== state.checkSeq || caption !== state.caption) {
            return;
          }
          if (answer.status === 422 || answer.status === 400) {
            refuse(caption, Hop.errorMessage(answer.body, Hop.t("caption.try_another")));
          } else if (answer.status === 200) {
            clearError();
          }
        })
        .catch(function () {
          /* Offline for a moment: the render request checks again anyway. */
        });
    }, CHECK_DEBOUNCE_MS);
  }

  el.input.addEventListener("input", function () {
    state.caption = el.input.value;
    el.chips.querySelectorAll("input").forEach(function (radio) {
      radio.checked = radio.value === state.caption;
    });
    onCaptionChanged();
  });

  el.back.addEventListener("click", function () {
    el.previewVideo.pause();
    showStep("pick");
    var chosen = el.picker.querySelector("input:checked") || el.picker.querySelector("input");
    if (chosen) {
      chosen.focus();
    }
  });

  // -- step 3: create ------------------------------------------------------------------------

  function setCreating(busy) {
    el.create.disabled = busy;
    el.create.setAttribute("aria-busy", busy ? "true" : "false");
    el.create.textContent = Hop.t(busy ? "create.busy" : "create.button");
  }

  function goToResult(body) {
    window.location.assign(body.result_url || "/r/" + body.key);
  }

  function showBusy(seconds, message) {
    window.clearTimeout(state.busyTimer);
    if (seconds === null) {
      el.retryMessage.hidden = true;
      return;
    }
    var left = Math.max(1, seconds);
    el.retryMessage.hidden = false;
    function tick() {
      el.retryMessage.textContent = (message || Hop.t("create.oven_busy")) + " " +
        Hop.t("create.retry_in", { seconds: left });
      left -= 1;
      if (left >= 0) {
        state.busyTimer = window.setTimeout(tick, 1000);
      }
    }
    tick();
  }

  function submit() {
    clearError();
    var caption = state.caption.trim();
    if (!caption) {
      showError(Hop.t(state.template.caption_mode === "free"
        ? "caption.write_or_pick"
        : "caption.pick_one"));
      (state.template.caption_mode === "free" ? el.input : el.chips.querySelector("input")).focus();
      return;
    }
    if (Hop.graphemes(caption).length > maxGraphemes) {
      showError(Hop.t("caption.too_long", { max: maxGraphemes }));
      el.input.focus();
      return;
    }
    setCreating(true);
    el.retryButton.hidden = true;
    Hop.fetchJSON(root.dataset.rendersUrl, {
      method: "POST",
      json: { template: state.template.id, caption: caption },
    })
      .then(function (answer) {
        var body = answer.body || {};
        if (answer.status === 200 && body.status === "done") {
          goToResult(body);
          return;
        }
        if (answer.status === 202) {
          track(body);
          return;
        }
        if (answer.status === 429 || answer.status === 503) {
          // Busy or briefly down: wait as long as Retry-After says, then ask again.
          var wait = answer.retryAfter !== null ? answer.retryAfter : BUSY_FALLBACK_S;
          showStep("create");
          el.progressStatus.textContent = Hop.t("create.waiting");
          showBusy(wait, Hop.errorMessage(body, ""));
          window.clearTimeout(state.resubmitTimer);
          state.resubmitTimer = window.setTimeout(submit, 1000 * Math.max(1, wait));
          return;
        }
        setCreating(false);
        showStep("caption");
        var message = Hop.errorMessage(body, Hop.t("create.failed"));
        if (answer.status === 422 || answer.status === 400) {
          refuse(state.caption, message);
        } else {
          showError(message, true);
        }
        el.input.focus();
      })
      .catch(function () {
        setCreating(false);
        showError(Hop.t("create.offline"), true);
      });
  }

  function track(initial) {
    showStep("create");
    focusStep(el.stepCreate);
    state.tracker = Hop.trackRender({
      root: el.stepCreate,
      statusUrl: root.dataset.rendersUrl + "/" + encodeURIComponent(initial.key),
      initial: initial,
      onDone: function (body) {
        goToResult({ result_url: body.result_url || initial.result_url, key: initial.key });
      },
      onBusy: showBusy,
      onError: function (message, status) {
        setCreating(false);
        if (status === 422 || status === 400) {
          // A refused caption (or a caption that turned out not to fit): back to step 2.
          showStep("caption");
          refuse(state.caption, message);
          el.input.focus();
          return;
        }
        el.retryMessage.hidden = false;
        el.retryMessage.textContent = message;
        el.retryButton.hidden = false;
      },
    });
  }

  el.stepCaption.addEventListener("submit", function (event) {
    event.preventDefault();
    submit();
  });

  el.retryButton.addEventListener("click", function () {
    window.clearTimeout(state.resubmitTimer);
    el.retryButton.hidden = true;
    el.retryMessage.hidden = true;
    showStep("caption");
    setCreating(false);
  });

  // Back from the result page (back/forward cache): the caption step again, ready to go.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted && state.template) {
      if (state.tracker) {
        state.tracker.stop();
      }
      window.clearTimeout(state.resubmitTimer);
      setCreating(false);
      showStep("caption");
    }
  });

  loadTemplates();
})();
