"""Bokeh plots whose zoom and pan fetch a fresh downsampled window from the API.

The page gets the first view embedded (`components()`); a CustomJS callback on the plot's
x range (debounced) asks `/results/series` for the new x window of every line and
swaps the line's data, so a 10M-point series is only ever ~max_points points in the browser.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

import numpy as np
from bokeh.embed import components
from bokeh.models import ColumnDataSource, CustomJS, Range1d
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

PLOT_POINTS = 1000
# The base (main) is drawn first, wide and grey, so every other ref's line lies on top of it.
BASE_STYLE: dict[str, object] = {"color": "#9aa3b2", "line_width": 4.0, "line_alpha": 0.8}

REFETCH_JS = """
const x0 = Math.round(x_range.start), x1 = Math.round(x_range.end);
const last = window.sunbeamLastWindow;
if (last && last[0] === x0 && last[1] === x1) { return; }
window.sunbeamLastWindow = [x0, x1];
clearTimeout(window.sunbeamTimer);
window.sunbeamTimer = setTimeout(async () => {
  const start = new Date(x0).toISOString(), end = new Date(x1).toISOString();
  const notes = [];
  for (let i = 0; i < sources.length; i++) {
    const url = urls[i] + "&start=" + encodeURIComponent(start) + "&end=" +
      encodeURIComponent(end) + "&max_points=" + max_points;
    const r = await fetch(url);
    if (!r.ok) { notes.push(labels[i] + ": the API answered " + r.status); continue; }
    const body = await r.json();
    sources[i].data = {x: body.t.map(Date.parse), y: body.v.map(v => v === null ? NaN : v)};
    notes.push(describe(labels[i], body));
  }
  document.getElementById("view-status").innerText = notes.join("\\n");
  // The address carries the view: reloaded or sent, it opens this same window.
  const here = new URL(window.location.href);
  here.searchParams.set("start", start);
  here.searchParams.set("end", end);
  window.history.replaceState(null, "", here);
  window.sunbeamFetches = (window.sunbeamFetches || 0) + 1;
}, 200);
function describe(label, body) {
  const how = body.method ? body.method + " from level " + body.level : "every point";
  return label + ": " + body.v.length + " of " + body.points_in_window + " points in view (" +
    how + ")";
}
"""


@dataclass(frozen=True)
class Line:
    label: str
    key: dict[str, str]
    t_ms: np.ndarray
    v: np.ndarray
    note: str
    base: bool = False  # the ref the others are compared with: drawn beneath them


def series_url(key: dict[str, str], method: str) -> str:
    return "/results/series?" + urlencode({**key, "method": method})


def plot(
    lines: list[Line],
    *,
    title: str,
    units: str | None,
    method: str,
    window: tuple[float, float] | None = None,
) -> tuple[str, str]:
    """The script and div of an interactive time-series plot of `lines` (the base first).

    The page shows what each line holds (points in view, method, level) in #view-status, which
    the callback rewrites after every fetch; `window` (ms) is the x range it opens on.
    """
    lines = sorted(lines, key=lambda line: not line.base)  # drawn in order: the base beneath
    starts = [float(line.t_ms[0]) for line in lines if line.t_ms.size]
    ends = [float(line.t_ms[-1]) for line in lines if line.t_ms.size]
    lo, hi = window or ((min(starts), max(ends)) if starts else (0.0, 1.0))
    fig = figure(
        title=title,
        x_axis_type="datetime",
        x_range=Range1d(start=lo, end=hi if hi > lo else lo + 1000.0),
        height=460,
        sizing_mode="stretch_width",
        tools="xpan,xwheel_zoom,box_zoom,reset,save",
        active_scroll="xwheel_zoom",
        output_backend="canvas",
    )
    fig.yaxis.axis_label = units or "(no units)"
    fig.xaxis.axis_label = "time (UTC)"
    sources = []
    colours = iter(Category10_10 * (len(lines) // 10 + 1))
    for line in lines:
        source = ColumnDataSource({"x": line.t_ms.astype(np.float64), "y": line.v})
        style = BASE_STYLE if line.base else {"color": next(colours), "line_width": 1.5}
        fig.line("x", "y", source=source, legend_label=line.label, **style)  # type: ignore[arg-type]
        sources.append(source)
    fig.legend.location = "top_left"
    fig.legend.click_policy = "hide"
    refetch = CustomJS(
        args={
            "x_range": fig.x_range,
            "sources": sources,
            "urls": [series_url(line.key, method) for line in lines],
            "labels": [line.label for line in lines],
            "max_points": PLOT_POINTS,
        },
        code=REFETCH_JS,
    )
    # Any change of the x range (wheel, pan, box zoom, reset) refetches, debounced in the JS.
    fig.x_range.js_on_change("start", refetch)
    fig.x_range.js_on_change("end", refetch)
    return components(fig)
