/* Admin enhancements; every page works without them (plain forms, post/redirect/get).
   - The template editor's live preview: draws the sample caption with the form's current box,
     font, colours and sizes over the template's loop (Hop.CaptionPreview, the creator's own
     layout approximation) and the text box, which can be dragged, resized from its corner, or
     nudged with the arrow keys (Shift: resize); the number fields stay in sync.
   - A template being prepared: its page polls the state and reloads when it is ready or failed.
   - The upload form: sent with XHR to show its progress; refusals are marked on their fields.
   - The gallery: moves are sent with fetch and the list reordered in place.
   Messages come from data-msg-* attributes of the page (translatable there), never from here. */
(function () {
  "use strict";

  function message(element, name) {
    return (element && element.dataset["msg" + name]) || "";
  }

  /* ---- The template editor's preview and its text box ---- */
  function editor() {
    var root = document.querySelector("[data-admin-preview]");
    var form = document.getElementById("template-form");
    if (!root || !form || !window.Hop || !window.Hop.CaptionPreview) {
      return;
    }
    var textCanvas = root.querySelector("canvas.preview-text");
    var boxCanvas = root.querySelector("canvas.preview-box");
    var handle = root.querySelector(".box-handle");
    var sample = document.getElementById("sample");
    var width = parseInt(root.dataset.width, 10);
    var height = parseInt(root.dataset.height, 10);
    var MIN_W = 16;
    var MIN_H = 8;
    var current = null;

    function value(name) {
      var element = form.elements[name];
      return element ? element.value : "";
    }

    function number(name, fallback) {
      var parsed = parseInt(value(name), 10);
      return isNaN(parsed) ? fallback : parsed;
    }

    function selectedFont() {
      var select = form.elements.font;
      var option = select && select.options[select.selectedIndex];
      return option ? { key: option.value, url: option.dataset.url || null } : { key: "", url: null };
    }

    function box() {
      return [number("box_x", 0), number("box_y", 0), number("box_w", width), number("box_h", 0)];
    }

    function drawBox(rect) {
      var ctx = boxCanvas.getContext("2d");
      ctx.clearRect(0, 0, boxCanvas.width, boxCanvas.height);
      ctx.save();
      ctx.lineWidth = 2;
      ctx.setLineDash([6, 4]);
      ctx.strokeStyle = "rgba(255, 255, 255, 0.9)";
      ctx.strokeRect(rect[0] + 1, rect[1] + 1, Math.max(0, rect[2] - 2), Math.max(0, rect[3] - 2));
      ctx.lineDashOffset = 5;
      ctx.strokeStyle = "rgba(0, 0, 0, 0.8)";
      ctx.strokeRect(rect[0] + 1, rect[1] + 1, Math.max(0, rect[2] - 2), Math.max(0, rect[3] - 2));
      ctx.restore();
    }

    function placeHandle(rect) {
      if (!handle) {
        return;
      }
      // CSSOM, not a style attribute: the CSP allows it.
      handle.style.left = (100 * rect[0]) / width + "%";
      handle.style.top = (100 * rect[1]) / height + "%";
      handle.style.width = (100 * rect[2]) / width + "%";
      handle.style.height = (100 * rect[3]) / height + "%";
    }

    function draw() {
      var font = selectedFont();
      var rect = box();
      var template = {
        // One font family per font file: the preview caches faces by template id.
        id: "admin-" + font.key.replace(/[^A-Za-z0-9-]/g, "-"),
        width: width,
        height: height,
        text: {
          box: rect,
          font_url: font.url,
          fill: value("fill") || "#ffffff",
          stroke: value("stroke") || "#000000",
          stroke_width: number("stroke_width", 0),
          align: value("align") || "center",
          max_lines: number("max_lines", 2),
          max_size: number("max_size", 40),
          min_size: number("min_size", 14),
        },
      };
      var preview = new window.Hop.CaptionPreview(textCanvas, template);
      current = preview;
      var result = preview.draw(sample.value);
      root.classList.toggle("overflow", result && result.fit === false);
      drawBox(rect);
      placeHandle(rect);
      preview.fontReady.then(function () {
        if (current === preview) {
          preview.draw(sample.value);
        }
      });
    }

    /* Writes a box into the number fields (kept inside the loop's frame) and redraws. */
    function setBox(x, y, w, h) {
      w = Math.max(MIN_W, Math.min(Math.round(w), width));
      h = Math.max(MIN_H, Math.min(Math.round(h), height));
      x = Math.max(0, Math.min(Math.round(x), width - w));
      y = Math.max(0, Math.min(Math.round(y), height - h));
      var values = { box_x: x, box_y: y, box_w: w, box_h: h };
      Object.keys(values).forEach(function (name) {
        var element = form.elements[name];
        if (element) {
          element.value = values[name];
        }
      });
      draw();
    }

    if (handle && !form.querySelector("fieldset[disabled]")) {
      handle.hidden = false;
      handle.setAttribute("aria-label", message(root, "Box"));
      var drag = null;

      handle.addEventListener("pointerdown", function (event) {
        if (event.button !== 0) {
          return;
        }
        event.preventDefault();
        var rect = root.getBoundingClientRect();
        drag = {
          id: event.pointerId,
          resize: event.target.classList.contains("box-corner"),
          x: event.clientX,
          y: event.clientY,
          scale: width / rect.width,
          start: box(),
        };
        handle.setPointerCapture(event.pointerId);
        handle.classList.add("dragging");
        handle.focus({ preventScroll: true });
      });
      handle.addEventListener("pointermove", function (event) {
        if (!drag || event.pointerId !== drag.id) {
          return;
        }
        var dx = (event.clientX - drag.x) * drag.scale;
        var dy = (event.clientY - drag.y) * drag.scale;
        var s = drag.start;
        if (drag.resize) {
          setBox(s[0], s[1], Math.min(s[2] + dx, width - s[0]), Math.min(s[3] + dy, height - s[1]));
        } else {
          setBox(s[0] + dx, s[1] + dy, s[2], s[3]);
        }
      });
      function stop(event) {
        if (drag && event.pointerId === drag.id) {
          drag = null;
          handle.classList.remove("dragging");
        }
      }
      handle.addEventListener("pointerup", stop);
      handle.addEventListener("pointercancel", stop);
      handle.addEventListener("keydown", function (event) {
        var step = event.altKey ? 10 : 1;
        var moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
        var move = moves[event.key];
        if (!move) {
          return;
        }
        event.preventDefault();
        var b = box();
        if (event.shiftKey) {
          setBox(b[0], b[1], Math.min(b[2] + move[0], width - b[0]), Math.min(b[3] + move[1], height - b[1]));
        } else {
          setBox(b[0] + move[0], b[1] + move[1], b[2], b[3]);
        }
      });
    }

    // Reduced motion: the loop stays on its poster frame.
    var video = root.querySelector("video");
    if (video && window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches) {
      video.removeAttribute("autoplay");
      video.pause();
    }

    form.addEventListener("input", draw);
    form.addEventListener("change", draw);
    sample.addEventListener("input", draw);
    draw();
  }

  /* ---- A template being prepared: poll, then open the editor ---- */
  function preparation() {
    var root = document.querySelector("[data-template-state]");
    if (!root || root.dataset.templateState !== "preparing" || !window.fetch) {
      return;
    }
    var text = root.querySelector(".state-text");
    var delay = 700;
    function poll() {
      fetch(root.dataset.url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) {
            throw new Error(String(response.status));
          }
          return response.json();
        })
        .then(function (state) {
          root.dataset.templateState = state.state;
          if (state.state === "ready" || state.state === "failed") {
            // The server's page says what happened (the editor, or the reason it failed).
            text.textContent = message(root, state.state === "ready" ? "Ready" : "Failed");
            window.location.reload();
            return;
          }
          window.setTimeout(poll, delay);
        })
        .catch(function () {
          delay = Math.min(delay * 2, 10000);
          window.setTimeout(poll, delay);
        });
    }
    window.setTimeout(poll, delay);
  }

  /* ---- The upload form: progress, then the new template's page ---- */
  function upload() {
    var form = document.querySelector("form[data-upload]");
    if (!form || !window.XMLHttpRequest || !window.FormData) {
      return;
    }
    var box = form.querySelector(".upload-progress");
    var bar = box.querySelector("progress");
    var status = box.querySelector(".upload-status");
    var button = form.querySelector("button[type=submit]");

    function clearErrors() {
      form.querySelectorAll(".field").forEach(function (field) {
        field.classList.remove("has-error");
        var error = field.querySelector(".field-error");
        if (error) {
          error.textContent = "";
        }
        var input = field.querySelector("input, select, textarea");
        if (input) {
          input.removeAttribute("aria-invalid");
        }
      });
    }

    function markErrors(fields) {
      var first = null;
      Object.keys(fields || {}).forEach(function (name) {
        var field = form.querySelector('.field[data-field="' + name + '"]');
        if (!field) {
          return;
        }
        field.classList.add("has-error");
        var input = field.querySelector("input, select, textarea");
        if (input) {
          input.setAttribute("aria-invalid", "true");
          first = first || input;
        }
        var error = field.querySelector(".field-error");
        if (error) {
          error.textContent = fields[name].join(" ");
        }
      });
      if (first) {
        first.focus();
      }
    }

    function done(text) {
      status.textContent = text;
      button.disabled = false;
    }

    form.addEventListener("submit", function (event) {
      if (!form.checkValidity()) {
        return; // the browser shows its own hints
      }
      event.preventDefault();
      clearErrors();
      box.hidden = false;
      bar.value = 0;
      status.textContent = message(form, "Sending");
      button.disabled = true;
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) {
          bar.value = Math.round((100 * e.loaded) / e.total);
          status.textContent = message(form, "Sending") + " " + bar.value + "%";
        }
      });
      xhr.upload.addEventListener("load", function () {
        bar.value = 100;
        status.textContent = message(form, "Sent");
      });
      xhr.addEventListener("load", function () {
        var body = null;
        try {
          body = JSON.parse(xhr.responseText);
        } catch (e) {
          body = null;
        }
        if (xhr.status === 201 && body && body.location) {
          window.location.assign(body.location);
          return;
        }
        if (xhr.status === 413) {
          done(message(form, "TooBig"));
          return;
        }
        if (xhr.status === 422 && body) {
          markErrors(body.fields);
          var extra = (body.errors || []).join(" ");
          done(message(form, "Refused") + (extra ? " " + extra : ""));
          return;
        }
        done(message(form, "Failed"));
      });
      xhr.addEventListener("error", function () {
        done(message(form, "Failed"));
      });
      xhr.send(new FormData(form));
    });
  }

  /* ---- The gallery: reorder in place ---- */
  function gallery() {
    var list = document.querySelector("ol.gallery-list[data-reorder]");
    if (!list || !window.fetch || !window.FormData) {
      return;
    }
    var live = document.getElementById("gallery-status");

    function refresh() {
      var items = list.querySelectorAll(".gallery-entry");
      items.forEach(function (item, index) {
        item.querySelector(".position").textContent = String(index + 1);
        item.querySelectorAll("button[data-direction]").forEach(function (button) {
          var d = button.dataset.direction;
          button.disabled =
            ((d === "top" || d === "up") && index === 0) ||
            ((d === "down" || d === "bottom") && index === items.length - 1);
        });
      });
    }

    list.addEventListener("submit", function (event) {
      var form = event.target;
      var button = form.querySelector("button[data-direction]");
      if (!button) {
        return; // removing reloads the page
      }
      event.preventDefault();
      button.disabled = true;
      fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      })
        .then(function (response) {
          return response.json().then(function (body) {
            return { ok: response.ok, body: body };
          });
        })
        .then(function (result) {
          if (!result.ok) {
            live.textContent = (result.body && result.body.error) || message(list, "Failed");
            refresh();
            return;
          }
          var items = {};
          list.querySelectorAll(".gallery-entry").forEach(function (item) {
            items[item.dataset.key] = item;
          });
          result.body.order.forEach(function (key) {
            if (items[key]) {
              list.appendChild(items[key]);
            }
          });
          refresh();
          var moved = items[form.elements.key.value];
          var position = result.body.order.indexOf(form.elements.key.value) + 1;
          live.textContent = message(list, "Moved").replace("{position}", String(position));
          // Keep the keyboard where it was: this button, or its row's first one still usable.
          var target = button.disabled && moved ? moved.querySelector("button:not(:disabled)") : button;
          if (target) {
            target.focus();
          }
        })
        .catch(function () {
          live.textContent = message(list, "Failed");
          refresh();
        });
    });
  }

  editor();
  preparation();
  upload();
  gallery();
})();
