/* harness report: renders the embedded run data. Text from the run reaches the
   DOM only through textContent / createTextNode and attribute setters. */
(function () {
  "use strict";

  var LABEL_COLORS = {
    keep: "#1a7f37", not_improved: "#8c959f",
    apply_failed: "#d4a72c", malformed_proposal: "#bf8700", illegal_edit: "#8250df",
    preflight_crash: "#bf3989", crash: "#cf222e", budget_overrun: "#a40e26",
    eval_budget_overrun: "#bc4c00", oom: "#953800", size_failure: "#9a6700",
    gate_miss: "#fb8f44", metric_missing: "#6e7781", tamper: "#6639ba",
    harness_error: "#0550ae", pending: "#d0d7de"
  };
  var ROW_H = 26;
  var SVGNS = "http://www.w3.org/2000/svg";

  var D, N, T, labelOf, levelOf, multiLevel, bestSoFar, children, groupOf, groupNames, groupBy, minimize;
  var state = { filter: { q: "", label: "", group: "" }, sort: "id", collapsed: null, treeRows: null };

  // ---------------------------------------------------------------- helpers

  function el(tag, attrs) {
    var e = document.createElement(tag);
    if (attrs) {
      for (var k in attrs) {
        if (!Object.prototype.hasOwnProperty.call(attrs, k)) continue;
        var v = attrs[k];
        if (v === null || v === undefined || v === false) continue;
        if (k === "class") e.className = v;
        else if (k === "style") e.style.cssText = v;
        else if (k.slice(0, 2) === "on") e.addEventListener(k.slice(2), v);
        else e.setAttribute(k, v);
      }
    }
    for (var i = 2; i < arguments.length; i++) add(e, arguments[i]);
    return e;
  }
  function add(parent, kid) {
    if (kid === null || kid === undefined || kid === false) return;
    if (Array.isArray(kid)) { kid.forEach(function (k) { add(parent, k); }); return; }
    parent.appendChild(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  function sv(tag, attrs) {
    var e = document.createElementNS(SVGNS, tag);
    for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) e.setAttribute(k, attrs[k]);
    for (var i = 2; i < arguments.length; i++) {
      var kid = arguments[i];
      if (kid === null || kid === undefined) continue;
      e.appendChild(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return e;
  }
  function fmt(x, digits) {
    if (x === null || x === undefined || typeof x !== "number" || !isFinite(x)) return "-";
    var a = Math.abs(x);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) return x.toExponential(digits === undefined ? 3 : digits);
    return String(Number(x.toPrecision(digits === undefined ? 5 : digits)));
  }
  function pct(x) { return (x === null || x === undefined) ? "-" : (100 * x).toFixed(1) + "%"; }
  function chip(label) {
    return el("span", { class: "chip", style: "background:" + (LABEL_COLORS[label] || "#57606a") }, label);
  }
  function trialLink(i) {
    return el("a", { href: "#t/" + T.id[i] }, T.id[i]);
  }
  function better(a, b) { return minimize ? a < b : a > b; }
  function fail(message) {
    var app = document.getElementById("app");
    app.textContent = "";
    add(app, el("p", { class: "loading" }, message));
  }

  // ---------------------------------------------------------------- data

  function loadData() {
    var plain = document.getElementById("run-data");
    if (plain) return Promise.resolve(JSON.parse(plain.textContent));
    var gz = document.getElementById("run-data-gz");
    if (!gz) return Promise.reject(new Error("no run data in the page"));
    if (typeof DecompressionStream === "undefined") {
      return Promise.reject(new Error("this browser cannot inflate the compressed run data (no DecompressionStream); open the report in a current Chromium, Firefox or Safari"));
    }
    var b64 = gz.textContent.trim();
    var bin = atob(b64);
    var bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).text().then(JSON.parse);
  }

  function derive() {
    T = D.trials;
    N = T.id.length;
    minimize = D.run.direction === "minimize";
    labelOf = function (i) { return T.label[i] < 0 ? "pending" : D.labels[T.label[i]]; };
    levelOf = function (i) { return D.run.levels[T.fid[i]][0]; };
    var used = {};
    for (var k = 0; k < N; k++) used[T.fid[k]] = 1;
    multiLevel = Object.keys(used).length > 1;
    // Scores of other fidelity levels do not compare: the best so far is the run's level's.
    bestSoFar = new Array(N);
    var best = null;
    for (var i = 0; i < N; i++) {
      var s = T.score[i];
      if (labelOf(i) === "keep" && levelOf(i) === D.run.level && s !== null && (best === null || better(s, best))) best = s;
      bestSoFar[i] = best;
    }
    children = [];
    for (i = 0; i < N; i++) children.push([]);
    for (i = 0; i < N; i++) if (T.parent[i] >= 0 && T.parent[i] !== i) children[T.parent[i]].push(i);
    var anySpec = T.spec.some(function (s) { return s >= 0; });
    groupBy = anySpec ? "specialist" : "agent";
    groupOf = anySpec
      ? function (i) { return T.spec[i] >= 0 ? D.specialists[T.spec[i]] : "(none)"; }
      : function (i) { return D.agents[T.agent[i]]; };
    var seen = {};
    groupNames = [];
    for (i = 0; i < N; i++) { var g = groupOf(i); if (!seen[g]) { seen[g] = 1; groupNames.push(g); } }
    groupNames.sort();
  }

  function indexOfId(id) {
    var m = /^t(\d+)$/.exec(id || "");
    if (!m) return -1;
    var n = parseInt(m[1], 10);
    if (n < N && T.id[n] === id) return n;
    return T.id.indexOf(id);
  }

  // ---------------------------------------------------------------- layout

  var VIEWS = [["overview", "Overview"], ["trials", "Trials"], ["tree", "Lineage tree"], ["groups", "Specialists"], ["stats", "Statistics"]];

  function shell() {
    var app = document.getElementById("app");
    app.textContent = "";
    var r = D.run;
    var verified = r.problem_count === 0;
    var best = indexOfId(r.best);
    var sub = el("div", { class: "sub" },
      el("span", null, "recipe ", el("b", null, r.recipe)),
      el("span", null, "score ", el("b", null, r.metric), " (" + (minimize ? "lower" : "higher") + " is better)"),
      el("span", null, N + " trials"),
      el("span", null, "agent " + r.agent),
      best >= 0 ? el("span", null, "best ", trialLink(best), " " + fmt(T.score[best], 6)) : el("span", null, "no best"),
      el("a", { href: "#problems", class: "badge " + (verified ? "ok" : "bad"), id: "verify-badge" },
        verified ? "lineage verified" : r.problem_count + " problem" + (r.problem_count === 1 ? "" : "s")),
      r.imported ? el("span", { class: "badge info" }, "imported: " + r.imported.format) : null
    );
    var nav = el("nav", { class: "tabs" });
    VIEWS.forEach(function (v) {
      var name = v[0] === "groups" ? (groupBy === "specialist" ? "Specialists" : "Agents") : v[1];
      nav.appendChild(el("a", { href: "#" + v[0], "data-view": v[0] }, name));
    });
    add(app, el("header", { class: "top" }, el("h1", null, "Run " + r.id), sub, nav));
    add(app, el("main", { id: "main" }));
    add(app, el("div", { class: "tooltip", id: "tip" }));
  }

  function route() {
    var h = decodeURIComponent(location.hash.replace(/^#/, "")) || "overview";
    var main = document.getElementById("main");
    main.textContent = "";
    var view = h.split("/")[0];
    document.querySelectorAll("nav.tabs a").forEach(function (a) {
      a.classList.toggle("on", a.getAttribute("data-view") === view);
    });
    try {
      if (view === "t") viewTrial(main, h.slice(2));
      else if (view === "trials") viewTrials(main);
      else if (view === "tree") viewTree(main);
      else if (view === "groups") viewGroups(main);
      else if (view === "stats") viewStats(main);
      else if (view === "problems") viewProblems(main);
      else viewOverview(main);
    } catch (err) {
      add(main, el("p", { class: "fail" }, "This view failed: " + err));
    }
    document.body.setAttribute("data-view", view);
    if (!document.body.hasAttribute("data-ready")) document.body.setAttribute("data-render-ms", String(Math.round(performance.now())));
    document.body.setAttribute("data-ready", "1");
  }

  // ---------------------------------------------------------------- overview

  function viewOverview(main) {
    var counts = {}, kept = 0, failed = 0, scored = 0;
    for (var i = 0; i < N; i++) {
      var l = labelOf(i);
      counts[l] = (counts[l] || 0) + 1;
      if (l === "keep") kept++;
      else if (l !== "not_improved" && l !== "pending") failed++;
      if (T.score[i] !== null) scored++;
    }
    var best = indexOfId(D.run.best);
    add(main, el("div", { class: "cards" },
      card("trials", N), card("kept", kept), card("failed", failed), card("scored", scored),
      card("best " + D.run.metric, best >= 0 ? fmt(T.score[best], 6) : "-"),
      card("problems", D.run.problem_count)));
    var p1 = el("section", { class: "panel" }, el("h2", null, "Score per trial, with the best so far"));
    p1.appendChild(scoreChart());
    add(main, p1);
    var p2 = el("section", { class: "panel" }, el("h2", null, "Labels over time"));
    p2.appendChild(labelChart());
    add(main, p2);
    var two = el("div", { class: "two" });
    var p3 = el("section", { class: "panel" }, el("h2", null, "Label counts"));
    var tb = el("table", { class: "t", id: "label-counts" }, el("tr", null, el("th", null, "label"), el("th", { class: "num" }, "trials"), el("th", { class: "num" }, "share"), el("th", null, "")));
    Object.keys(counts).sort(function (a, b) { return counts[b] - counts[a]; }).forEach(function (l) {
      tb.appendChild(el("tr", null, el("td", null, chip(l)), el("td", { class: "num" }, counts[l]),
        el("td", { class: "num" }, pct(counts[l] / N)),
        el("td", null, el("span", { class: "bar", style: "width:" + Math.max(1, Math.round(200 * counts[l] / N)) + "px;background:" + (LABEL_COLORS[l] || "#57606a") }))));
    });
    p3.appendChild(tb);
    two.appendChild(p3);
    two.appendChild(runPanel());
    add(main, two);
  }

  function card(k, v) { return el("div", { class: "card" }, el("div", { class: "v" }, String(v)), el("div", { class: "k" }, k)); }

  function runPanel() {
    var r = D.run;
    var p = el("section", { class: "panel" }, el("h2", null, "Run"));
    var dl = el("dl", { class: "meta" });
    function row(k, v) { if (v === null || v === undefined || v === "") return; dl.appendChild(el("dt", null, k)); dl.appendChild(el("dd", null, v)); }
    row("run id", r.id);
    row("recipe", r.recipe);
    row("description", r.description);
    row("metric", r.metric + " (" + r.direction + (r.noise ? ", noise margin " + r.noise : "") + ")");
    row("gates", r.gates.map(function (g) { return g[0] + " " + g[1] + " " + g[2]; }).join(", ") || "none");
    row("budgets", "train " + r.budgets.train_s + " s, eval " + r.budgets.eval_s + " s, artifact " + r.budgets.artifact_bytes + " bytes, diff " + r.budgets.max_diff_lines + " lines");
    row("agent", r.agent);
    row("seed", String(r.seed));
    row("created", r.created);
    row("harness", r.version);
    row("baseline commit", r.baseline);
    row("evaluator", r.evaluator);
    if (r.imported) {
      row("imported from", r.imported.format + ": " + r.imported.path);
      row("source sha256", r.imported.sha256);
      row("import problems", String(r.imported.problems.length));
    }
    row("report generated", r.generated);
    p.appendChild(dl);
    return p;
  }

  function quantile(sorted, q) {
    if (!sorted.length) return null;
    var pos = (sorted.length - 1) * q, lo = Math.floor(pos), hi = Math.ceil(pos);
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
  }

  function ticks(lo, hi, n) {
    var span = hi - lo;
    if (!(span > 0)) return [lo];
    var step = Math.pow(10, Math.floor(Math.log10(span / n)));
    var err = span / n / step;
    if (err >= 7.5) step *= 10; else if (err >= 3.5) step *= 5; else if (err >= 1.5) step *= 2;
    var out = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
    return out;
  }

  function scoreChart() {
    var W = 1100, H = 340, L = 64, R = 16, TOP = 12, B = 58;
    var scores = [];
    for (var i = 0; i < N; i++) if (T.score[i] !== null) scores.push(T.score[i]);
    scores.sort(function (a, b) { return a - b; });
    var wrap = el("div");
    var svg = sv("svg", { viewBox: "0 0 " + W + " " + H, class: "chart", id: "score-chart", role: "img", "aria-label": "score per trial" });
    if (!scores.length) {
      svg.appendChild(sv("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "no trial has a score"));
      wrap.appendChild(svg);
      return wrap;
    }
    var lo = scores[0], hi = scores[scores.length - 1], clipped = false;
    if (scores.length > 50) {
      var q1 = quantile(scores, 0.02), q9 = quantile(scores, 0.98);
      if ((q9 - q1) < 0.5 * (hi - lo)) { lo = q1; hi = q9; clipped = true; }
    }
    // Keep the best so far in view.
    bestSoFar.forEach(function (b) { if (b !== null) { lo = Math.min(lo, b); hi = Math.max(hi, b); } });
    if (hi === lo) { hi += Math.abs(hi) * 0.05 + 1e-9; lo -= Math.abs(lo) * 0.05 + 1e-9; }
    var pad = (hi - lo) * 0.05; lo -= pad; hi += pad;
    var plotH = H - TOP - B, plotW = W - L - R;
    var x = function (i) { return L + (N <= 1 ? plotW / 2 : plotW * i / (N - 1)); };
    var y = function (v) { return TOP + plotH * (1 - (Math.min(hi, Math.max(lo, v)) - lo) / (hi - lo)); };
    ticks(lo, hi, 6).forEach(function (v) {
      if (v < lo || v > hi) return;
      svg.appendChild(sv("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
      svg.appendChild(sv("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" }, fmt(v, 4)));
    });
    ticks(0, Math.max(1, N - 1), 10).forEach(function (v) {
      if (v !== Math.round(v) || v > N - 1) return;
      svg.appendChild(sv("line", { x1: x(v), x2: x(v), y1: TOP + plotH, y2: TOP + plotH + 4, class: "axis" }));
      svg.appendChild(sv("text", { x: x(v), y: TOP + plotH + 16, "text-anchor": "middle" }, String(v)));
    });
    svg.appendChild(sv("line", { x1: L, x2: W - R, y1: TOP + plotH, y2: TOP + plotH, class: "axis" }));
    svg.appendChild(sv("line", { x1: L, x2: L, y1: TOP, y2: TOP + plotH, class: "axis" }));
    svg.appendChild(sv("text", { x: L + plotW / 2, y: H - 4, "text-anchor": "middle" }, "trial number (unscored trials: ticks in the strip below the axis)"));
    svg.appendChild(sv("text", { x: 12, y: TOP + plotH / 2, transform: "rotate(-90 12 " + (TOP + plotH / 2) + ")", "text-anchor": "middle" }, D.run.metric));
    // Points: one path per label ("M x y h0" with round caps draws a dot).
    var paths = {}, strip = {};
    var r = N > 2000 ? 3 : N > 300 ? 4 : 6;
    for (i = 0; i < N; i++) {
      var l = labelOf(i);
      if (T.score[i] !== null) {
        paths[l] = (paths[l] || "") + "M" + x(i).toFixed(1) + " " + y(T.score[i]).toFixed(1) + "h0";
      } else {
        strip[l] = (strip[l] || "") + "M" + x(i).toFixed(1) + " " + (TOP + plotH + 24) + "v10";
      }
    }
    Object.keys(strip).forEach(function (l) {
      svg.appendChild(sv("path", { d: strip[l], stroke: LABEL_COLORS[l] || "#57606a", "stroke-width": N > 2000 ? 1 : 2, fill: "none", class: "strip", "data-label": l }));
    });
    var d = "", prev = null;
    for (i = 0; i < N; i++) {
      var b = bestSoFar[i];
      if (b === null) { prev = null; continue; }
      if (prev === null) d += "M" + x(i).toFixed(1) + " " + y(b).toFixed(1);
      else d += "H" + x(i).toFixed(1) + "V" + y(b).toFixed(1);
      prev = b;
    }
    if (d) svg.appendChild(sv("path", { d: d + "H" + x(N - 1).toFixed(1), class: "best", id: "best-line" }));
    ["not_improved"].concat(Object.keys(paths).filter(function (l) { return l !== "not_improved" && l !== "keep"; }), ["keep"]).forEach(function (l) {
      if (!paths[l]) return;
      svg.appendChild(sv("path", { d: paths[l], stroke: LABEL_COLORS[l] || "#57606a", "stroke-width": r, "stroke-linecap": "round", fill: "none", class: "points", "data-label": l, opacity: l === "keep" ? 1 : 0.75 }));
    });
    var cursor = sv("line", { x1: 0, x2: 0, y1: TOP, y2: TOP + plotH + 36, stroke: "#57606a", "stroke-dasharray": "3 3", visibility: "hidden" });
    svg.appendChild(cursor);
    var overlay = sv("rect", { x: L, y: TOP, width: plotW, height: plotH + 40, fill: "transparent", style: "cursor:pointer" });
    svg.appendChild(overlay);
    function nearest(ev) {
      var box = svg.getBoundingClientRect();
      var px = (ev.clientX - box.left) * W / box.width;
      var i = N <= 1 ? 0 : Math.round((px - L) / plotW * (N - 1));
      return Math.max(0, Math.min(N - 1, i));
    }
    var tip = document.getElementById("tip");
    overlay.addEventListener("mousemove", function (ev) {
      var i = nearest(ev);
      cursor.setAttribute("x1", x(i)); cursor.setAttribute("x2", x(i)); cursor.setAttribute("visibility", "visible");
      tip.textContent = T.id[i] + "  " + labelOf(i) + "  " + D.run.metric + " " + fmt(T.score[i], 6) + "  best " + fmt(bestSoFar[i], 6) + "\n" + T.hyp[i];
      tip.style.display = "block";
      tip.style.left = Math.min(ev.clientX + 14, window.innerWidth - 440) + "px";
      tip.style.top = (ev.clientY + 14) + "px";
    });
    overlay.addEventListener("mouseleave", function () { tip.style.display = "none"; cursor.setAttribute("visibility", "hidden"); });
    overlay.addEventListener("click", function (ev) { tip.style.display = "none"; location.hash = "#t/" + T.id[nearest(ev)]; });
    wrap.appendChild(svg);
    var legend = el("div", { class: "legend" }, el("span", null, el("span", { class: "sw", style: "background:#0550ae" }), "best so far (kept)"));
    Object.keys(paths).concat(Object.keys(strip)).filter(function (v, i, a) { return a.indexOf(v) === i; }).forEach(function (l) {
      legend.appendChild(el("span", null, el("span", { class: "sw", style: "background:" + (LABEL_COLORS[l] || "#57606a") }), l));
    });
    if (clipped) legend.appendChild(el("span", { class: "note" }, "y axis clipped to the 2nd-98th percentile of the scores; outliers sit on the edge"));
    wrap.appendChild(legend);
    return wrap;
  }

  function labelChart() {
    var W = 1100, H = 200, L = 64, R = 16, TOP = 8, B = 30;
    var per = Math.max(1, Math.ceil(N / 60));
    var bins = Math.max(1, Math.ceil(N / per));
    var present = {};
    var counts = [];
    for (var b = 0; b < bins; b++) counts.push({});
    for (var i = 0; i < N; i++) {
      var k = Math.min(bins - 1, Math.floor(i / per));
      var l = labelOf(i);
      counts[k][l] = (counts[k][l] || 0) + 1;
      present[l] = 1;
    }
    var order = D.labels.concat(["pending"]).filter(function (l) { return present[l]; });
    var svg = sv("svg", { viewBox: "0 0 " + W + " " + H, class: "chart", id: "label-chart", role: "img", "aria-label": "labels over time" });
    var plotW = W - L - R, plotH = H - TOP - B, bw = plotW / bins;
    for (b = 0; b < bins; b++) {
      var total = 0;
      order.forEach(function (l) { total += counts[b][l] || 0; });
      var y0 = TOP + plotH;
      order.forEach(function (l) {
        var c = counts[b][l] || 0;
        if (!c) return;
        var h = plotH * c / total;
        var first = Math.floor(b * per), last = Math.min(N - 1, Math.floor((b + 1) * per) - 1);
        var rect = sv("rect", { x: (L + b * bw + 0.5).toFixed(1), y: (y0 - h).toFixed(1), width: Math.max(0.5, bw - 1).toFixed(1), height: h.toFixed(1), fill: LABEL_COLORS[l] || "#57606a" },
          sv("title", {}, T.id[first] + "-" + T.id[last] + ": " + l + " " + c + " of " + total));
        svg.appendChild(rect);
        y0 -= h;
      });
    }
    [0, 0.5, 1].forEach(function (f) {
      svg.appendChild(sv("text", { x: L - 6, y: TOP + plotH * (1 - f) + 4, "text-anchor": "end" }, Math.round(f * 100) + "%"));
    });
    svg.appendChild(sv("text", { x: L, y: H - 8 }, T.id[0] || ""));
    svg.appendChild(sv("text", { x: W - R, y: H - 8, "text-anchor": "end" }, T.id[N - 1] || ""));
    svg.appendChild(sv("text", { x: L + plotW / 2, y: H - 8, "text-anchor": "middle" }, bins + " bins of " + per + " trial" + (per === 1 ? "" : "s")));
    var wrap = el("div");
    wrap.appendChild(svg);
    var legend = el("div", { class: "legend" });
    order.forEach(function (l) { legend.appendChild(el("span", null, el("span", { class: "sw", style: "background:" + (LABEL_COLORS[l] || "#57606a") }), l)); });
    wrap.appendChild(legend);
    return wrap;
  }

  // ---------------------------------------------------------------- virtual list

  function virtualList(container, count, renderRow) {
    var spacer = el("div", { class: "spacer", style: "height:" + (count * ROW_H) + "px" });
    var win = el("div", { class: "win" });
    container.appendChild(spacer);
    container.appendChild(win);
    var drawn = [-1, -1];
    function draw() {
      var top = container.scrollTop, h = container.clientHeight || 600;
      var first = Math.max(0, Math.floor(top / ROW_H) - 10);
      var last = Math.min(count, Math.ceil((top + h) / ROW_H) + 10);
      if (first === drawn[0] && last === drawn[1]) return;
      drawn = [first, last];
      win.style.transform = "translateY(" + (first * ROW_H) + "px)";
      win.textContent = "";
      var frag = document.createDocumentFragment();
      for (var k = first; k < last; k++) frag.appendChild(renderRow(k));
      win.appendChild(frag);
    }
    container.addEventListener("scroll", function () { window.requestAnimationFrame(draw); });
    draw();
    return { redraw: function () { drawn = [-1, -1]; draw(); } };
  }

  // ---------------------------------------------------------------- trials

  function viewTrials(main) {
    var f = state.filter;
    var q = el("input", { type: "search", placeholder: "search id, hypothesis, agent, specialist, domain", value: f.q, id: "trial-search" });
    var labelSel = el("select", { id: "label-filter" }, el("option", { value: "" }, "all labels"), el("option", { value: "failures" }, "failures"));
    var present = {};
    for (var i = 0; i < N; i++) present[labelOf(i)] = 1;
    D.labels.concat(["pending"]).forEach(function (l) { if (present[l]) labelSel.appendChild(el("option", { value: l }, l)); });
    labelSel.value = f.label;
    var groupSel = el("select", { id: "group-filter" }, el("option", { value: "" }, "all " + groupBy + "s"));
    groupNames.forEach(function (g) { groupSel.appendChild(el("option", { value: g }, g)); });
    groupSel.value = f.group;
    var shown = el("span", { class: "note" });
    add(main, el("div", { class: "filters" }, q, labelSel, groupSel, shown));
    var rowClass = "row trial-row" + (multiLevel ? " lv" : "");
    var head = el("div", { class: rowClass + " head" },
      el("span", { class: "sort", onclick: function () { state.sort = "id"; refresh(); } }, "trial"),
      el("span", null, "parent"), el("span", null, groupBy), multiLevel ? el("span", null, "fidelity") : null, el("span", null, "label"),
      el("span", { class: "sort", onclick: function () { state.sort = state.sort === "score" ? "id" : "score"; refresh(); } }, D.run.metric),
      el("span", null, "best so far"), el("span", null, "hypothesis"));
    var box = el("div", { class: "vlist", id: "trial-list" });
    add(main, head);
    add(main, box);
    var rows = [];
    function matches(i) {
      var l = labelOf(i);
      if (f.label === "failures") { if (l === "keep" || l === "not_improved" || l === "pending") return false; }
      else if (f.label && l !== f.label) return false;
      if (f.group && groupOf(i) !== f.group) return false;
      if (f.q) {
        var hay = (T.id[i] + " " + T.hyp[i] + " " + D.agents[T.agent[i]] + " " + groupOf(i) + " " + (T.domain[i] || "") + " " + l + " " + levelOf(i)).toLowerCase();
        if (hay.indexOf(f.q.toLowerCase()) < 0) return false;
      }
      return true;
    }
    function refresh() {
      rows = [];
      for (var i = 0; i < N; i++) if (matches(i)) rows.push(i);
      if (state.sort === "score") {
        rows.sort(function (a, b) {
          var sa = T.score[a], sb = T.score[b];
          if (sa === null) return sb === null ? a - b : 1;
          if (sb === null) return -1;
          return minimize ? sa - sb : sb - sa;
        });
      }
      shown.textContent = rows.length + " of " + N + " trials" + (state.sort === "score" ? ", best score first" : "");
      box.textContent = "";
      box.scrollTop = 0;
      virtualList(box, rows.length, function (k) {
        var i = rows[k];
        var l = labelOf(i);
        return el("div", { class: rowClass, "data-trial": T.id[i], onclick: function () { location.hash = "#t/" + T.id[i]; } },
          el("span", { class: "num" }, T.id[i]),
          el("span", { class: "num" }, T.parent[i] >= 0 ? T.id[T.parent[i]] : "-"),
          el("span", null, groupOf(i)),
          multiLevel ? el("span", { class: "level", "data-level": levelOf(i) }, levelOf(i) + (T.move[i] === "promotion" ? " \u2191" : T.move[i] === "reference" ? " \u2193" : "")) : null,
          el("span", null, chip(l)),
          el("span", { class: "num" }, fmt(T.score[i], 6)),
          el("span", { class: "num" }, fmt(bestSoFar[i], 6)),
          el("span", { class: "hyp" }, T.hyp[i]));
      });
    }
    var timer = null;
    q.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(function () { f.q = q.value; refresh(); }, 120); });
    labelSel.addEventListener("change", function () { f.label = labelSel.value; refresh(); });
    groupSel.addEventListener("change", function () { f.group = groupSel.value; refresh(); });
    refresh();
  }

  // ---------------------------------------------------------------- tree

  function bestPath() {
    var on = {};
    var i = indexOfId(D.run.best), guard = 0;
    while (i >= 0 && guard++ <= N) { on[i] = 1; i = T.parent[i]; }
    return on;
  }

  function viewTree(main) {
    if (!state.collapsed) state.collapsed = {};
    var onBest = bestPath();
    var roots = [];
    for (var i = 0; i < N; i++) if (T.parent[i] < 0 || T.parent[i] === i) roots.push(i);
    var box = el("div", { class: "vlist", id: "tree-list" });
    var info = el("span", { class: "note" });
    function visible() {
      var out = [], stack = [];
      for (var r = roots.length - 1; r >= 0; r--) stack.push([roots[r], 0]);
      var guard = 0;
      while (stack.length && guard++ < 4 * N + 10) {
        var top = stack.pop(), n = top[0], depth = top[1];
        out.push([n, depth]);
        if (state.collapsed[n]) continue;
        var ch = children[n];
        for (var c = ch.length - 1; c >= 0; c--) stack.push([ch[c], depth + 1]);
      }
      return out;
    }
    function subtreeSize(n) {
      var size = 0, stack = [n];
      while (stack.length) { var m = stack.pop(); size++; children[m].forEach(function (c) { stack.push(c); }); }
      return size;
    }
    function refresh() {
      var rows = visible();
      info.textContent = rows.length + " of " + N + " trials shown; highlighted: the lineage of the best trial";
      box.textContent = "";
      virtualList(box, rows.length, function (k) {
        var n = rows[k][0], depth = rows[k][1];
        var ch = children[n].length;
        var tog = el("span", { class: "tog" }, ch ? (state.collapsed[n] ? "\u25b8" : "\u25be") : "");
        if (ch) tog.addEventListener("click", function (ev) { ev.stopPropagation(); state.collapsed[n] = !state.collapsed[n]; refresh(); });
        return el("div", { class: "row tree-row" + (onBest[n] ? " onbest" : ""), "data-trial": T.id[n], onclick: function () { location.hash = "#t/" + T.id[n]; } },
          el("span", { class: "ind", style: "width:" + (Math.min(depth, 40) * 16) + "px" }),
          tog,
          el("span", { class: "num" }, T.id[n]),
          multiLevel ? el("span", { class: "level", "data-level": levelOf(n) }, levelOf(n)) : null,
          T.move[n] ? el("span", { class: "note" }, T.move[n] + " of " + T.id[T.parent[n]] + " (" + levelOf(T.parent[n]) + " \u2192 " + levelOf(n) + ")") : null,
          chip(labelOf(n)),
          el("span", { class: "num" }, fmt(T.score[n], 6)),
          ch ? el("span", { class: "note" }, ch + " child" + (ch === 1 ? "" : "ren") + (state.collapsed[n] ? ", " + (subtreeSize(n) - 1) + " below" : "")) : null,
          el("span", { class: "hyp" }, T.hyp[n]));
      });
    }
    function setAll(collapse) {
      state.collapsed = {};
      if (collapse) for (var i = 0; i < N; i++) if (children[i].length && !onBest[i]) state.collapsed[i] = true;
      refresh();
    }
    add(main, el("div", { class: "filters" },
      el("button", { class: "b", onclick: function () { setAll(false); } }, "expand all"),
      el("button", { class: "b", onclick: function () { setAll(true); } }, "collapse all but the best's lineage"),
      info));
    add(main, box);
    refresh();
  }

  // ---------------------------------------------------------------- groups

  function viewGroups(main) {
    var stats = D.stats && D.stats.dynamics;
    var dyn = {};
    if (stats && stats.groups) stats.groups.forEach(function (g) { dyn[g.group] = g; });
    var rates = {};
    if (D.stats && D.stats.rates) D.stats.rates.groups.forEach(function (g) { rates[g.group] = g; });
    add(main, el("p", { class: "note" }, "One panel per " + groupBy + " (the baseline t0000 is left out of the rates). Domains: " + ((stats && stats.domain_source) || "-") + "."));
    var grid = el("div", { class: "groups", id: "group-panels" });
    groupNames.forEach(function (g) {
      var idx = [];
      for (var i = 1; i < N; i++) if (groupOf(i) === g) idx.push(i);
      if (!idx.length) return;
      var counts = {}, kept = [], best = null, bestI = -1;
      idx.forEach(function (i) {
        var l = labelOf(i);
        counts[l] = (counts[l] || 0) + 1;
        if (l === "keep") kept.push(i);
        if (l === "keep" && T.score[i] !== null && (best === null || better(T.score[i], best))) { best = T.score[i]; bestI = i; }
      });
      var stack = el("div", { class: "stack" });
      Object.keys(counts).sort().forEach(function (l) {
        stack.appendChild(el("span", { style: "width:" + (100 * counts[l] / idx.length) + "%;background:" + (LABEL_COLORS[l] || "#57606a"), title: l + " " + counts[l] }));
      });
      var panel = el("div", { class: "group-panel", "data-group": g },
        el("h3", null, g),
        el("div", null, idx.length + " trials, " + kept.length + " kept (" + pct(kept.length / idx.length) + "), " +
          (rates[g] ? "failure rate " + pct(rates[g].failure_rate) : "")),
        el("div", null, "best kept: ", bestI >= 0 ? [trialLink(bestI), " " + fmt(best, 6)] : "-"),
        stack,
        el("div", { class: "legend" }, Object.keys(counts).sort().map(function (l) { return el("span", null, el("span", { class: "sw", style: "background:" + (LABEL_COLORS[l] || "#57606a") }), l + " " + counts[l]); })),
        sparkline(idx));
      if (dyn[g]) {
        var top = Object.keys(dyn[g].domains).slice(0, 6).map(function (k) { return k + " " + dyn[g].domains[k]; }).join(", ");
        panel.appendChild(el("div", { class: "note" }, "domains: " + top + "; entropy " + fmt(dyn[g].entropy_bits, 3) + " bits; by window: " +
          dyn[g].windows.map(function (w) { return fmt(w.entropy_bits, 2); }).join(" ")));
      }
      if (kept.length) {
        panel.appendChild(el("div", { class: "note" }, "kept: ", kept.slice(0, 30).map(function (i, k) { return [k ? ", " : "", trialLink(i)]; }), kept.length > 30 ? " and " + (kept.length - 30) + " more" : ""));
      }
      grid.appendChild(panel);
    });
    add(main, grid);
  }

  function sparkline(idx) {
    var W = 360, H = 70, P = 4;
    var vals = idx.filter(function (i) { return T.score[i] !== null; });
    var svg = sv("svg", { viewBox: "0 0 " + W + " " + H, class: "chart spark" });
    if (!vals.length) { svg.appendChild(sv("text", { x: 4, y: H / 2 }, "no scored trial")); return svg; }
    var lo = Infinity, hi = -Infinity;
    vals.forEach(function (i) { lo = Math.min(lo, T.score[i]); hi = Math.max(hi, T.score[i]); });
    bestSoFar.forEach(function (b) { if (b !== null) { lo = Math.min(lo, b); hi = Math.max(hi, b); } });
    if (hi === lo) { hi += 1e-9; lo -= 1e-9; }
    var x = function (i) { return P + (W - 2 * P) * (N <= 1 ? 0.5 : i / (N - 1)); };
    var y = function (v) { return P + (H - 2 * P) * (1 - (v - lo) / (hi - lo)); };
    var d = "", prev = null;
    for (var i = 0; i < N; i++) {
      var b = bestSoFar[i];
      if (b === null) continue;
      d += (prev === null ? "M" : "H" + x(i).toFixed(1) + "V") + (prev === null ? x(i).toFixed(1) + " " : "") + y(b).toFixed(1);
      prev = b;
    }
    if (d) svg.appendChild(sv("path", { d: d, fill: "none", stroke: "#b6e3ff", "stroke-width": 2 }));
    var byLabel = {};
    vals.forEach(function (i) { var l = labelOf(i); byLabel[l] = (byLabel[l] || "") + "M" + x(i).toFixed(1) + " " + y(T.score[i]).toFixed(1) + "h0"; });
    Object.keys(byLabel).forEach(function (l) { svg.appendChild(sv("path", { d: byLabel[l], stroke: LABEL_COLORS[l] || "#57606a", "stroke-width": 4, "stroke-linecap": "round", fill: "none" })); });
    return svg;
  }

  // ---------------------------------------------------------------- statistics

  function viewStats(main) {
    var s = D.stats;
    if (!s || s.error) { add(main, el("p", { class: "fail" }, "Statistics unavailable: " + (s ? s.error : "none"))); return; }
    var v = s.variance;
    var p = el("section", { class: "panel", id: "stats-variance" }, el("h2", null, "Variance of the score over the knobs (one-way ANOVA)"),
      el("p", { class: "note" }, v.n + " scored trials; " + v.note));
    if (v.knobs.length) {
      var t = el("table", { class: "t" }, el("tr", null, ["knob", "kind", "n", "levels", "F", "p", "eta\u00b2", ""].map(function (h, k) { return el("th", { class: k > 1 && k < 7 ? "num" : null }, h); })));
      v.knobs.slice().sort(function (a, b) { return (b.eta_sq || 0) - (a.eta_sq || 0); }).forEach(function (e) {
        t.appendChild(el("tr", null, el("td", null, e.factor), el("td", null, e.kind), el("td", { class: "num" }, e.n), el("td", { class: "num" }, e.levels),
          el("td", { class: "num" }, fmt(e.f, 4)), el("td", { class: "num" }, fmt(e.p, 3)), el("td", { class: "num" }, fmt(e.eta_sq, 3)),
          el("td", null, el("span", { class: "bar", style: "width:" + Math.round(160 * (e.eta_sq || 0)) + "px" }))));
      });
      p.appendChild(t);
      var share = Object.keys(v.class_share).map(function (k) { return k + " " + pct(v.class_share[k]) + " (sum eta\u00b2 " + fmt(v.class_eta_sq[k], 3) + ")"; }).join(", ");
      p.appendChild(el("p", null, "Class share of the explained variance: ", el("b", null, share || "-")));
    }
    if (v.domain) p.appendChild(el("p", null, "By domain: " + v.domain.levels + " levels over " + v.domain.n + " scored trials, F " + fmt(v.domain.f, 4) + ", p " + fmt(v.domain.p, 3) + ", eta\u00b2 " + fmt(v.domain.eta_sq, 3)));
    add(main, p);
    var c = s.convergence;
    add(main, el("section", { class: "panel", id: "stats-convergence" }, el("h2", null, "Convergence of the best so far"),
      el("p", null, c.improvements + " improvements; final best " + fmt(c.final_best, 6) + "."),
      c.a !== null ? el("p", null, "gap to the final best \u2248 " + fmt(c.a, 4) + " \u00b7 n^-" + fmt(c.exponent, 3) + "  (R\u00b2 " + fmt(c.r_squared, 3) + ", " + c.points + " points)")
        : el("p", { class: "note" }, "power law: " + c.note)));
    var dy = s.dynamics;
    var dp = el("section", { class: "panel", id: "stats-dynamics" }, el("h2", null, "Search dynamics by " + dy.group_by + " (domains from " + dy.domain_source + ")"));
    var dt = el("table", { class: "t" }, el("tr", null, el("th", null, dy.group_by), el("th", { class: "num" }, "trials"), el("th", { class: "num" }, "entropy (bits)"), el("th", null, "entropy by window"), el("th", null, "top domains")));
    [dy.overall].concat(dy.groups).forEach(function (g) {
      dt.appendChild(el("tr", null, el("td", null, g.group), el("td", { class: "num" }, g.n), el("td", { class: "num" }, fmt(g.entropy_bits, 3)),
        el("td", null, g.windows.map(function (w) { return fmt(w.entropy_bits, 2); }).join("  ")),
        el("td", null, Object.keys(g.domains).slice(0, 5).map(function (k) { return k + " " + g.domains[k]; }).join(", "))));
    });
    dp.appendChild(dt);
    if (dy.divergences.length) {
      var names = dy.groups.map(function (g) { return g.group; });
      var jsd = {};
      dy.divergences.forEach(function (d) { jsd[d.a + "\u0000" + d.b] = d.jsd_bits; jsd[d.b + "\u0000" + d.a] = d.jsd_bits; });
      var mt = el("table", { class: "t", id: "jsd-matrix" }, el("tr", null, el("th", null, "JSD (bits)"), names.map(function (n) { return el("th", { class: "num" }, n); })));
      names.forEach(function (a) {
        mt.appendChild(el("tr", null, el("th", null, a), names.map(function (b) { return el("td", { class: "num" }, a === b ? "0" : fmt(jsd[a + "\u0000" + b], 3)); })));
      });
      dp.appendChild(el("h3", null, "Pairwise Jensen-Shannon divergence of the domain distributions"));
      dp.appendChild(mt);
    }
    add(main, dp);
    var r = s.rates;
    var rp = el("section", { class: "panel", id: "stats-rates" }, el("h2", null, "Keep and failure rates"),
      el("p", null, r.n + " trials (the baseline left out): keep " + pct(r.keep_rate) + ", failure " + pct(r.failure_rate)));
    var rt = el("table", { class: "t" }, el("tr", null, el("th", null, dy.group_by), el("th", { class: "num" }, "trials"), el("th", { class: "num" }, "keep"), el("th", { class: "num" }, "failure"), el("th", null, "labels")));
    r.groups.forEach(function (g) {
      rt.appendChild(el("tr", null, el("td", null, g.group), el("td", { class: "num" }, g.n), el("td", { class: "num" }, pct(g.keep_rate)), el("td", { class: "num" }, pct(g.failure_rate)),
        el("td", null, Object.keys(g.labels).map(function (l) { return l + " " + g.labels[l]; }).join(", "))));
    });
    rp.appendChild(rt);
    add(main, rp);
    if (s.fidelity) add(main, fidelityPanel(s.fidelity));
    (s.notes || []).forEach(function (n) { add(main, el("p", { class: "note" }, "note: " + n)); });
  }

  function fidelityPanel(f) {
    var p = el("section", { class: "panel", id: "stats-fidelity" }, el("h2", null, "Fidelity levels (" + f.policy + " policy; run level " + f.target + ")"),
      el("p", null, fmt(f.spent_units, 4) + " units spent" + (f.budget !== null ? " of a budget of " + fmt(f.budget, 4) : "") + " (the baseline not counted)."));
    var ct = el("table", { class: "t", id: "fidelity-compute" }, el("tr", null, ["level", "cost", "trials", "units", "wallclock (s)"].map(function (h, k) { return el("th", { class: k ? "num" : null }, h); })));
    f.compute.forEach(function (c) {
      ct.appendChild(el("tr", null, el("td", null, c.level), el("td", { class: "num" }, fmt(c.cost, 3)), el("td", { class: "num" }, c.trials),
        el("td", { class: "num" }, fmt(c.units, 4)), el("td", { class: "num" }, fmt(c.wallclock_s, 4))));
    });
    p.appendChild(ct);
    p.appendChild(el("h3", null, "How well a level predicts another: Spearman rank correlation of the same code's scores"));
    var rt = el("table", { class: "t", id: "fidelity-correlations" }, el("tr", null, ["levels", "n", "rho", "p"].map(function (h, k) { return el("th", { class: k ? "num" : null }, h); })));
    f.correlations.forEach(function (c) {
      rt.appendChild(el("tr", null, el("td", null, c.low + " \u2192 " + c.high + (c.adjacent ? "" : " (not adjacent)")), el("td", { class: "num" }, c.n),
        el("td", { class: "num" }, fmt(c.spearman, 3)), el("td", { class: "num" }, fmt(c.p, 3))));
    });
    p.appendChild(rt);
    return p;
  }

  // ---------------------------------------------------------------- problems

  function viewProblems(main) {
    var r = D.run;
    var p = el("section", { class: "panel", id: "problems" }, el("h2", null, r.problem_count ? r.problem_count + " problems found by the audit" : "The lineage verifies: no problems"));
    if (r.problems.length) {
      p.appendChild(el("ul", { class: "problems" }, r.problems.map(function (x) { return el("li", null, x); })));
      if (r.problem_count > r.problems.length) p.appendChild(el("p", { class: "note" }, "(" + (r.problem_count - r.problems.length) + " more; run harness replay --verify)"));
    }
    add(main, p);
    if (r.imported) {
      var ip = el("section", { class: "panel", id: "import-problems" }, el("h2", null, "Import of " + r.imported.path + " (" + r.imported.format + ")"),
        el("p", { class: "note" }, "sha256 " + r.imported.sha256 + "; " + r.imported.problems.length + " malformed or contradictory rows, imported as far as they could be recovered:"));
      ip.appendChild(el("ul", { class: "problems" }, r.imported.problems.map(function (x) { return el("li", null, x); })));
      add(main, ip);
    }
  }

  // ---------------------------------------------------------------- trial page

  function viewTrial(main, id) {
    var i = indexOfId(id);
    if (i < 0) { add(main, el("p", { class: "fail" }, "No trial " + id + " in this run.")); return; }
    var d = D.details[i];
    var l = labelOf(i);
    var nav = el("div", { class: "trial-nav" },
      i > 0 ? el("a", { href: "#t/" + T.id[i - 1], id: "prev-trial" }, "\u2190 " + T.id[i - 1]) : null,
      i < N - 1 ? el("a", { href: "#t/" + T.id[i + 1], id: "next-trial" }, T.id[i + 1] + " \u2192") : null,
      el("span", { class: "note" }, "|"),
      el("a", { href: "#trials" }, "all trials"),
      T.parent[i] >= 0 ? el("span", { id: "parent-link" }, "parent ", trialLink(T.parent[i]),
        levelOf(T.parent[i]) !== levelOf(i) ? " (" + levelOf(T.parent[i]) + " \u2192 " + levelOf(i) + (T.move[i] ? ", " + T.move[i] : "") + ")" : "")
        : el("span", { class: "note" }, "no parent (baseline)"),
      children[i].length ? el("span", null, "children ", children[i].slice(0, 20).map(function (c, k) { return [k ? ", " : "", trialLink(c)]; }),
        children[i].length > 20 ? " and " + (children[i].length - 20) + " more" : "") : null);
    add(main, nav);
    add(main, el("div", { class: "trial-head", id: "trial-page", "data-trial": T.id[i] },
      el("h2", null, T.id[i]), chip(l),
      el("span", null, D.run.metric + " " + fmt(T.score[i], 8)),
      el("span", { class: "note" }, "best so far " + fmt(bestSoFar[i], 6)),
      D.run.best === T.id[i] ? el("span", { class: "badge ok" }, "best") : null));
    add(main, el("div", { class: "hypothesis", id: "hypothesis" }, d.h));
    var two = el("div", { class: "two" });
    var meta = el("dl", { class: "meta" });
    function row(k, v) { if (v === null || v === undefined || v === "") return; meta.appendChild(el("dt", null, k)); meta.appendChild(el("dd", null, v)); }
    row("agent", D.agents[T.agent[i]]);
    row("specialist", T.spec[i] >= 0 ? D.specialists[T.spec[i]] : "none");
    row("domain", T.domain[i]);
    row("model", d.mo);
    if (d.u) row("usage", d.u[0] + " in / " + d.u[1] + " out tokens, $" + fmt(d.u[2], 4));
    row("expected delta", d.x !== undefined ? fmt(d.x, 6) : null);
    row("agent failure", d.fr);
    row("fidelity", d.f + (T.move[i] ? " (" + T.move[i] + " of " + T.id[T.parent[i]] + ", same code)" : ""));
    row("seeds", (d.sd || []).join(", ") || "-");
    row("commit", d.c);
    if (d.t) { row("started", d.t[0]); row("finished", d.t[1]); }
    row("image", d.im);
    if (d.ct) row("compared to", d.ct.join(", "));
    if (d.k) row("knobs", Object.keys(d.k).sort().map(function (k) { return k + "=" + JSON.stringify(d.k[k]); }).join("  "));
    two.appendChild(el("section", { class: "panel" }, el("h2", null, "Trial"), meta));
    var out = el("section", { class: "panel", id: "outcome" }, el("h2", null, "Outcome"));
    if (T.label[i] < 0) out.appendChild(el("p", { class: "note" }, "No outcome recorded (pending or interrupted)."));
    else {
      var od = el("dl", { class: "meta" });
      od.appendChild(el("dt", null, "label")); od.appendChild(el("dd", null, chip(l)));
      if (d.ol !== undefined) { od.appendChild(el("dt", null, "source label")); od.appendChild(el("dd", null, d.ol)); }
      od.appendChild(el("dt", null, "score")); od.appendChild(el("dd", null, fmt(T.score[i], 10)));
      if (d.ss) { od.appendChild(el("dt", null, "seed scores")); od.appendChild(el("dd", null, d.ss.map(function (x) { return fmt(x, 6); }).join(", "))); }
      out.appendChild(od);
      if (d.e) out.appendChild(el("pre", { class: "expl" }, d.e));
      var mk = Object.keys(d.m || {}).sort();
      if (mk.length) {
        out.appendChild(el("h3", null, "Metrics"));
        out.appendChild(el("table", { class: "t" }, mk.map(function (k) { return el("tr", null, el("td", null, k), el("td", { class: "num" }, fmt(d.m[k], 8))); })));
      }
      if (d.g) {
        out.appendChild(el("h3", null, "Gates"));
        out.appendChild(el("table", { class: "t", id: "gates" }, el("tr", null, el("th", null, "gate"), el("th", { class: "num" }, "value"), el("th", null, "")),
          d.g.map(function (g) { return el("tr", null, el("td", null, g[0] + " " + g[1] + " " + g[2]), el("td", { class: "num" }, fmt(g[3], 6)), el("td", { class: g[4] ? "pass" : "fail" }, g[4] ? "passed" : "failed")); })));
      }
    }
    two.appendChild(out);
    add(main, two);
    // Budgets.
    var bp = el("section", { class: "panel", id: "budgets" }, el("h2", null, "Budgets"));
    var caps = { train: D.run.budgets.train_s, eval: D.run.budgets.eval_s };
    if (d.p && d.p.length) {
      var bt = el("table", { class: "t" }, el("tr", null, ["phase", "seed", "wallclock (s)", "cap (s)", "", "exit", "timed out", "oom", "output bytes"].map(function (h) { return el("th", null, h); })));
      d.p.forEach(function (ph) {
        var cap = caps[ph[0]];
        var frac = cap ? ph[2] / cap : null;
        bt.appendChild(el("tr", null, el("td", null, ph[0]), el("td", { class: "num" }, ph[1] === null ? "-" : ph[1]), el("td", { class: "num" }, fmt(ph[2], 4)),
          el("td", { class: "num" }, cap ? fmt(cap, 4) : "-"),
          el("td", null, frac !== null ? el("span", { class: "bar" + (frac > 1 || ph[4] ? " over" : ""), style: "width:" + Math.max(1, Math.round(120 * Math.min(1, frac))) + "px" }) : ""),
          el("td", { class: "num" }, ph[3] === null ? "-" : ph[3]), el("td", { class: ph[4] ? "fail" : null }, ph[4] ? "yes" : "no"), el("td", { class: ph[5] ? "fail" : null }, ph[5] ? "yes" : "no"),
          el("td", { class: "num" }, ph[6])));
      });
      bp.appendChild(bt);
    } else bp.appendChild(el("p", { class: "note" }, "No phase measurements recorded" + (D.run.imported ? " (imported trials carry the source's numbers as metrics)." : ".")));
    if (d.ab !== undefined) bp.appendChild(el("p", null, "artifact " + d.ab + " bytes of " + D.run.budgets.artifact_bytes + " allowed"));
    add(main, bp);
    // Diff.
    var dp = el("section", { class: "panel", id: "diff" }, el("h2", null, "Diff against the parent"));
    if (d.d) {
      var pre = el("pre", { class: "diff" });
      var lines = d.d.split("\n");
      if (lines.length && lines[lines.length - 1] === "") lines.pop();
      var frag = document.createDocumentFragment();
      lines.forEach(function (line) {
        var cls = null, c = line.charAt(0);
        if (line.indexOf("diff --git") === 0 || line.indexOf("index ") === 0 || line.indexOf("--- ") === 0 || line.indexOf("+++ ") === 0 || line.indexOf("new file") === 0 || line.indexOf("deleted file") === 0) cls = "meta";
        else if (line.indexOf("@@") === 0) cls = "hunk";
        else if (c === "+") cls = "add";
        else if (c === "-") cls = "del";
        frag.appendChild(el("span", { class: cls }, line));
      });
      pre.appendChild(frag);
      dp.appendChild(pre);
      if (d.dc) dp.appendChild(el("p", { class: "note" }, "(cut for the page; the lineage holds the whole diff: git -C RUN show refs/trials/" + T.id[i] + ")"));
    } else dp.appendChild(el("p", { class: "note" }, T.id[i] === "t0000" ? "The baseline: no diff." : D.run.imported ? "Imported trials carry no code: the diff is empty."
      : T.move[i] ? "No diff: a " + T.move[i] + " runs the code of " + T.id[T.parent[i]] + " unchanged at " + levelOf(i) + "." : "Empty diff."));
    add(main, dp);
    // Transcript: stored in the lineage, not in the page.
    if (d.tr) {
      add(main, el("section", { class: "panel", id: "transcript" }, el("h2", null, "Agent transcript"),
        el("p", null, "Stored with the proposal in the ledger at ", el("code", null, d.tr[3]), " (" + d.tr[0] + ", " + d.tr[1] + " bytes, sha256 " + d.tr[2] + ")."),
        el("p", null, "Print it (checked against that digest): ", el("code", null, "harness replay RUN --trial " + T.id[i] + " --transcript"))));
    }
    // Logs.
    var tails = (d.p || []).filter(function (ph) { return ph[7]; });
    var lp = el("section", { class: "panel", id: "logs" }, el("h2", null, "Log tails"));
    if (tails.length) tails.forEach(function (ph) {
      lp.appendChild(el("details", { open: "" }, el("summary", null, ph[0] + (ph[1] === null ? "" : " (seed " + ph[1] + ")")), el("pre", { class: "log" }, ph[7])));
    });
    else lp.appendChild(el("p", { class: "note" }, "No log recorded."));
    add(main, lp);
    window.scrollTo(0, 0);
  }

  // ---------------------------------------------------------------- start

  document.addEventListener("keydown", function (ev) {
    if (!D || ev.target && (ev.target.tagName === "INPUT" || ev.target.tagName === "SELECT")) return;
    var m = /^#t\/(t\d+)$/.exec(location.hash);
    if (!m) return;
    var i = indexOfId(m[1]);
    if (ev.key === "ArrowLeft" && i > 0) location.hash = "#t/" + T.id[i - 1];
    if (ev.key === "ArrowRight" && i >= 0 && i < N - 1) location.hash = "#t/" + T.id[i + 1];
  });

  loadData().then(function (data) {
    D = data;
    derive();
    shell();
    window.addEventListener("hashchange", route);
    route();
  }).catch(function (err) { fail("The report could not be read: " + err.message); });
})();
