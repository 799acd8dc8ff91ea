// Draws the leadership timeline of a report from the JSON model in #report-data.
// Every string from the history goes into the page through textContent or setAttribute,
// never through innerHTML. Only what lies in the visible window is drawn, so zooming
// into a one-hour history with thousands of leaderships stays fast.
(function () {
  "use strict";
  var M = JSON.parse(document.getElementById("report-data").textContent);
  var root = document.documentElement;
  var chart = document.getElementById("chart");
  var tooltip = document.getElementById("tooltip");
  var windowLabel = document.getElementById("window");
  var SVGNS = "http://www.w3.org/2000/svg";

  var GUTTER = 120, AXIS_H = 22, FAULT_ROW = 15, LANE_H = 44, BAR_Y = 5, BAR_H = 24;
  var STRIP_Y = 33, STRIP_H = 6, PAD_BOTTOM = 6, MIN_SPAN = 1000;

  var lanes = M.lanes, intervals = M.intervals, leaders = M.leaders, faults = M.faults;
  var marks = M.marks, violations = M.violations, processes = M.processes;
  var nElections = Math.max(1, M.elections.length);
  var faultRows = 0;
  faults.forEach(function (f) { faultRows = Math.max(faultRows, f.row + 1); });
  if (marks.length && !faultRows) faultRows = 1;
  var FAULTS_Y = AXIS_H + 4;
  var LANES_Y = FAULTS_Y + faultRows * FAULT_ROW + (faultRows ? 6 : 0);
  var HEIGHT = LANES_Y + lanes.length * LANE_H + PAD_BOTTOM;

  var fullStart = M.start, fullEnd = M.end > M.start ? M.end : M.start + 1e9;
  var view = { t0: fullStart, t1: fullEnd };
  var width = 0, plotW = 1;
  var highlighted = -1;

  function el(name, attrs, parent) {
    var node = document.createElementNS(SVGNS, name);
    for (var key in attrs) if (attrs[key] !== null) node.setAttribute(key, attrs[key]);
    if (parent) parent.appendChild(node);
    return node;
  }

  function fmtNs(ns) {
    if (ns === null || ns === undefined) return "-";
    var a = Math.abs(ns);
    if (a >= 1e9) return (ns / 1e9).toFixed(3) + " s";
    if (a >= 1e3) return (ns / 1e6).toFixed(3) + " ms";
    return Math.round(ns) + " ns";
  }
  function at(t) { return fmtNs(t - M.start); }

  var colours = new Map();
  function colour(n) {
    var c = colours.get(n);
    if (c === undefined) {
      // Golden-angle hues: consecutive tokens get clearly different colours.
      c = "hsl(" + ((n * 137.508) % 360 + 360) % 360 + ",62%,46%)";
      colours.set(n, c);
    }
    return c;
  }

  function x(t) { return GUTTER + (t - view.t0) / (view.t1 - view.t0) * plotW; }
  function timeAt(px) { return view.t0 + (px - GUTTER) / plotW * (view.t1 - view.t0); }
  function laneY(i) { return LANES_Y + i * LANE_H; }
  // Clip to the plot so that a bar far outside the window does not make huge coordinates.
  function span(t0, t1, minW) {
    var a = Math.max(x(t0), GUTTER - 2), b = Math.min(x(t1), width + 2);
    var w = b - a;
    if (w < minW) { a -= (minW - w) / 2; w = minW; }
    return [a, w];
  }

  var svg = el("svg", { height: HEIGHT, role: "img", "aria-label": "leadership timeline" });
  chart.textContent = "";
  chart.appendChild(svg);
  var clip = el("clipPath", { id: "plot-clip" }, el("defs", {}, svg));
  var clipRect = el("rect", { x: GUTTER, y: 0, height: HEIGHT }, clip);
  var gBack = el("g", {}, svg);
  var gPlot = el("g", { "clip-path": "url(#plot-clip)" }, svg);
  var gNames = el("g", {}, svg);

  // Lane names and the section label never move: drawn once.
  el("text", { x: 8, y: FAULTS_Y + 11, class: "section" }, gNames).textContent =
    faultRows ? "faults" : "";
  lanes.forEach(function (name, i) {
    var t = el("text", { x: 8, y: laneY(i) + LANE_H / 2 + 4, class: "lane-name" }, gNames);
    t.textContent = name;
  });

  function draw() {
    var t0 = view.t0, t1 = view.t1;
    gBack.textContent = "";
    gPlot.textContent = "";
    var back = document.createDocumentFragment();
    var plot = document.createDocumentFragment();
    lanes.forEach(function (_, i) {
      el("rect", { x: 0, y: laneY(i), width: width, height: LANE_H,
        class: i % 2 ? "lane-bg odd" : "lane-bg" }, back);
    });

    // Time axis: a "nice" step giving a tick every ~110 px.
    var step = Math.pow(10, Math.floor(Math.log10((t1 - t0) / Math.max(1, plotW / 110))));
    var raw = (t1 - t0) / Math.max(1, plotW / 110);
    [1, 2, 5, 10].some(function (m) { if (step * m >= raw) { step *= m; return true; } return false; });
    var decimals = Math.max(0, Math.min(9, -Math.floor(Math.log10(step / 1e9))));
    for (var tick = Math.ceil((t0 - M.start) / step) * step; tick + M.start <= t1; tick += step) {
      var tx = x(tick + M.start);
      el("line", { x1: tx, x2: tx, y1: AXIS_H - 4, y2: HEIGHT, class: "tick" }, plot);
      el("text", { x: tx + 3, y: 14, class: "tick-label" }, plot).textContent =
        (tick / 1e9).toFixed(decimals) + " s";
    }

    // Fault bands behind the lanes they hit, and bars on the fault track above.
    faults.forEach(function (f, fi) {
      if (f.end < t0 || f.start > t1) return;
      var s = span(f.start, f.end, 2);
      if (f.kind === "partition") {
        f.groups.forEach(function (group, gi) {
          group.forEach(function (lane) {
            el("rect", { x: s[0], y: laneY(lane), width: s[1], height: LANE_H,
              class: "band partition g" + (gi % 3), "data-k": "f" + fi }, plot);
          });
        });
      } else {
        // The colour comes from the nemesis's registry entry (its report band).
        f.lanes.forEach(function (lane) {
          el("rect", { x: s[0], y: laneY(lane), width: s[1], height: LANE_H,
            class: "band " + f.kind, fill: f.color || null, "data-k": "f" + fi }, plot);
        });
      }
      el("rect", { x: s[0], y: FAULTS_Y + f.row * FAULT_ROW, width: s[1], height: FAULT_ROW - 2,
        class: "fault " + f.kind, "data-k": "f" + fi, fill: f.color || null }, plot);
      if (s[1] > 60) {
        el("text", { x: Math.max(s[0], GUTTER) + 3, y: FAULTS_Y + f.row * FAULT_ROW + 10,
          class: "fault-label" }, plot).textContent = f.label;
      }
    });
    marks.forEach(function (m, mi) {
      if (m.time < t0 || m.time > t1) return;
      var mx = x(m.time);
      el("line", { x1: mx, x2: mx, y1: FAULTS_Y, y2: HEIGHT, class: "mark" }, plot);
      el("rect", { x: mx - 3, y: FAULTS_Y, width: 6, height: faultRows * FAULT_ROW,
        fill: "transparent", "data-k": "m" + mi }, plot);
    });

    // Server-level leader per term, as a thin strip under the node's lane.
    var shownLeaders = 0;
    for (var li = 0; li < leaders.length; li++) {
      var l = leaders[li];
      if (l[2] < t0 || l[1] > t1) continue;
      var ls = span(l[1], l[2], 2);
      el("rect", { x: ls[0], y: laneY(l[0]) + STRIP_Y, width: ls[1], height: STRIP_H,
        fill: colour(l[3]), class: "srv", "data-k": "l" + li }, plot);
      shownLeaders++;
    }

    // Leadership intervals: one bar each, coloured and labelled by token.
    var shown = 0, barH = BAR_H / nElections;
    for (var i = 0; i < intervals.length; i++) {
      var r = intervals[i];
      if (r[2] < t0 || r[1] > t1) continue;
      var s2 = span(r[1], r[2], 1);
      var y = laneY(r[0]) + BAR_Y + r[6] * barH;
      el("rect", { x: s2[0], y: y, width: s2[1], height: barH, fill: colour(r[3]), class: "iv",
        "data-k": "i" + i, "data-p": String(processes[r[4]]), "data-tok": r[3],
        "data-s": r[1], "data-e": r[2] }, plot);
      if (s2[1] > 28) {
        var label = "#" + r[3] + (s2[1] > 110 ? " \u00b7 " + processes[r[4]] : "");
        el("text", { x: Math.max(s2[0], GUTTER) + 4, y: y + barH / 2 + 4, class: "iv-label" },
          plot).textContent = label;
      }
      shown++;
    }

    // Violations on top: a translucent span over the lanes and a flag on the axis.
    var shownViolations = 0;
    violations.forEach(function (v, vi) {
      if (v.end < t0 || v.start > t1) return;
      var vs = span(v.start, v.end, 3);
      el("rect", { x: vs[0], y: FAULTS_Y, width: vs[1], height: HEIGHT - FAULTS_Y,
        class: vi === highlighted ? "viol hl" : "viol", "pointer-events": "none" }, plot);
      el("rect", { x: vs[0], y: 0, width: Math.max(vs[1], 6), height: AXIS_H - 6,
        class: "viol-flag", "data-k": "v" + vi }, plot);
      shownViolations++;
    });

    gBack.appendChild(back);
    gPlot.appendChild(plot);
    root.setAttribute("data-intervals", shown);
    root.setAttribute("data-leaders", shownLeaders);
    root.setAttribute("data-violations", shownViolations);
    windowLabel.textContent = at(t0) + " \u2013 " + at(t1) + "  (" + fmtNs(t1 - t0) + ")";
  }

  function measure() {
    width = Math.max(480, chart.clientWidth || 1000);
    plotW = width - GUTTER - 8;
    svg.setAttribute("width", width);
    svg.setAttribute("viewBox", "0 0 " + width + " " + HEIGHT);
    clipRect.setAttribute("width", width - GUTTER);
  }

  var pending = false;
  function redraw() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(function () { pending = false; draw(); });
  }

  // Wheel and drag coalesce into one drawing per frame; buttons and keys draw at once.
  function setView(t0, t1, now) {
    var full = fullEnd - fullStart, pad = full * 0.05;
    var len = Math.min(Math.max(t1 - t0, MIN_SPAN), full + 2 * pad);
    t0 = Math.min(Math.max(t0, fullStart - pad), fullEnd + pad - len);
    view.t0 = t0;
    view.t1 = t0 + len;
    if (now) draw(); else redraw();
  }
  function zoom(factor, centre) {
    var c = centre === undefined ? (view.t0 + view.t1) / 2 : centre;
    setView(c - (c - view.t0) * factor, c + (view.t1 - c) * factor, centre === undefined);
  }
  function fit() { setView(fullStart, fullEnd, true); }

  // Hover details, from the model (never from markup).
  function details(key) {
    var i = +key.slice(1), lines;
    if (key[0] === "i") {
      var r = intervals[i];
      lines = ["process " + processes[r[4]] + " on " + lanes[r[0]] +
        (M.elections.length > 1 ? ", election " + M.elections[r[6]] : ""),
        "leader with token " + r[3],
        "from " + at(r[1]) + " until " + at(r[2]) + " (" + fmtNs(r[2] - r[1]) + ")",
        "acquire ok at line " + (r[7] === null ? "?" : r[7])];
      lines.push(r[5] === 4 ? "still leading at the end of the history" :
        "ended by " + M.endings[r[5]] + (r[8] === null ? "" : " at line " + r[8]));
    } else if (key[0] === "l") {
      var l = leaders[i];
      lines = ["status: " + lanes[l[0]] + " named leader of term " + l[3],
        "from " + at(l[1]) + " to " + at(l[2]),
        l[4] + " observation(s) by " + l[5] + " member(s)"];
    } else if (key[0] === "f") {
      var f = faults[i];
      lines = [f.label, "from " + at(f.start) + (f.open ? " to the end (not healed)" :
        " to " + at(f.end) + " (" + fmtNs(f.end - f.start) + ")"),
        "lines " + (f.line || "?") + (f.end_line ? "\u2013" + f.end_line : ""),
        JSON.stringify(f.value)];
    } else if (key[0] === "m") {
      var m = marks[i];
      lines = ["nemesis " + m.f + " at " + at(m.time) + " (line " + (m.line || "?") + ")",
        JSON.stringify(m.value)];
    } else {
      var v = violations[i];
      lines = [v.kind + (v.election === null ? "" : " in election " + v.election),
        "processes " + v.processes.join(", "),
        "at " + at(v.start) + " for " + fmtNs(v.end - v.start), v.detail];
    }
    return lines.join("\n");
  }

  var drag = null;
  svg.addEventListener("pointermove", function (ev) {
    if (drag) {
      var dt = (drag.x - ev.clientX) / plotW * (drag.t1 - drag.t0);
      if (Math.abs(drag.x - ev.clientX) > 2) drag.moved = true;
      setView(drag.t0 + dt, drag.t1 + dt);
      tooltip.hidden = true;
      return;
    }
    var target = ev.target.closest ? ev.target.closest("[data-k]") : null;
    if (!target) { tooltip.hidden = true; return; }
    tooltip.textContent = details(target.getAttribute("data-k"));
    tooltip.hidden = false;
    var tx = ev.clientX + 14, ty = ev.clientY + 14;
    if (tx + tooltip.offsetWidth > window.innerWidth) tx = ev.clientX - tooltip.offsetWidth - 8;
    if (ty + tooltip.offsetHeight > window.innerHeight) ty = ev.clientY - tooltip.offsetHeight - 8;
    tooltip.style.left = tx + "px";
    tooltip.style.top = ty + "px";
  });
  svg.addEventListener("pointerleave", function () { tooltip.hidden = true; });
  svg.addEventListener("pointerdown", function (ev) {
    drag = { x: ev.clientX, t0: view.t0, t1: view.t1, moved: false };
    chart.classList.add("dragging");
  });
  window.addEventListener("pointerup", function (ev) {
    if (drag && !drag.moved && ev.target.closest) {
      var flag = ev.target.closest("[data-k^=v]");
      if (flag) select(+flag.getAttribute("data-k").slice(1), false);
    }
    drag = null;
    chart.classList.remove("dragging");
  });
  svg.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    var rect = svg.getBoundingClientRect();
    zoom(Math.exp(ev.deltaY * 0.0015), timeAt(ev.clientX - rect.left));
  }, { passive: false });
  document.getElementById("zoom-in").addEventListener("click", function () { zoom(0.5); });
  document.getElementById("zoom-out").addEventListener("click", function () { zoom(2); });
  document.getElementById("zoom-fit").addEventListener("click", fit);
  document.addEventListener("keydown", function (ev) {
    if (ev.target.tagName === "INPUT") return;
    var len = view.t1 - view.t0;
    if (ev.key === "+" || ev.key === "=") zoom(0.5);
    else if (ev.key === "-") zoom(2);
    else if (ev.key === "0") fit();
    else if (ev.key === "ArrowLeft") setView(view.t0 - len / 5, view.t1 - len / 5, true);
    else if (ev.key === "ArrowRight") setView(view.t0 + len / 5, view.t1 + len / 5, true);
  });

  // A violation chosen in the list (or by its flag): zoom to it and highlight both.
  function select(vi, zoomTo) {
    var v = violations[vi];
    highlighted = vi;
    document.querySelectorAll(".violation.hl").forEach(function (li) { li.classList.remove("hl"); });
    var item = document.querySelector('.violation[data-v="' + vi + '"]');
    if (zoomTo) {
      var pad = Math.max((v.end - v.start) * 1.5, (fullEnd - fullStart) * 0.005, 1e6);
      setView(v.start - pad, v.end + pad, true);
      chart.scrollIntoView({ block: "nearest" });
    } else {
      draw();
      if (item) item.scrollIntoView({ block: "nearest" });
    }
    if (item) item.classList.add("hl");
  }
  document.querySelectorAll("button.goto").forEach(function (button) {
    button.addEventListener("click", function () { select(+button.getAttribute("data-v"), true); });
  });
  window.addEventListener("resize", function () { measure(); redraw(); });

  measure();
  draw();
  // When the first full drawing is in the DOM: read by tests and bench/report.py.
  root.setAttribute("data-drawn-ms", performance.now().toFixed(1));
})();
