/* The creator's live caption preview: lays the caption out on a canvas over the template's loop,
   approximating the server's layout (loopmark/renderer/caption/): the template's font,
   fill and stroke, alignment, at most max_lines lines, the largest size in [min_size, max_size]
   that fits the text box (measured with canvas measureText), ink centred vertically, and two
   lines balanced. It approximates; the server's render is the truth. */
(function () {
  "use strict";

  var Hop = (window.Hop = window.Hop || {});
  var LINE_PITCH_EM = 1.15; // as the server: baseline-to-baseline distance
  var LINE_INK_GAP_EM = 0.08;
  var EDGE_MARGIN_PX = 1;
  var FALLBACK_FAMILIES = '"Noto Sans", "Segoe UI", Roboto, sans-serif';
  var loadedFonts = {};

  function strokeAt(text, size) {
    if (!text.stroke_width || text.stroke_width <= 0) {
      return 0;
    }
    return Math.max(1, Math.round((text.stroke_width * size) / Math.max(1, text.max_size)));
  }

  /* A colour from the API: "#rrggbb" or [r, g, b]. */
  function colour(value, fallback) {
    if (Array.isArray(value) && value.length >= 3) {
      return "rgb(" + value.slice(0, 3).join(",") + ")";
    }
    return typeof value === "string" && value ? value : fallback;
  }

  function familyFor(templateId) {
    return "hop-tpl-" + templateId;
  }

  /* Loads the template's caption font (once); resolves when ready or when loading failed. */
  function loadFont(template) {
    var url = template.text && template.text.font_url;
    if (!url || !window.FontFace || !document.fonts) {
      return Promise.resolve(false);
    }
    if (!loadedFonts[url]) {
      var face = new FontFace(familyFor(template.id), "url(" + JSON.stringify(url) + ")");
      loadedFonts[url] = face
        .load()
        .then(function (loaded) {
          document.fonts.add(loaded);
          return true;
        })
        .catch(function () {
          return false;
        });
    }
    return loadedFonts[url];
  }

  function Preview(canvas, template) {
    this.canvas = canvas;
    this.template = template;
    this.text = template.text || {};
    this.ctx = canvas.getContext("2d");
    canvas.width = template.width;
    canvas.height = template.height;
    this.family = '"' + familyFor(template.id) + '", ' + FALLBACK_FAMILIES;
    var box = this.text.box || [0, 0, template.width, template.height];
    this.box = { x: box[0], y: box[1], w: box[2], h: box[3] };
    this.fontReady = loadFont(template);
  }

  Preview.prototype.font = function (size) {
    return size + "px " + this.family;
  };

  Preview.prototype.measure = function (line) {
    var m = this.ctx.measureText(line || " ");
    return {
      text: line,
      width: m.width,
      top: -m.actualBoundingBoxAscent,
      bottom: m.actualBoundingBoxDescent,
    };
  };

  /* Greedy wrapping of one paragraph in `avail` pixels; a word wider than a line is broken
     between grapheme clusters, as the server does in an emergency. */
  Preview.prototype.wrap = function (paragraph, avail) {
    var self = this;
    var lines = [];
    var line = "";
    paragraph.split(/\s+/).filter(Boolean).forEach(function (word) {
      var candidate = line ? line + " " + word : word;
      if (self.ctx.measureText(candidate).width <= avail) {
        line = candidate;
        return;
      }
      if (line) {
        lines.push(line);
        line = "";
      }
      if (self.ctx.measureText(word).width <= avail) {
        line = word;
        return;
      }
      Hop.graphemes(word).forEach(function (g) {
        if (!line || self.ctx.measureText(line + g).width <= avail) {
          line += g;
        } else {
          lines.push(line);
          line = g;
        }
      });
    });
    if (line) {
      lines.push(line);
    }
    return lines;
  };

  /* Places lines at `size`: null when their ink does not fit the box. */
  Preview.prototype.place = function (lines, size) {
    var text = this.text;
    var box = this.box;
    var stroke = strokeAt(text, size);
    var margin = stroke + EDGE_MARGIN_PX;
    var avail = box.w - 2 * margin;
    if (avail <= 0 || lines.length > (text.max_lines || 2)) {
      return null;
    }
    this.ctx.font = this.font(size);
    var measured = lines.map(this.measure, this);
    if (measured.some(function (m) { return m.width > avail; })) {
      return null;
    }
    var pitch = LINE_PITCH_EM * size;
    var gap = 2 * stroke + LINE_INK_GAP_EM * size;
    var baselines = [0];
    for (var i = 1; i < measured.length; i++) {
      var upper = measured[i - 1];
      var lower = measured[i];
      baselines.push(baselines[i - 1] + Math.max(pitch, upper.bottom - lower.top + gap));
    }
    var inkTop = Infinity;
    var inkBottom = -Infinity;
    measured.forEach(function (m, j) {
      inkTop = Math.min(inkTop, baselines[j] + m.top);
      inkBottom = Math.max(inkBottom, baselines[j] + m.bottom);
    });
    inkTop -= margin;
    inkBottom += margin;
    if (inkBottom - inkTop > box.h) {
      return null;
    }
    var shift = (box.h - (inkBottom - inkTop)) / 2 - inkTop;
    var align = text.align || "center";
    return {
      size: size,
      stroke: stroke,
      lines: measured.map(function (m, j) {
        var x = align === "left" ? margin
          : align === "right" ? box.w - margin - m.width
          : (box.w - m.width) / 2;
        return { text: m.text, x: box.x + x, y: box.y + baselines[j] + shift, width: m.width };
      }),
    };
  };

  Preview.prototype.layoutAt = function (paragraphs, size) {
    var stroke = strokeAt(this.text, size);
    var avail = this.box.w - 2 * (stroke + EDGE_MARGIN_PX);
    if (avail <= 0) {
      return null;
    }
    this.ctx.font = this.font(size);
    var lines = [];
    for (var i = 0; i < paragraphs.length; i++) {
      lines = lines.concat(paragraphs[i] ? this.wrap(paragraphs[i], avail) : [""]);
      if (lines.length > (this.text.max_lines || 2)) {
        return null;
      }
    }
    return this.place(lines, size);
  };

  /* Two greedy lines from one paragraph: move the break so the wider line is as narrow as
     possible (the server balances too: no one-word last line when a better split fits). */
  Preview.prototype.balance = function (fit, paragraphs) {
    if (fit.lines.length !== 2 || paragraphs.length !== 1) {
      return fit;
    }
    var words = paragraphs[0].split(/\s+/).filter(Boolean);
    var best = fit;
    var bestWidth = Math.max(fit.lines[0].width, fit.lines[1].width);
    for (var k = 1; k < words.length; k++) {
      var candidate = this.place(
        [words.slice(0, k).join(" "), words.slice(k).join(" ")], fit.size
      );
      if (candidate) {
        var width = Math.max(candidate.lines[0].width, candidate.lines[1].width);
        if (width < bestWidth - 0.5) {
          best = candidate;
          bestWidth = width;
        }
      }
    }
    return best;
  };

  /* The layout for `caption`: {fit, size, stroke, lines} where fit is false when it does not
     fit at min_size (then the lines are drawn at min_size anyway, clipped to the box). */
  Preview.prototype.layout = function (caption) {
    var text = this.text;
    var paragraphs = caption.split(/\r\n|\r|\n/).map(function (p) {
      return p.trim();
    });
    if (!paragraphs.some(Boolean)) {
      return { fit: true, lines: [] };
    }
    var lo = text.min_size || 14;
    var hi = Math.max(lo, text.max_size || 48);
    var best = null;
    while (lo <= hi) {
      var mid = Math.floor((lo + hi) / 2);
      var fit = this.layoutAt(paragraphs, mid);
      if (fit) {
        best = fit;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    if (best) {
      best = this.balance(best, paragraphs);
      best.fit = true;
      return best;
    }
    var size = text.min_size || 14;
    this.ctx.font = this.font(size);
    var stroke = strokeAt(text, size);
    var lines = this.wrap(paragraphs.join(" "), this.box.w - 2 * (stroke + EDGE_MARGIN_PX));
    var placed = this.place(lines.slice(0, text.max_lines || 2), size) || { lines: [] };
    return { fit: false, size: size, stroke: stroke, lines: placed.lines };
  };

  Preview.prototype.draw = function (caption) {
    var ctx = this.ctx;
    var text = this.text;
    var result = this.layout(caption || "");
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    if (!result.lines.length) {
      return result;
    }
    ctx.save();
    ctx.beginPath();
    ctx.rect(this.box.x, this.box.y, this.box.w, this.box.h);
    ctx.clip();
    ctx.font = this.font(result.size);
    ctx.textBaseline = "alphabetic";
    ctx.textAlign = "left";
    ctx.lineJoin = "round";
    ctx.miterLimit = 2;
    result.lines.forEach(function (line) {
      if (result.stroke > 0) {
        // Pillow's stroke_width is a radius; a canvas line is centred on the outline.
        ctx.lineWidth = 2 * result.stroke;
        ctx.strokeStyle = colour(text.stroke, "#000");
        ctx.strokeText(line.text, line.x, line.y);
      }
      ctx.fillStyle = colour(text.fill, "#fff");
      ctx.fillText(line.text, line.x, line.y);
    });
    ctx.restore();
    return result;
  };

  Hop.CaptionPreview = Preview;
})();
