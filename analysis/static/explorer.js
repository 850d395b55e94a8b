// The cube explorer (analysis/explorer.py writes the data; Plotly draws it).
(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("data").textContent);
  const names = D.axes.map((a) => a.name);
  const axis = (n) => D.axes[names.indexOf(n)];
  const vars = Object.keys(D.vars);
  const S = { x: names[0], y: names[Math.min(1, names.length - 1)],
              v: vars.includes("p_systemic") ? "p_systemic" : vars[0], idx: {} };
  if (names.includes("leverage")) S.x = "leverage";
  if (names.includes("integration") && S.x !== "integration") S.y = "integration";
  else S.y = names.find((n) => n !== S.x) || S.x;
  names.forEach((n) => { S.idx[n] = 0; });

  const strides = [];
  let acc = 1;
  for (let k = D.shape.length - 1; k >= 0; k--) { strides[k] = acc; acc *= D.shape[k]; }

  function fmt(value, units) {
    if (value === null || value === undefined) return "not computed";
    if (units === "probability" || units === "1") return (100 * value).toFixed(1) + " %";
    if (units === "USD") return "$" + (value / 1e9).toFixed(2) + " bn";
    return Number(value).toPrecision(3) + (units ? " " + units : "");
  }
  function axisLabel(n) {
    const a = axis(n);
    return n + (a.units && a.units !== "1" ? " [" + a.units + "]" : "");
  }
  function flat(ix, iy) {
    let c = 0;
    names.forEach((n, k) => {
      const i = n === S.x ? ix : n === S.y ? iy : S.idx[n];
      c += i * strides[k];
    });
    return c;
  }
  function matrix(values, map) {
    const xs = axis(S.x).values, ys = axis(S.y).values;
    return ys.map((_, iy) => xs.map((_, ix) => map(values, flat(ix, iy))));
  }
  function hoverText(c) {
    const lines = names.map((n, k) => n + " = " + axis(n).values[Math.floor(c / strides[k]) % D.shape[k]]);
    ["p_systemic", "p_btc_crash", "drawdown_btc:mean", "drawdown_eq:mean", "banks_failed:mean",
     "liquidated_long:mean"].forEach((v) => {
      const e = D.vars[v];
      if (!e) return;
      let t = e.label + ": " + fmt(e.values[c], e.units);
      if (e.lo) t += " [" + fmt(e.lo[c], e.units) + ", " + fmt(e.hi[c], e.units) + "]";
      lines.push(t);
    });
    if (D.wave) lines.push("adaptive wave " + D.wave[c] + (D.replicate[c] ? " (extra paths, set " + (D.replicate[c] + 1) + ")" : ""));
    return lines.join("<br>");
  }
  function frontier(z, name, dash) {
    return { type: "contour", x: axis(S.x).values, y: axis(S.y).values, z: z, name: name,
             showscale: false, hoverinfo: "skip", showlegend: true,
             contours: { start: D.level, end: D.level, size: 1, coloring: "none" },
             line: { color: dash ? "#ff7f0e" : "#000", width: dash ? 1.5 : 3, dash: dash ? "dash" : "solid",
                     smoothing: 0 } };
  }

  function drawGrid() {
    const e = D.vars[S.v];
    const z = matrix(e.values, (v, c) => v[c]);
    const traces = [{
      type: "heatmap", x: axis(S.x).values, y: axis(S.y).values, z: z, zsmooth: false,
      colorscale: "Viridis", zmin: e.units === "probability" ? 0 : undefined,
      zmax: e.units === "probability" ? 1 : undefined,
      text: matrix(null, (_, c) => hoverText(c)), hovertemplate: "%{text}<extra></extra>",
      colorbar: { title: { text: e.units === "probability" ? "probability" : e.units } },
    }];
    if (e.units === "probability" && S.x !== S.y && names.includes("draw") && S.x !== "draw" && S.y !== "draw") {
      // the parameter band: where 5 % and 95 % of the posterior draws have crossed the level
      const k = names.indexOf("draw"), nd = D.shape[k], keep = S.idx.draw;
      const frac = matrix(e.values, (v, c) => {
        const base = c - keep * strides[k];
        let n = 0, hit = 0;
        for (let d = 0; d < nd; d++) { const p = v[base + d * strides[k]]; if (p !== null) { n++; if (p >= D.level) hit++; } }
        return n ? hit / n : null;
      });
      [0.05, 0.95].forEach((q, i) => traces.push({ type: "contour", x: axis(S.x).values, y: axis(S.y).values,
        z: frac, showscale: false, hoverinfo: "skip", showlegend: i === 0,
        name: "parameter band: 5-95 % of " + nd + " posterior draws crossed",
        contours: { start: q, end: q, size: 1, coloring: "none" },
        line: { color: "#e7298a", width: 2, dash: "dot", smoothing: 0 } }));
    }
    if (e.units === "probability" && S.x !== S.y) {
      traces.push(frontier(z, "frontier (" + e.label + " = " + D.level + ")", false));
      if (e.lo) {
        traces.push(frontier(matrix(e.lo, (v, c) => v[c]), "Monte Carlo 95 % band", true));
        traces.push(Object.assign(frontier(matrix(e.hi, (v, c) => v[c]), "", true), { showlegend: false }));
      }
    }
    return traces;
  }
  function drawSampled() {
    const e = D.vars[S.v];
    const key = S.x + "|" + S.y + "|" + S.v;
    const fit = D.fitted[key] || D.fitted[S.y + "|" + S.x + "|" + S.v];
    const traces = [];
    if (fit) {
      const swap = !D.fitted[key];
      const z = swap ? fit.x.map((_, i) => fit.y.map((__, j) => fit.z[j * fit.x.length + i])) : fit.y.map((_, j) => fit.x.map((__, i) => fit.z[j * fit.x.length + i]));
      traces.push({ type: "heatmap", x: swap ? fit.y : fit.x, y: swap ? fit.x : fit.y, z: z,
                    colorscale: "Viridis", opacity: 0.85, hoverinfo: "skip", name: "fitted surface",
                    zmin: e.units === "probability" ? 0 : undefined, zmax: e.units === "probability" ? 1 : undefined });
      if (e.units === "probability") traces.push({ type: "contour", x: swap ? fit.y : fit.x, y: swap ? fit.x : fit.y, z: z,
        showscale: false, hoverinfo: "skip", name: "frontier of the fitted surface",
        contours: { start: D.level, end: D.level, size: 1, coloring: "none" }, line: { color: "#fff", width: 3, smoothing: 0 } });
    }
    const n = e.values.length;
    traces.push({ type: "scatter", mode: "markers", name: "cells", x: D.points[S.x], y: D.points[S.y],
                  marker: { color: e.values, colorscale: "Viridis", size: 7, line: { color: "#fff", width: 0.5 },
                            symbol: D.replicate ? D.replicate.map((r) => (r ? "diamond" : "circle")) : "circle",
                            cmin: e.units === "probability" ? 0 : undefined, cmax: e.units === "probability" ? 1 : undefined },
                  text: Array.from({ length: n }, (_, c) => hoverText(c)), hovertemplate: "%{text}<extra></extra>",
                  customdata: Array.from({ length: n }, (_, c) => c) });
    return traces;
  }
  function drawLine() {  // one swept axis: the variable along it, with its band
    const e = D.vars[S.v], xs = axis(S.x).values, c = xs.map((_, i) => i);
    const traces = [{ type: "scatter", mode: "lines+markers", x: xs, y: c.map((i) => e.values[i]),
                      name: e.label, text: c.map((i) => hoverText(i)), hovertemplate: "%{text}<extra></extra>" }];
    if (e.lo) traces.unshift({ type: "scatter", x: xs.concat(xs.slice().reverse()),
      y: c.map((i) => e.hi[i]).concat(c.map((i) => e.lo[i]).reverse()), fill: "toself",
      line: { width: 0 }, fillcolor: "rgba(31,119,180,0.2)", name: "Wilson 95 % band", hoverinfo: "skip" });
    return traces;
  }
  function draw() {
    const e = D.vars[S.v];
    const traces = names.length === 1 ? drawLine() : D.grid ? drawGrid() : drawSampled();
    const xs = D.grid ? axis(S.x).values : D.points[S.x], ys = D.grid ? axis(S.y).values : D.points[S.y];
    const fixed = D.grid ? names.filter((n) => n !== S.x && n !== S.y)
      .map((n) => n + " = " + axis(n).values[S.idx[n]]).join(", ") : "other axes averaged";
    Plotly.react("surface", traces, {
      title: { text: e.label + (fixed ? "<br><sub>" + fixed + "</sub>" : "") },
      xaxis: { title: { text: axisLabel(S.x) }, range: [Math.min(...xs), Math.max(...xs)] },
      yaxis: names.length === 1 ? { title: { text: e.label } }
        : { title: { text: axisLabel(S.y) }, range: [Math.min(...ys), Math.max(...ys)] },
      legend: { orientation: "h", y: -0.18 }, margin: { t: 70 },
    }, { responsive: true });
    document.getElementById("legend").textContent = (e.long_name || e.label) +
      (e.units === "probability" ? ". Solid line: where it crosses " + D.level +
       (e.lo ? "; dashed: the same for the Wilson 95 % bounds (" + D.n_paths + " paths per cell)" : "") : "");
  }

  function fan(c) {
    const f = D.fan && D.fan.cells[String(c)];
    const note = document.getElementById("fannote");
    if (!f) { note.textContent = "No fan chart for this cell (run farm explore with a larger --fan-cells)."; return; }
    const t = D.fan.times, traces = [];
    [["btc", "#d95f02"], ["eq", "#1b9e77"]].forEach(([a, col]) => {
      const q = f[a];
      traces.push({ x: t, y: q[0], mode: "lines", line: { width: 0 }, showlegend: false, hoverinfo: "skip" });
      traces.push({ x: t, y: q[4], mode: "lines", line: { width: 0 }, fill: "tonexty", fillcolor: col + "33", name: a + " 5-95 %" });
      traces.push({ x: t, y: q[1], mode: "lines", line: { width: 0 }, showlegend: false, hoverinfo: "skip" });
      traces.push({ x: t, y: q[3], mode: "lines", line: { width: 0 }, fill: "tonexty", fillcolor: col + "66", name: a + " 25-75 %" });
      traces.push({ x: t, y: q[2], mode: "lines", line: { color: col, width: 2 }, name: a + " median" });
    });
    const where = names.map((n, k) => n + " = " + (D.grid ? axis(n).values[Math.floor(c / strides[k]) % D.shape[k]] : D.points[n][c])).join(", ");
    Plotly.react("fan", traces, { title: { text: "Price / open, cell " + c + "<br><sub>" + where + "</sub>" },
      xaxis: { title: { text: "hours since the open" } }, yaxis: { title: { text: "price / open" } },
      margin: { t: 70 } }, { responsive: true });
    note.textContent = "Quantiles over " + Math.min(64, D.n_paths) + " paths of the cell, re-simulated from the cube's provenance (the same draws as the cube's first paths).";
  }

  function select(label, options, value, onChange) {
    const l = document.createElement("label");
    l.textContent = label + " ";
    const s = document.createElement("select");
    s.id = "pick-" + label.split(" ")[0];
    options.forEach(([v, t]) => { const o = document.createElement("option"); o.value = v; o.textContent = t; s.appendChild(o); });
    s.value = value;
    s.addEventListener("change", () => { onChange(s.value); buildSliders(); draw(); });
    l.appendChild(s);
    document.getElementById("pick").appendChild(l);
  }
  function buildSliders() {
    const box = document.getElementById("sliders");
    box.innerHTML = "";
    if (!D.grid) return;
    names.forEach((n) => {
      if (n === S.x || n === S.y) return;
      const a = axis(n), l = document.createElement("label"), r = document.createElement("input"), o = document.createElement("output");
      l.textContent = axisLabel(n) + " ";
      r.type = "range"; r.min = 0; r.max = a.values.length - 1; r.step = 1; r.value = S.idx[n]; r.id = "slider-" + n;
      o.textContent = a.values[S.idx[n]];
      r.addEventListener("input", () => { S.idx[n] = Number(r.value); o.textContent = a.values[S.idx[n]]; draw(); });
      l.appendChild(r); l.appendChild(o); box.appendChild(l);
    });
  }

  select("variable", vars.filter((v) => !v.endsWith("_lo") && !v.endsWith("_hi")).map((v) => [v, D.vars[v].label]), S.v, (v) => { S.v = v; });
  select("x axis", names.map((n) => [n, n]), S.x, (v) => { S.x = v; });
  select("y axis", names.map((n) => [n, n]), S.y, (v) => { S.y = v; });
  buildSliders();
  document.getElementById("intro").textContent = (D.grid ? "Grid of " : "Sampled design of ") +
    D.shape.reduce((a, b) => a * b, 1) + " cells x " + D.n_paths + " paths. Pick the surface's axes and variable; " +
    (D.grid ? "the sliders set the other axes. " : "") + "Hover a cell for its statistics; click it for its fan chart.";
  draw();
  document.getElementById("surface").on("plotly_click", (ev) => {
    const p = ev.points[0];
    if (D.grid) {
      const ix = axis(S.x).values.indexOf(p.x), iy = axis(S.y).values.indexOf(p.y);
      if (ix >= 0 && iy >= 0) fan(flat(ix, iy));
    } else if (p.customdata !== undefined) fan(p.customdata);
  });
  window.explorer = { state: S, draw: draw, fan: fan, flat: flat };
})();
