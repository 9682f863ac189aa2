/* archive-restore review report: renders the grid, filters, summary and the before/after
 * viewer from the JSON data blob in #report-data. Owns all page behaviour.
 * Safety rule: data from the manifest only ever reaches the DOM through textContent,
 * attribute setters of known-safe values (asset URLs built from hex keys, URL-escaped
 * relative hrefs); nothing is ever parsed as HTML. */
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("report-data").textContent);
  var S = D.summary, ITEMS = D.items;
  var hasOwn = Object.prototype.hasOwnProperty;
  var collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function pct(f, digits) { return f === null || f === undefined ? "n/a" : (100 * f).toFixed(digits === undefined ? 2 : digits) + " %"; }
  function secs(s) {
    if (s === null || s === undefined) return "n/a";
    if (s < 60) return s.toFixed(s < 10 ? 2 : 1) + " s";
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = Math.round(s % 60);
    return (h ? h + " h " : "") + m + " min " + r + " s";
  }
  function num(n) { return n === null || n === undefined ? "n/a" : Number(n).toLocaleString("en"); }
  function asset(it, flag, size) {
    if (!it.a || (it.af || "").indexOf(flag) < 0) return null;
    return D.asset_dir + "/" + it.a + "." + flag + size + (flag === "m" ? ".png" : ".jpg");
  }
  function rawOf(it) {
    var o = {}, order = D.orders[it.xo] || [];
    for (var i = 0; i < order.length; i++) {
      var k = order[i];
      var v = rawField(it, k);
      Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
    }
    return o;
  }
  function encPart(s) {
    // encodeURIComponent, except that it throws on lone surrogates, which a file name that is
    // not UTF-8 brings (Python's surrogateescape: U+DC80..U+DCFF stands for the raw byte 0x80..0xFF,
    // so it becomes that byte's %XX and the link finds the file).
    var out = "";
    for (var i = 0; i < s.length; i++) {
      var c = s.charCodeAt(i);
      if (c >= 0xD800 && c <= 0xDBFF && i + 1 < s.length) {
        var d = s.charCodeAt(i + 1);
        if (d >= 0xDC00 && d <= 0xDFFF) { out += encodeURIComponent(s.substr(i, 2)); i++; continue; }
      }
      if (c >= 0xDC80 && c <= 0xDCFF) out += "%" + (c - 0xDC00).toString(16).toUpperCase();
      else if (c >= 0xD800 && c <= 0xDFFF) out += "%EF%BF%BD";
      else out += encodeURIComponent(s.charAt(i));
    }
    return out;
  }
  function enc(path) { return String(path).split("/").map(encPart).join("/"); }
  function rawField(it, k) { return hasOwn.call(it.xs, k) ? D.shared[it.xs[k]] : it.x[k]; }
  function links(it) {
    // Python vetted the paths (relative, no ".."); flags say which are offered.
    var f = it.l || "";
    return [f.indexOf("i") >= 0 ? D.roots[it.ri] + enc(rawField(it, "input")) : null,
            f.indexOf("o") >= 0 ? enc(rawField(it, "output")) : null,
            f.indexOf("m") >= 0 ? enc(rawField(it, "mask")) : null];
  }
  ITEMS.forEach(function (it) { it.n = String(rawField(it, "input")); });
  function kindSum(it, kind) {
    if (kind) return hasOwn.call(it.k, kind) ? it.k[kind] : 0;
    var s = 0; for (var k in it.k) if (hasOwn.call(it.k, k)) s += it.k[k]; return s;
  }

  /* ---------- summary ---------- */
  function tallyText(list, fmt) {
    if (!list || !list.length) return "n/a";
    return list.map(function (p) { return fmt(p[0]) + (list.length > 1 ? " (" + p[1] + ")" : ""); }).join(", ");
  }
  function renderSummary() {
    var h = $("summary");
    h.appendChild(el("h1", null, "Restoration report"));
    h.appendChild(el("div", "sub", "Output folder " + S.out_dir + " \u00b7 report built " + S.generated_at +
      " \u00b7 " + num(S.images) + " images"));
    var cards = el("div", "cards");
    function card(cls, value, label, onclick) {
      var c = el(onclick ? "button" : "div", "card " + cls);
      if (onclick) { c.type = "button"; c.addEventListener("click", onclick); c.title = "Show only these"; }
      c.appendChild(el("span", "v", value)); c.appendChild(el("span", "k", label)); cards.appendChild(c);
    }
    card("all", num(S.images), "images", function () { setFilters("", ""); });
    D.statuses.forEach(function (st) { card(st, num(S.counts[st] || 0), st, function () { setFilters(st, ""); }); });
    if (S.counts.unknown) card("failed", num(S.counts.unknown), "unknown status", function () { setFilters("unknown", ""); });
    if (S.reused) card("time", num(S.reused), "of them done by an earlier run");
    card("review", num(S.needs_review), "need review", function () { setFilters("", "yes"); });
    card("time", secs(S.wall_s), "wall clock, first start to last finish");
    card("time", secs(S.mean_s), "per image (mean; images overlap)");
    card("time", S.per_hour === null ? "n/a" : num(Math.round(S.per_hour)), "images per hour (wall clock)");
    h.appendChild(cards);
    var dl = el("dl", "facts");
    function fact(k, v) { dl.appendChild(el("dt", null, k)); var dd = el("dd"); if (v instanceof Node) dd.appendChild(v); else dd.textContent = v; dl.appendChild(dd); }
    fact("Execution provider", tallyText(S.providers, function (v) { return v === null ? "none" : String(v); }));
    fact("Model", tallyText(S.models, function (v) { return (v[0] || "unnamed") + " \u00b7 id " + (v[1] ? String(v[1]).slice(0, 16) + "\u2026" : "none"); }));
    fact("Processed", (S.first_finished || "n/a") + " \u2192 " + (S.last_finished || "n/a"));
    fact("Input folder", tallyText(S.input_roots, String));
    fact("Tool version", tallyText(S.tool_versions, String));
    var sets = el("div");
    if (!S.settings.length) sets.textContent = "n/a";
    S.settings.forEach(function (p, i) {
      var d = el("details"); if (i === 0 && S.settings.length === 1) d.open = false;
      d.appendChild(el("summary", null, (S.settings.length > 1 ? "settings #" + (i + 1) + " (" + p[1] + " images)" : "settings (all images)")));
      d.appendChild(el("pre", null, JSON.stringify(p[0], null, 2))); sets.appendChild(d);
    });
    if (S.settings.length > 1) sets.insertBefore(el("div", "warn", "This manifest mixes " + S.settings.length + " different settings."), sets.firstChild);
    fact("Settings", sets);
    if (S.models.length > 1) fact("Warning", el("span", "warn", "Images were restored with " + S.models.length + " different models."));
    if (S.bad_lines) fact("Manifest", el("span", "warn", S.bad_lines + " of " + S.manifest_lines + " manifest lines could not be read and are not shown."));
    h.appendChild(dl);
  }

  /* ---------- failures ---------- */
  function renderFailures() {
    var failed = [];
    ITEMS.forEach(function (it, i) { if (it.s === "failed" || it.s === "unknown") failed.push(i); });
    var sec = $("failures");
    if (!failed.length) return;
    sec.hidden = false;
    var d = el("details"); d.open = true;
    d.appendChild(el("summary", null, "Failed images (" + failed.length + ")"));
    var ol = el("ol"); d.appendChild(ol);
    var shown = 0;
    function more(n) {
      var end = Math.min(failed.length, shown + n);
      for (; shown < end; shown++) {
        var i = failed[shown], it = ITEMS[i], li = el("li");
        var b = el("button", "linklike", it.n); b.type = "button"; b.dataset.i = String(i);
        b.addEventListener("click", function (ev) { openViewer(+ev.currentTarget.dataset.i, true); });
        li.appendChild(b); li.appendChild(document.createTextNode(" \u2014 "));
        li.appendChild(el("span", "errtext", it.e || "(no error message recorded)"));
        ol.appendChild(li);
      }
      if (btn) btn.hidden = shown >= failed.length;
      if (btn) btn.textContent = "Show " + Math.min(200, failed.length - shown) + " more of " + (failed.length - shown);
    }
    var btn = el("button", null, ""); btn.type = "button";
    btn.addEventListener("click", function () { more(200); });
    d.appendChild(btn);
    more(200);
    sec.appendChild(d);
  }

  /* ---------- filter / sort / grid ---------- */
  var view = [], page = 0;
  function initControls() {
    var fs = $("f-status");
    fs.appendChild(new Option("all", ""));
    D.statuses.concat(S.counts.unknown ? ["unknown"] : []).forEach(function (st) {
      fs.appendChild(new Option(st + " (" + (S.counts[st] || 0) + ")", st));
    });
    var fk = $("f-kind");
    fk.appendChild(new Option("any", ""));
    S.kinds.forEach(function (k) {
      var n = 0; ITEMS.forEach(function (it) { if (it.k[k] > 0) n++; });
      fk.appendChild(new Option(k + " (" + n + " images)", k));
    });
    $("help-rule").textContent = D.review_rule;
    ["f-status", "f-kind", "f-review", "sort", "pagesize", "grid-mask"].forEach(function (id) { $(id).addEventListener("change", function () { page = 0; update(); }); });
    ["q", "f-minmf"].forEach(function (id) { $(id).addEventListener("input", function () { page = 0; update(); }); });
    $("help-btn").addEventListener("click", showHelp);
  }
  function setFilters(status, review) {
    $("f-status").value = status; $("f-review").value = review; page = 0; update();
    $("controls").scrollIntoView({ block: "start" });
  }
  function computeView() {
    var st = $("f-status").value, kind = $("f-kind").value, rv = $("f-review").value;
    var q = $("q").value.trim().toLowerCase(), minmf = parseFloat($("f-minmf").value);
    var minf = isFinite(minmf) ? minmf / 100 : null;
    var out = [];
    for (var i = 0; i < ITEMS.length; i++) {
      var it = ITEMS[i];
      if (st && it.s !== st) continue;
      if (kind && !(it.k[kind] > 0)) continue;
      if (rv === "yes" && !it.r.length) continue;
      if (rv === "no" && it.r.length) continue;
      if (minf !== null && !((it.f || 0) >= minf)) continue;
      if (q && it.n.toLowerCase().indexOf(q) < 0) continue;
      out.push(i);
    }
    var sort = $("sort").value;
    var byName = function (a, b) { return collator.compare(ITEMS[a].n, ITEMS[b].n); };
    var cmp = {
      name: byName,
      review: function (a, b) { return (ITEMS[b].r.length - ITEMS[a].r.length) || ((ITEMS[b].f || 0) - (ITEMS[a].f || 0)) || byName(a, b); },
      "mf-desc": function (a, b) { return ((ITEMS[b].f || 0) - (ITEMS[a].f || 0)) || byName(a, b); },
      "mf-asc": function (a, b) { return ((ITEMS[a].f || 0) - (ITEMS[b].f || 0)) || byName(a, b); },
      "kind-desc": function (a, b) { return (kindSum(ITEMS[b], kind) - kindSum(ITEMS[a], kind)) || byName(a, b); },
      "time-desc": function (a, b) { return ((ITEMS[b].t || 0) - (ITEMS[a].t || 0)) || byName(a, b); },
      status: function (a, b) { return collator.compare(ITEMS[a].s, ITEMS[b].s) || byName(a, b); }
    }[sort] || byName;
    out.sort(cmp);
    return out;
  }
  function pageSize() { return parseInt($("pagesize").value, 10) || 48; }
  function update() { view = computeView(); renderGrid(); }
  function tile(i) {
    var it = ITEMS[i];
    var b = el("button", "tile" + (it.r.length ? " flagged" : "")); b.type = "button"; b.dataset.i = String(i);
    b.title = it.n;
    var th = el("div", "thumb");
    var src = asset(it, "a", 512) || asset(it, "b", 512);
    if (src) {
      var img = el("img"); img.loading = "lazy"; img.decoding = "async"; img.alt = ""; img.src = src; th.appendChild(img);
      var m = asset(it, "m", 512);
      if (m && $("grid-mask").checked) { var mi = el("img"); mi.loading = "lazy"; mi.alt = ""; mi.src = m; th.appendChild(mi); }
    } else if (it.s === "failed") {
      th.appendChild(el("div", "ph", "failed: " + (it.e || "no error message")));  // the run's own error, not the preview's
    } else {
      th.appendChild(el("div", "ph", it.ae ? "no preview: " + Object.keys(it.ae).map(function (k) { return k + " " + it.ae[k]; }).join("; ") : "no preview"));
    }
    b.appendChild(th);
    b.appendChild(el("div", "cap name", it.n));
    var meta = el("div", "meta");
    meta.appendChild(el("span", "badge " + it.s, it.s));
    if (it.u) meta.appendChild(el("span", "earlier", "earlier run"));
    if (it.f !== null && it.f !== undefined && it.s !== "failed") meta.appendChild(el("span", null, "masked " + pct(it.f)));
    if (it.r.length) { var fl = el("span", "flag", "\u25b2 review"); fl.title = it.r.join("; "); meta.appendChild(fl); }
    b.appendChild(meta);
    b.addEventListener("click", function () { openViewer(i); });
    return b;
  }
  function renderPager(nav, pages) {
    nav.replaceChildren();
    if (pages <= 1) return;
    function btn(label, p, disabled) {
      var b = el("button", null, label); b.type = "button"; b.disabled = disabled;
      b.addEventListener("click", function () { page = p; renderGrid(); $("controls").scrollIntoView({ block: "start" }); });
      nav.appendChild(b);
    }
    btn("\u00ab First", 0, page === 0); btn("\u2039 Prev", page - 1, page === 0);
    nav.appendChild(el("span", null, "page " + (page + 1) + " of " + pages));
    btn("Next \u203a", page + 1, page >= pages - 1); btn("Last \u00bb", pages - 1, page >= pages - 1);
  }
  function renderGrid() {
    var ps = pageSize(), pages = Math.max(1, Math.ceil(view.length / ps));
    if (page >= pages) page = pages - 1;
    if (page < 0) page = 0;
    var frag = document.createDocumentFragment();
    var start = page * ps, end = Math.min(view.length, start + ps);
    for (var j = start; j < end; j++) frag.appendChild(tile(view[j]));
    var grid = $("grid"); grid.replaceChildren(frag);
    if (!view.length) grid.appendChild(el("p", "ph", "No image matches these filters."));
    $("count").textContent = view.length === ITEMS.length ? num(view.length) + " images" : num(view.length) + " of " + num(ITEMS.length) + " images";
    renderPager($("pager-top"), pages); renderPager($("pager-bottom"), pages);
  }

  /* ---------- viewer ---------- */
  var V = { pos: -1, list: null, idx: -1, div: 0.5, mask: false, want: false, s: 1, tx: 0, ty: 0, pw: 0, ph: 0, fit: true };
  var viewer = $("viewer"), stage = $("stage"), canvas = $("canvas");
  function openViewer(i, standalone) {
    // Navigate within the current filtered order; an image outside it (e.g. from the failures list) stands alone.
    var pos = view.indexOf(i);
    V.list = (pos < 0 || standalone && pos < 0) ? [i] : view;
    V.pos = pos < 0 ? 0 : pos;
    viewer.hidden = false;
    document.body.style.overflow = "hidden";
    setBackgroundInert(true);
    show();
    stage.focus({ preventScroll: true });
  }
  function setBackgroundInert(on) {
    // a modal viewer: Tab and the arrow keys must not reach the grid and filters behind it
    Array.prototype.forEach.call(document.body.children, function (c) {
      if (c !== viewer && c.id !== "help") c.inert = on;
    });
  }
  function closeViewer() {
    viewer.hidden = true; document.body.style.overflow = "";
    setBackgroundInert(false);
    try { history.replaceState(null, "", "#"); } catch (e) { /* fragment-only: allowed even for file:// */ }
    if (V.list === view && V.pos >= 0) {
      var p = Math.floor(V.pos / pageSize());
      if (p !== page) { page = p; renderGrid(); }
      var t = $("grid").querySelector('.tile[data-i="' + V.idx + '"]');
      if (t) t.focus();
    }
  }
  function go(delta) {
    if (!V.list || !V.list.length) return;
    var n = V.pos + delta;
    if (n < 0 || n >= V.list.length) return;
    V.pos = n; show();
  }
  function setImg(img, src) {
    if (src) { img.src = src; img.hidden = false; } else { img.removeAttribute("src"); img.hidden = true; }
  }
  function show() {
    var i = V.list[V.pos], it = ITEMS[i];
    V.idx = i;
    viewer.dataset.index = String(i);
    $("v-name").textContent = it.n; $("v-name").title = it.n;
    $("v-pos").textContent = (V.pos + 1) + " / " + V.list.length;
    $("v-prev").disabled = V.pos <= 0; $("v-next").disabled = V.pos >= V.list.length - 1;
    var bsrc = asset(it, "b", 1600), asrc = asset(it, "a", 1600), msrc = asset(it, "m", 1600);
    setImg($("img-before"), bsrc); setImg($("img-after"), asrc); setImg($("img-mask"), msrc);
    $("lbl-before").textContent = bsrc ? "before" : "before: " + ((it.ae && it.ae.before) || "not available");
    $("lbl-after").textContent = asrc ? "after" : "after: " + ((it.ae && it.ae.after) || (it.s === "failed" ? "none (failed)" : "not available"));
    $("v-mask").disabled = !msrc;
    setMask(V.want);  // the overlay follows the reader's choice where there is a mask
    var ph = $("v-placeholder");
    if (!bsrc && !asrc) {
      ph.hidden = false;
      ph.textContent = it.s === "failed" ? "Failed: " + (it.e || "no error message") : "No preview available for this image.";
    } else ph.hidden = true;
    V.pw = it.pw || 800; V.ph = it.ph || 600;
    canvas.style.width = V.pw + "px"; canvas.style.height = V.ph + "px";
    canvas.hidden = !bsrc && !asrc;
    $("divider").hidden = !bsrc && !asrc;
    fitView();
    renderSide(it);
    try { history.replaceState(null, "", "#" + encPart(String(it.n))); } catch (e) { /* some file:// setups refuse */ }
    // warm the cache for the neighbours
    [V.pos - 1, V.pos + 1].forEach(function (p) {
      if (p < 0 || p >= V.list.length) return;
      var n = ITEMS[V.list[p]];
      ["a", "b"].forEach(function (f) { var s = asset(n, f, 1600); if (s) { var im = new Image(); im.src = s; } });
    });
  }
  function applyView() {
    canvas.style.transform = "translate(" + V.tx + "px," + V.ty + "px) scale(" + V.s + ")";
    canvas.classList.toggle("pixelated", V.s * (window.devicePixelRatio || 1) > 2);
    $("before-layer").style.clipPath = "inset(0 " + (100 * (1 - V.div)).toFixed(3) + "% 0 0)";
    var x = V.tx + V.div * V.pw * V.s;
    $("divider").style.left = x + "px";
    viewer.dataset.divider = (100 * V.div).toFixed(1);
    viewer.dataset.scale = V.s.toFixed(4);
    var it = ITEMS[V.idx], orig = it && it.w ? V.s * V.pw / it.w : null;
    $("v-zoom").textContent = "zoom " + Math.round(100 * V.s * (window.devicePixelRatio || 1)) + " % of preview" +
      (orig ? " \u00b7 " + (100 * orig * (window.devicePixelRatio || 1)).toFixed(orig < 0.1 ? 1 : 0) + " % of original" : "");
  }
  function fitView() {
    var W = stage.clientWidth || 800, H = stage.clientHeight || 600;
    V.s = Math.min(W / V.pw, H / V.ph) * 0.98;
    V.tx = (W - V.pw * V.s) / 2; V.ty = (H - V.ph * V.s) / 2; V.fit = true;
    applyView();
  }
  function zoomAt(factor, cx, cy) {
    var W = stage.clientWidth, H = stage.clientHeight;
    if (cx === undefined) { cx = W / 2; cy = H / 2; }
    var ns = Math.min(16, Math.max(0.02, V.s * factor));
    V.tx = cx - (cx - V.tx) * ns / V.s; V.ty = cy - (cy - V.ty) * ns / V.s; V.s = ns; V.fit = false;
    applyView();
  }
  function oneToOne() { zoomAt(1 / (window.devicePixelRatio || 1) / V.s); }
  function setDivider(d) { V.div = Math.min(1, Math.max(0, d)); applyView(); }
  function setMask(on) {
    V.want = !!on;
    V.mask = V.want && !$("v-mask").disabled;
    viewer.classList.toggle("mask-on", V.mask);
    viewer.dataset.mask = V.mask ? "on" : "off";
    $("v-mask").setAttribute("aria-pressed", V.mask ? "true" : "false");
  }
  function stageX(ev) { return ev.clientX - stage.getBoundingClientRect().left; }
  function stageY(ev) { return ev.clientY - stage.getBoundingClientRect().top; }
  var drag = null;
  $("divider").addEventListener("pointerdown", function (ev) {
    ev.preventDefault(); ev.stopPropagation();
    drag = { kind: "divider" }; $("divider").setPointerCapture(ev.pointerId);
  });
  $("divider").addEventListener("pointermove", function (ev) {
    if (drag && drag.kind === "divider") setDivider((stageX(ev) - V.tx) / (V.pw * V.s));
  });
  $("divider").addEventListener("pointerup", function () { drag = null; });
  stage.addEventListener("pointerdown", function (ev) {
    if (ev.button !== 0) return;
    drag = { kind: "pan", x: ev.clientX, y: ev.clientY, tx: V.tx, ty: V.ty };
    stage.setPointerCapture(ev.pointerId); stage.classList.add("panning");
  });
  stage.addEventListener("pointermove", function (ev) {
    if (!drag || drag.kind !== "pan") return;
    V.tx = drag.tx + ev.clientX - drag.x; V.ty = drag.ty + ev.clientY - drag.y; V.fit = false; applyView();
  });
  stage.addEventListener("pointerup", function () { drag = null; stage.classList.remove("panning"); });
  stage.addEventListener("wheel", function (ev) {
    ev.preventDefault(); zoomAt(Math.pow(1.0015, -ev.deltaY), stageX(ev), stageY(ev));
  }, { passive: false });
  $("divider").addEventListener("dblclick", function (ev) { ev.stopPropagation(); });  // not a zoom
  stage.addEventListener("dblclick", function (ev) { if (V.fit) zoomAt(1 / (window.devicePixelRatio || 1) / V.s, stageX(ev), stageY(ev)); else fitView(); });
  window.addEventListener("resize", function () { if (!viewer.hidden && V.fit) fitView(); else if (!viewer.hidden) applyView(); });
  $("v-prev").addEventListener("click", function () { go(-1); });
  $("v-next").addEventListener("click", function () { go(1); });
  $("v-close").addEventListener("click", closeViewer);
  $("v-mask").addEventListener("click", function () { setMask(!V.want); });
  $("v-fit").addEventListener("click", fitView);
  $("v-one").addEventListener("click", oneToOne);
  $("v-help").addEventListener("click", showHelp);

  function row(dl, k, v) { dl.appendChild(el("dt", null, k)); dl.appendChild(el("dd", null, v)); }
  function link(box, label, href) {
    if (!href) { box.appendChild(el("div", "ph", label + ": not available")); return; }
    var a = el("a", null, label); a.href = href; a.target = "_blank"; a.rel = "noopener noreferrer"; box.appendChild(a);
  }
  function renderSide(it) {
    var side = $("v-side"); side.replaceChildren();
    var raw = rawOf(it);
    side.appendChild(el("h3", null, "Image"));
    side.appendChild(el("div", "name", it.n));
    if (it.e) { side.appendChild(el("h3", null, "Error")); side.appendChild(el("div", "errtext", it.e)); }
    if (it.r.length) { side.appendChild(el("h3", null, "Needs review")); side.appendChild(el("div", "warn", it.r.join("; "))); }
    side.appendChild(el("h3", null, "Stats"));
    var dl = el("dl", "facts");
    row(dl, "status", it.s + (it.u ? " (by an earlier run; this run found it done and skipped it)" : ""));
    row(dl, "masked", it.s === "failed" ? "n/a" : pct(it.f));
    var area = it.w && it.h ? it.w * it.h : 0;
    Object.keys(it.k).forEach(function (k) { row(dl, k, num(it.k[k]) + " px" + (area ? " (" + pct(it.k[k] / area) + ")" : "")); });
    row(dl, "size", it.w && it.h ? it.w + " \u00d7 " + it.h + " px" : "n/a");
    row(dl, "format", [raw.format, raw.mode].filter(function (x) { return x; }).join(" ") || "n/a");
    if (raw.windows !== undefined) row(dl, "windows", raw.windows);
    var tm = raw.timings;
    if (tm && typeof tm === "object") Object.keys(tm).forEach(function (k) { row(dl, "time " + k, typeof tm[k] === "number" ? secs(tm[k]) : String(tm[k])); });
    if (raw.provider !== undefined) row(dl, "provider", raw.provider === null ? "none" : raw.provider);
    if (raw.model_name !== undefined || raw.model_id !== undefined) row(dl, "model", (raw.model_name || "unnamed") + (raw.model_id ? " \u00b7 " + String(raw.model_id).slice(0, 16) + "\u2026" : ""));
    if (raw.finished_at) row(dl, "finished", raw.finished_at);
    if (it.ae) Object.keys(it.ae).forEach(function (k) { row(dl, "preview " + k, it.ae[k]); });
    side.appendChild(dl);
    side.appendChild(el("h3", null, "Full-size files"));
    var box = el("div", "links"), ls = links(it);
    link(box, "input (original scan)", ls[0]); link(box, "output (restored)", ls[1]); link(box, "mask", ls[2]);
    side.appendChild(box);
    side.appendChild(el("h3", null, "Manifest record"));
    side.appendChild(el("pre", "raw", JSON.stringify(raw, null, 2)));
  }

  /* ---------- help & keys ---------- */
  function showHelp() { $("help").hidden = false; $("help-close").focus(); }
  function hideHelp() { $("help").hidden = true; }
  $("help-close").addEventListener("click", hideHelp);
  $("help").addEventListener("click", function (ev) { if (ev.target === $("help")) hideHelp(); });
  document.addEventListener("keydown", function (ev) {
    var t = ev.target, tag = t && t.tagName;
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (!$("help").hidden) { if (ev.key === "Escape" || ev.key === "?") { hideHelp(); ev.preventDefault(); } return; }
    var typing = tag === "SELECT" || tag === "TEXTAREA" || (tag === "INPUT" && t.type !== "checkbox" && t.type !== "button");
    if (typing) { if (ev.key === "Escape") t.blur(); return; }
    if (ev.key === "?") { showHelp(); ev.preventDefault(); return; }
    if (viewer.hidden) {
      if (ev.key === "/") { $("q").focus(); ev.preventDefault(); }
      return;
    }
    var handled = true;
    switch (ev.key) {
      case "ArrowLeft": go(-1); break;
      case "ArrowRight": go(1); break;
      case "[": case ",": setDivider(V.div - 0.05); break;
      case "]": case ".": setDivider(V.div + 0.05); break;
      case "m": case "M": if (!$("v-mask").disabled) setMask(!V.want); break;
      case "1": oneToOne(); break;
      case "0": fitView(); break;
      case "+": case "=": zoomAt(1.25); break;
      case "-": case "_": zoomAt(0.8); break;
      case "Escape": closeViewer(); break;
      default: handled = false;
    }
    if (handled) ev.preventDefault();
  });

  renderSummary();
  renderFailures();
  initControls();
  update();
  setMask(false);
  // report.html#<input name> opens that image: links to one image can be shared
  function openFromHash() {
    if (location.hash.length <= 1) return;
    var raw = location.hash.slice(1), wanted = null;
    try { wanted = decodeURIComponent(raw); } catch (e) { /* raw bytes of a name that is not UTF-8 */ }
    function match(it) { return it.n === wanted || encPart(String(it.n)) === raw; }
    if (!viewer.hidden && ITEMS[V.idx] && match(ITEMS[V.idx])) return;
    for (var h = 0; h < ITEMS.length; h++) if (match(ITEMS[h])) { openViewer(h); return; }
  }
  window.addEventListener("hashchange", openFromHash);
  openFromHash();
  document.body.dataset.ready = "1";
})();
