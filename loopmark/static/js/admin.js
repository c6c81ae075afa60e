/* Admin: the template editor's live preview. Draws the sample caption with the form's current
   box, font, colours and sizes over the template's poster (Hop.CaptionPreview, the creator's own
   layout approximation), and the text box as a dashed outline. The form works without it. */
(function () {
  "use strict";

  var root = document.querySelector("[data-admin-preview]");
  var form = document.getElementById("template-form");
  if (!root || !form || !window.Hop || !window.Hop.CaptionPreview) {
    return;
  }
  var textCanvas = root.querySelector("canvas.preview-text");
  var boxCanvas = root.querySelector("canvas.preview-box");
  var sample = document.getElementById("sample");
  var width = parseInt(root.dataset.width, 10);
  var height = parseInt(root.dataset.height, 10);
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
    preview.fontReady.then(function () {
      if (current === preview) {
        preview.draw(sample.value);
      }
    });
  }

  form.addEventListener("input", draw);
  form.addEventListener("change", draw);
  sample.addEventListener("input", draw);
  draw();
})();
