/* stickyrec report: inlined into report.html at render time (experiments/report_html.py). No network, no library.
   Charts: <figure class="chart"> holds an <svg> whose <g class="series" data-series=NAME data-pts=...> are the lines
   (points [x, y, day, value, low, high, n] with x, y in the svg's own units, data-fmt pct|num; or [x, y, text]), and a legend of <button data-series=NAME>.
   Tables: every table in a <div class="wide"> sorts by a click on its header; a cell's data-value (else its text)
   is its sort key. */
(function () {
  "use strict";
  function toggle(fig, name, button) {
    var off = !button.classList.contains("off");
    button.classList.toggle("off", off);
    button.setAttribute("aria-pressed", off ? "false" : "true");
    fig.querySelectorAll('.series[data-series="' + CSS.escape(name) + '"]').forEach(function (g) {
      g.classList.toggle("off", off);
    });
  }
  function num(v, pct) {
    if (v === null) return "";
    if (pct) return (v * 100).toFixed(1) + "%";
    return Math.abs(v) >= 10 ? v.toLocaleString("en-US", {maximumFractionDigits: 1, minimumFractionDigits: 1})
      : v.toFixed(3);
  }
  function text(p) {  /* [x, y, day, value, low, high, n] of a line's group */
    var pct = p.g.getAttribute("data-fmt") === "pct";
    var s = p.g.getAttribute("data-series") + " \u00b7 day " + p[2] + ": " + num(p[3], pct);
    if (p[4] !== null && p[5] !== null) s += " [" + num(p[4], pct) + ", " + num(p[5], pct) + "]";
    if (p[6] !== null) s += " \u00b7 n " + p[6].toLocaleString("en-US");
    return s;
  }
  function nearest(svg, x, y) {
    var best = null, bestD = Infinity;
    svg.querySelectorAll(".series:not(.off)[data-pts]").forEach(function (g) {
      var pts = g._pts;
      if (!pts) {
        pts = g._pts = JSON.parse(g.getAttribute("data-pts"));
        pts.forEach(function (p) { p.g = g; });
      }
      for (var i = 0; i < pts.length; i++) {
        var dx = pts[i][0] - x, dy = pts[i][1] - y, d = dx * dx * 4 + dy * dy;
        if (d < bestD) { bestD = d; best = pts[i]; }
      }
    });
    return bestD < 2500 ? best : null;
  }
  function chart(fig) {
    var svg = fig.querySelector("svg"), tip = document.createElement("div"), dot;
    tip.className = "tip";
    fig.appendChild(tip);
    fig.querySelectorAll(".legend button[data-series]").forEach(function (b) {
      b.addEventListener("click", function () { toggle(fig, b.getAttribute("data-series"), b); });
    });
    if (!svg) return;
    dot = document.createElementNS(svg.namespaceURI, "circle");
    dot.setAttribute("r", "4"); dot.setAttribute("fill", "none"); dot.setAttribute("stroke", "#000");
    dot.setAttribute("stroke-width", "1.5"); dot.style.display = "none";
    svg.appendChild(dot);
    svg.addEventListener("pointermove", function (ev) {
      var m = svg.getScreenCTM(); if (!m) return;
      var p = svg.createSVGPoint(); p.x = ev.clientX; p.y = ev.clientY; p = p.matrixTransform(m.inverse());
      var hit = nearest(svg, p.x, p.y);
      if (!hit) { tip.style.display = "none"; dot.style.display = "none"; return; }
      dot.setAttribute("cx", hit[0]); dot.setAttribute("cy", hit[1]); dot.style.display = "";
      tip.textContent = hit.length === 3 ? hit[2] : text(hit); tip.style.display = "block";
      var box = fig.getBoundingClientRect(), left = ev.clientX - box.left + 12;
      if (left + tip.offsetWidth > box.width) left = Math.max(0, ev.clientX - box.left - tip.offsetWidth - 12);
      tip.style.left = left + "px"; tip.style.top = (ev.clientY - box.top + 12) + "px";
    });
    svg.addEventListener("pointerleave", function () { tip.style.display = "none"; dot.style.display = "none"; });
  }
  function key(cell) {
    var v = cell.getAttribute("data-value"), t = v === null ? cell.textContent.trim() : v;
    var n = parseFloat(t.replace(/[,%+]/g, "").replace(/^[^-\d.]+/, ""));
    return isNaN(n) ? t.toLowerCase() : n;
  }
  function sortable(table) {
    var heads = table.querySelectorAll("thead th");
    heads.forEach(function (th, col) {
      th.classList.add("sortable"); th.tabIndex = 0;
      function sort() {
        var asc = th.getAttribute("aria-sort") !== "ascending", body = table.tBodies[0];
        heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        Array.prototype.slice.call(body.rows).map(function (r, i) { return [key(r.cells[col]), i, r]; })
          .sort(function (a, b) {
            var x = a[0], y = b[0], c = (typeof x === typeof y) ? (x < y ? -1 : x > y ? 1 : 0)
              : (typeof x === "number" ? -1 : 1);
            return (asc ? c : -c) || a[1] - b[1];
          }).forEach(function (e) { body.appendChild(e[2]); });
      }
      th.addEventListener("click", function (ev) { if (ev.target.tagName !== "A") sort(); });
      th.addEventListener("keydown", function (ev) { if (ev.key === "Enter") sort(); });
    });
  }
  document.querySelectorAll("figure.chart").forEach(chart);
  document.querySelectorAll(".wide > table").forEach(sortable);
})();
