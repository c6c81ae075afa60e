/* The gallery page: curated loops fetched over GraphQL (POST /graphql, gallery(first, after)),
   added as the visitor scrolls. The HTML holds no media: each batch is sized by how many grid
   columns fit the viewport (a screenful and a row more); a card shows its poster once it nears
   the viewport, then, when the poster is in and the visitor allows motion, its MP4 as a muted
   looping <video> that plays only while visible. Reduced motion keeps the posters.
   Config comes from data-* on #gallery-grid: the CSP forbids inline script. */
(function () {
  "use strict";

  var grid = document.getElementById("gallery-grid");
  if (!grid) {
    return;
  }
  var Hop = window.Hop || {};
  var endpoint = grid.dataset.graphqlUrl || "/graphql";
  var maxBatch = parseInt(grid.dataset.maxBatch, 10) || 50; // the server's page-size cap
  var sentinel = document.getElementById("gallery-more");
  var statusLine = document.getElementById("gallery-status");
  var retryButton = document.getElementById("gallery-retry");
  var moreButton = document.getElementById("gallery-load-more");
  var emptyNote = document.getElementById("gallery-empty");

  var QUERY =
    "query GalleryPage($first: Int!, $after: String) {" +
    " gallery(first: $first, after: $after) {" +
    " edges { node { key caption mp4Url posterUrl shareUrl width height } }" +
    " pageInfo { hasNextPage endCursor } } }";
  var MIN_COLUMN_PX = 150; // the grid's minmax(150px, 1fr)
  var ROW_ASPECT = 0.75; // a card's height per unit of width, before its media are known
  var CARD_EXTRA_PX = 20; // border and gap per row
  var SCROLL_AHEAD_PX = 800; // fetch the next batch this far before the end is reached
  var MEDIA_AHEAD_PX = 300; // load posters this far before a card scrolls into view

  var after = null;
  var hasNext = true;
  var loading = false;
  var loaded = 0;
  var seen = Object.create(null);
  var canObserve = "IntersectionObserver" in window;

  function reducedMotion() {
    return Hop.reducedMotion ? Hop.reducedMotion() : false;
  }

  /* ---- batch size: columns that fit × rows that fill the viewport, plus one row ---- */

  function columnCount() {
    var tracks = window.getComputedStyle(grid).gridTemplateColumns || "";
    var count = tracks && tracks !== "none" ? tracks.trim().split(/\s+/).length : 0;
    return count || Math.max(1, Math.floor(grid.clientWidth / MIN_COLUMN_PX));
  }

  function batchSize() {
    var columns = columnCount();
    var rowHeight = (grid.clientWidth / columns) * ROW_ASPECT + CARD_EXTRA_PX;
    var rows = Math.ceil(window.innerHeight / Math.max(rowHeight, 40)) + 1;
    var cap = Math.max(columns, maxBatch - (maxBatch % columns)); // whole rows under the cap
    return Math.min(cap, Math.max(columns, columns * rows));
  }

  /* ---- media: posters first, then the loop ---- */

  function showPoster(card) {
    var img = card.querySelector("img.gallery-poster");
    if (img && !img.getAttribute("src")) {
      img.src = img.dataset.src;
    }
    return img;
  }

  function startLoop(card) {
    if (reducedMotion() || card.dataset.visible !== "1") {
      return;
    }
    var video = card.querySelector("video.gallery-loop");
    if (video) {
      playQuietly(video);
      return;
    }
    if (card._loop) {
      return; // loading already
    }
    var img = card.querySelector("img.gallery-poster");
    video = document.createElement("video");
    video.className = "media-img gallery-loop";
    video.muted = true; // set as a property too: autoplay policies read the property
    video.setAttribute("muted", "");
    video.loop = true;
    video.playsInline = true;
    video.setAttribute("playsinline", "");
    video.preload = "auto";
    video.poster = img.dataset.src;
    // The attributes, not .width: that is the rendered size once the image is laid out.
    video.setAttribute("width", img.getAttribute("width"));
    video.setAttribute("height", img.getAttribute("height"));
    // Named by its label (no role="img": ARIA allows a <video> no such role), so the card's
    // link keeps the caption as its name.
    video.setAttribute("aria-label", img.alt);
    card._loop = video;
    // Swapped in only once its first frame is decoded, so the poster never blinks out.
    video.addEventListener("loadeddata", function () {
      if (card._loop !== video || reducedMotion() || !img.parentNode) {
        return; // given up (reduced motion turned on) or already swapped
      }
      img.parentNode.replaceChild(video, img);
      if (card.dataset.visible === "1") {
        playQuietly(video);
      }
    });
    video.addEventListener("error", function () {
      card._loop = null; // the poster stays; a later visit tries again
    });
    video.src = card.dataset.loop;
    video.load();
  }

  function playQuietly(video) {
    var playing = video.play();
    if (playing && playing.catch) {
      playing.catch(function () {
        /* Autoplay refused (data saver, low power): the still frame is fine. */
      });
    }
  }

  function stopLoop(card) {
    var video = card.querySelector("video.gallery-loop");
    if (video && !video.paused) {
      video.pause();
    }
  }

  function showPosterInsteadOfLoop(card) {
    var video = card.querySelector("video.gallery-loop");
    card._loop = null;
    if (!video) {
      return;
    }
    video.pause();
    var img = document.createElement("img");
    img.className = "media-img gallery-poster";
    img.alt = video.getAttribute("aria-label") || "";
    img.setAttribute("width", video.getAttribute("width"));
    img.setAttribute("height", video.getAttribute("height"));
    img.dataset.src = video.poster;
    img.src = video.poster;
    video.parentNode.replaceChild(img, video);
  }

  function onPosterReady(card, img) {
    if (img.complete && img.naturalWidth > 0) {
      startLoop(card);
    } else {
      img.addEventListener("load", function () {
        startLoop(card);
      });
    }
  }

  var mediaObserver = canObserve
    ? new IntersectionObserver(
        function (entries) {
          entries.forEach(function (entry) {
            var card = entry.target;
            if (entry.isIntersecting) {
              card.dataset.visible = "1";
              var img = showPoster(card);
              if (img) {
                onPosterReady(card, img);
              } else {
                startLoop(card);
              }
            } else {
              card.dataset.visible = "0";
              stopLoop(card);
            }
          });
        },
        { rootMargin: MEDIA_AHEAD_PX + "px 0px" }
      )
    : null;

  function makeCard(node) {
    var card = document.createElement("li");
    card.className = "gallery-item";
    card.dataset.key = node.key;
    card.dataset.loop = node.mp4Url;
    var link = document.createElement("a");
    link.className = "gallery-link";
    link.href = node.shareUrl;
    var frame = document.createElement("div");
    frame.className = "media-frame";
    var img = document.createElement("img");
    img.className = "media-img gallery-poster";
    img.alt = node.caption; // the caption is the alt text
    img.width = node.width; // the size reserves the card's space before anything loads
    img.height = node.height;
    img.decoding = "async";
    img.dataset.src = node.posterUrl;
    frame.appendChild(img);
    link.appendChild(frame);
    card.appendChild(link);
    return card;
  }

  /* ---- pages ---- */

  function showStatus(message) {
    statusLine.textContent = message;
    statusLine.hidden = !message;
  }

  function fail() {
    loading = false;
    grid.setAttribute("aria-busy", "false");
    showStatus(Hop.t ? Hop.t("gallery.failed") : "");
    retryButton.hidden = false;
  }

  function loadMore() {
    if (loading || !hasNext) {
      return;
    }
    loading = true;
    retryButton.hidden = true;
    showStatus("");
    grid.setAttribute("aria-busy", "true");
    var first = batchSize();
    grid.dataset.lastBatch = String(first);
    Hop.fetchJSON(endpoint, {
      method: "POST",
      json: { query: QUERY, variables: { first: first, after: after } },
    }).then(function (answer) {
      var body = answer.body;
      var connection = body && body.data && body.data.gallery;
      if (answer.status !== 200 || !connection || (body.errors && body.errors.length)) {
        fail();
        return;
      }
      append(connection.edges);
      hasNext = !!connection.pageInfo.hasNextPage;
      after = connection.pageInfo.endCursor || after;
      loading = false;
      grid.setAttribute("aria-busy", "false");
      emptyNote.hidden = loaded > 0;
      grid.dataset.complete = hasNext ? "0" : "1";
      if (!hasNext) {
        sentinel.hidden = true;
        moreButton.hidden = true;
      } else if (!canObserve) {
        moreButton.hidden = false;
      } else if (nearTheEnd()) {
        // The batch did not fill the screen (a tall screen, small cards): the sentinel is
        // still in view, and an observer only reports changes, so ask again now.
        loadMore();
      }
    }, fail);
  }

  function append(edges) {
    var fragment = document.createDocumentFragment();
    var cards = [];
    edges.forEach(function (edge) {
      var node = edge.node;
      if (seen[node.key]) {
        return; // the order changed between two pages: never show a loop twice
      }
      seen[node.key] = true;
      var card = makeCard(node);
      cards.push(card);
      fragment.appendChild(card);
    });
    grid.appendChild(fragment);
    loaded += cards.length;
    grid.dataset.loaded = String(loaded);
    cards.forEach(function (card) {
      if (mediaObserver) {
        mediaObserver.observe(card);
      } else {
        card.dataset.visible = "1";
        onPosterReady(card, showPoster(card));
      }
    });
  }

  function nearTheEnd() {
    return sentinel.getBoundingClientRect().top < window.innerHeight + SCROLL_AHEAD_PX;
  }

  retryButton.addEventListener("click", loadMore);
  moreButton.addEventListener("click", loadMore);

  if (canObserve) {
    new IntersectionObserver(
      function (entries) {
        if (entries.some(function (entry) { return entry.isIntersecting; })) {
          loadMore();
        }
      },
      { rootMargin: "0px 0px " + SCROLL_AHEAD_PX + "px 0px" }
    ).observe(sentinel);
    // An observer only reports changes: if the sentinel stayed in view while a batch was
    // loading, the next scroll must still ask for more.
    var scrollQueued = false;
    window.addEventListener(
      "scroll",
      function () {
        if (scrollQueued) {
          return;
        }
        scrollQueued = true;
        window.requestAnimationFrame(function () {
          scrollQueued = false;
          if (hasNext && !loading && nearTheEnd()) {
            loadMore();
          }
        });
      },
      { passive: true }
    );
  }

  var motionQuery = window.matchMedia ? window.matchMedia("(prefers-reduced-motion: reduce)") : null;
  if (motionQuery && motionQuery.addEventListener) {
    motionQuery.addEventListener("change", function () {
      grid.querySelectorAll(".gallery-item").forEach(function (card) {
        if (reducedMotion()) {
          showPosterInsteadOfLoop(card);
        } else {
          var img = card.querySelector("img.gallery-poster");
          if (img && img.getAttribute("src")) {
            onPosterReady(card, img);
          }
        }
      });
    });
  }

  loadMore();
})();
