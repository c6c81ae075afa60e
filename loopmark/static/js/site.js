/* Hop & Co. site helpers shared by every page (window.Hop): motion preferences, lazy loops,
   JSON requests. Plain script, no framework; loaded with `defer` before the page's own script. */
(function () {
  "use strict";

  var Hop = (window.Hop = window.Hop || {});
  var motionQuery = window.matchMedia ? window.matchMedia("(prefers-reduced-motion: reduce)") : null;

  /* The page's words, in its language: a JSON block (#hop-strings) the server writes, so no
     sentence is written here. Hop.t(key, {name: value}) fills %(name)s placeholders;
     Hop.tn(key, n, values) picks the plural form the language's rules name for n. */
  var strings = null;

  function pageStrings() {
    if (strings === null) {
      var block = document.getElementById("hop-strings");
      try {
        strings = block ? JSON.parse(block.textContent) : {};
      } catch (e) {
        strings = {};
      }
    }
    return strings;
  }

  function fill(text, values) {
    return String(text).replace(/%\((\w+)\)s|%%/g, function (match, name) {
      if (!name) {
        return "%";
      }
      return values && values[name] !== undefined ? String(values[name]) : match;
    });
  }

  Hop.lang = document.documentElement.lang || "en";

  Hop.t = function (key, values) {
    var text = pageStrings()[key];
    return fill(typeof text === "string" ? text : key, values);
  };

  Hop.tn = function (key, n, values) {
    var forms = pageStrings()[key] || {};
    var rule = "other";
    try {
      rule = new Intl.PluralRules(Hop.lang).select(n);
    } catch (e) {
      rule = n === 1 ? "one" : "other";
    }
    var merged = { n: n };
    Object.keys(values || {}).forEach(function (name) {
      merged[name] = values[name];
    });
    return fill(forms[rule] || forms.other || key, merged);
  };

  Hop.reducedMotion = function () {
    return !!(motionQuery && motionQuery.matches);
  };

  /* The visitor token (GET /api/visitor): the API's limits count per visitor, not per shared
     address (a venue's Wi-Fi). Kept in localStorage, never a cookie; asked for again an hour
     before it ends. Without one the API still answers, counting against the address. */
  var VISITOR_KEY = "loopmark.visitor";
  var visitorPromise = null;

  function storedVisitor() {
    try {
      var saved = JSON.parse(window.localStorage.getItem(VISITOR_KEY) || "null");
      if (saved && typeof saved.token === "string" && saved.renewAt > Date.now()) {
        return saved.token;
      }
    } catch (e) {
      /* Storage refused (private mode) or garbled: ask again. */
    }
    return null;
  }

  function visitorToken() {
    var token = storedVisitor();
    if (token) {
      return Promise.resolve(token);
    }
    if (!visitorPromise) {
      visitorPromise = fetch("/api/visitor", { headers: { Accept: "application/json" } })
        .then(function (response) {
          return response.ok ? response.json() : null;
        })
        .then(function (body) {
          if (!body || typeof body.token !== "string") {
            return null;
          }
          var lifetime = Math.max(0, (body.expires_in || 0) - 3600) * 1000;
          try {
            window.localStorage.setItem(
              VISITOR_KEY,
              JSON.stringify({ token: body.token, renewAt: Date.now() + lifetime })
            );
          } catch (e) {
            /* Not kept: this page still uses it. */
          }
          return body.token;
        })
        .catch(function () {
          return null;
        })
        .then(function (token) {
          visitorPromise = token ? Promise.resolve(token) : null;
          return token;
        });
    }
    return visitorPromise;
  }

  /* The visitor token, or null (clip.js sends it with its upload form). */
  Hop.visitorToken = visitorToken;

  /* Fetch JSON; resolves to {status, body, retryAfter} (retryAfter in seconds, or null) and
     rejects only on network failure. API calls carry the visitor token. */
  Hop.fetchJSON = function (url, options) {
    options = options || {};
    var init = { method: options.method || "GET", headers: { Accept: "application/json" } };
    if (options.json !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.json);
    }
    var api = /^\/api\//.test(url);
    return (api ? visitorToken() : Promise.resolve(null)).then(function (token) {
      if (token) {
        init.headers["X-Loopmark-Visitor"] = token;
      }
      return fetch(url, init).then(function (response) {
        var retry = response.headers.get("Retry-After");
        var seconds = retry !== null && /^\d+$/.test(retry.trim()) ? parseInt(retry, 10) : null;
        return response
          .json()
          .catch(function () {
            return null;
          })
          .then(function (body) {
            return { status: response.status, body: body, retryAfter: seconds };
          });
      });
    });
  };

  /* The message of an API error body ({error: {code, message}}), or a fallback. */
  Hop.errorMessage = function (body, fallback) {
    if (body && body.error && typeof body.error.message === "string" && body.error.message) {
      return body.error.message;
    }
    return fallback;
  };

  /* Grapheme clusters, as the server counts a caption's length. */
  Hop.graphemes = function (text) {
    if (window.Intl && Intl.Segmenter) {
      var segmenter = new Intl.Segmenter(undefined, { granularity: "grapheme" });
      return Array.from(segmenter.segment(text), function (s) {
        return s.segment;
      });
    }
    return Array.from(text);
  };

  /* Looping previews (<video class="js-loop" data-src data-poster>): poster and video are set
     only when the element nears the viewport; the loop plays only without reduced motion. */
  var observer = null;

  function start(video) {
    if (video.dataset.poster && !video.getAttribute("poster")) {
      video.setAttribute("poster", video.dataset.poster);
    }
    if (Hop.reducedMotion()) {
      video.pause();
      return;
    }
    if (video.dataset.src && video.getAttribute("src") !== video.dataset.src) {
      video.src = video.dataset.src;
    }
    var playing = video.play();
    if (playing && playing.catch) {
      playing.catch(function () {
        /* Autoplay refused (data saver, low power): the poster stays, which is fine. */
      });
    }
  }

  function stop(video) {
    if (!video.paused) {
      video.pause();
    }
  }

  Hop.lazyLoops = function (root) {
    var videos = (root || document).querySelectorAll("video.js-loop");
    if (!("IntersectionObserver" in window)) {
      videos.forEach(start);
      return;
    }
    if (!observer) {
      observer = new IntersectionObserver(
        function (entries) {
          entries.forEach(function (entry) {
            if (entry.isIntersecting) {
              start(entry.target);
            } else {
              stop(entry.target);
            }
          });
        },
        { rootMargin: "200px 0px" }
      );
    }
    videos.forEach(function (video) {
      observer.observe(video);
    });
  };

  /* Plays (or, with reduced motion, pauses) one loop right away: the creator's preview. */
  Hop.playLoop = start;

  if (motionQuery && motionQuery.addEventListener) {
    motionQuery.addEventListener("change", function () {
      document.querySelectorAll("video.js-loop").forEach(function (video) {
        if (Hop.reducedMotion()) {
          video.pause();
        } else if (video.getAttribute("src")) {
          start(video);
        }
      });
    });
  }

  Hop.lazyLoops(document);
})();
