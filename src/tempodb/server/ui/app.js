/* The tempodb data explorer: signs in with an API key and secret, lists and filters series,
 * plots them with uPlot and shows the summary.  Everything goes through the v1 API with HTTP
 * Basic; the credentials live in sessionStorage (this tab only) and never in a URL.  Text from
 * the server is only ever set as textContent, never parsed as HTML. */
(function () {
  "use strict";

  const API = new URL("../v1/", window.location.href);
  const AUTH_ITEM = "tempodb.auth";
  const KEY_ITEM = "tempodb.key";
  const COLORS = ["#1d4ed8", "#d9480f", "#2b8a3e", "#ae3ec9", "#c92a2a", "#0b7285", "#e67700",
    "#495057"];
  const MAX_LISTED = 500;
  /** 9999-12-31T23:59:59.999Z, the last instant the API stores. */
  const LAST_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
  const $ = (id) => document.getElementById(id);

  const state = {
    series: [],          // the series of the last listing, as the API returns them
    selected: new Set(), // keys
    range: null,         // {start, end} in epoch ms, as last plotted
    inputZone: "UTC",    // the zone that the range inputs are written in
    history: [],         // earlier ranges, for Zoom out
    chart: null,
  };

  // -- talking to the API ------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function basicToken(key, secret) {
    const bytes = new TextEncoder().encode(key + ":" + secret);
    let binary = "";
    bytes.forEach((b) => { binary += String.fromCharCode(b); });
    return btoa(binary);
  }

  async function api(path, params, token) {
    const url = new URL(path, API);
    for (const [name, value] of params || []) url.searchParams.append(name, value);
    const auth = token || sessionStorage.getItem(AUTH_ITEM);
    let response;
    try {
      response = await fetch(url, {
        headers: { "Authorization": "Basic " + auth, "Accept": "application/json" },
        credentials: "omit",
        cache: "no-store",
      });
    } catch (err) {
      throw new ApiError(0, "The server could not be reached.");
    }
    if (!response.ok) {
      const text = (await response.text()).trim();
      throw new ApiError(response.status, text || response.statusText);
    }
    return response.json();
  }

  function failed(err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403) &&
        /key or secret|Authentication/i.test(err.message)) {
      signOut("Signed out: " + err.message);
      return;
    }
    showStatus(err.message || String(err), true);
  }

  // -- time zones --------------------------------------------------------------------------

  const formatters = new Map();

  function fixedOffset(tz) {
    if (/^(utc|gmt|z)$/i.test(tz) || tz === "") return 0;
    const m = /^([+-])(\d\d)(?::?(\d\d))?$/.exec(tz);
    if (!m) return null;
    return (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3] || 0)) * 60000;
  }

  function validZone(tz) {
    if (fixedOffset(tz) !== null) return true;
    try {
      new Intl.DateTimeFormat("en-US", { timeZone: tz });
      return true;
    } catch (err) {
      return false;
    }
  }

  /** The offset of zone ``tz`` from UTC at the instant ``ts``, in ms, in whole minutes as the
   * API's timestamps carry it. */
  function offsetAt(ts, tz) {
    const fixed = fixedOffset(tz);
    if (fixed !== null) return fixed;
    let fmt = formatters.get(tz);
    if (!fmt) {
      fmt = new Intl.DateTimeFormat("en-US", {
        timeZone: tz, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit",
      });
      formatters.set(tz, fmt);
    }
    const p = {};
    for (const part of fmt.formatToParts(new Date(ts))) p[part.type] = Number(part.value);
    const date = new Date(0); // Date.UTC would read years 0-99 as 1900-1999
    date.setUTCFullYear(p.year, p.month - 1, p.day);
    date.setUTCHours(p.hour, p.minute, p.second, 0);
    const offset = date.getTime() - Math.floor(ts / 1000) * 1000;
    // As the server shows it: whole minutes (local mean time has offsets like -05:50:36).
    return offset - (offset % 60000);
  }

  /** A Date whose local fields show the wall clock of ``tz`` at ``ts`` (uPlot's tzDate). */
  function zoneDate(ts, tz) {
    const wall = ts + offsetAt(ts, tz);
    const guess = new Date(wall);
    return new Date(wall + guess.getTimezoneOffset() * 60000);
  }

  function offsetText(ms) {
    if (ms === 0) return "Z";
    const minutes = Math.abs(ms) / 60000;
    const hh = String(Math.floor(minutes / 60)).padStart(2, "0");
    const mm = String(minutes % 60).padStart(2, "0");
    return (ms < 0 ? "-" : "+") + hh + ":" + mm;
  }

  /** ``2012-01-01T06:00:00`` (ms only when there are some): the wall clock of ``tz``. */
  function wallText(ts, tz) {
    const text = new Date(ts + offsetAt(ts, tz)).toISOString().slice(0, 23);
    return text.endsWith(".000") ? text.slice(0, 19) : text;
  }

  function displayTime(ts, tz) {
    return wallText(ts, tz).replace("T", " ") + " " + offsetText(offsetAt(ts, tz));
  }

  /** Epoch ms of a wall-clock time (a datetime-local value) in zone ``tz``. */
  function fromWall(text, tz) {
    const wall = Date.parse(text.length === 16 ? text + ":00Z" : text + "Z");
    if (Number.isNaN(wall)) return null;
    const guess = wall - offsetAt(wall, tz);
    return wall - offsetAt(guess, tz);
  }

  function currentZone() {
    return $("tz").value.trim() || "UTC";
  }

  function fillZones() {
    const local = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    $("tz").value = local;
    state.inputZone = local;
    const names = typeof Intl.supportedValuesOf === "function"
      ? Intl.supportedValuesOf("timeZone") : [];
    const list = $("tz-names");
    for (const name of ["UTC", ...names]) {
      const option = document.createElement("option");
      option.value = name;
      list.appendChild(option);
    }
  }

  // -- status and sign-in ------------------------------------------------------------------

  function showStatus(message, isError) {
    const el = $("status");
    el.textContent = message;
    el.classList.toggle("error", Boolean(isError));
    el.hidden = !message;
  }

  function showSignedIn(signedIn) {
    $("signin").hidden = signedIn;
    $("explorer").hidden = !signedIn;
    $("who").hidden = !signedIn;
    $("who-key").textContent = signedIn ? sessionStorage.getItem(KEY_ITEM) || "" : "";
  }

  async function signIn(event) {
    event.preventDefault();
    const key = $("signin-key").value.trim();
    const secret = $("signin-secret").value;
    const error = $("signin-error");
    error.hidden = true;
    if (!key || !secret) return;
    const token = basicToken(key, secret);
    $("signin-submit").disabled = true;
    try {
      const series = await api("series/", [], token);
      sessionStorage.setItem(AUTH_ITEM, token);
      sessionStorage.setItem(KEY_ITEM, key);
      $("signin-secret").value = "";
      showSignedIn(true);
      showStatus("", false);
      setSeries(series);
    } catch (err) {
      error.textContent = err.status === 403 ? "Wrong API key or secret." : err.message;
      error.hidden = false;
    } finally {
      $("signin-submit").disabled = false;
    }
  }

  function signOut(message) {
    sessionStorage.removeItem(AUTH_ITEM);
    sessionStorage.removeItem(KEY_ITEM);
    state.series = [];
    state.selected.clear();
    state.range = null;
    state.history = [];
    clearChart();
    renderSeries();
    showSignedIn(false);
    showStatus(message || "", Boolean(message));
  }

  // -- the series list ---------------------------------------------------------------------

  function filterParams() {
    const params = [];
    for (const tag of $("filter-tags").value.split(",")) {
      if (tag.trim()) params.push(["tag", tag.trim()]);
    }
    for (const pair of $("filter-attrs").value.split(",")) {
      if (!pair.trim()) continue;
      const at = pair.indexOf("=");
      if (at <= 0) throw new Error("Attributes are name=value pairs: " + pair.trim());
      params.push(["attr[" + pair.slice(0, at).trim() + "]", pair.slice(at + 1).trim()]);
    }
    return params;
  }

  async function loadSeries(event) {
    if (event) event.preventDefault();
    try {
      setSeries(await api("series/", filterParams()));
      showStatus("", false);
    } catch (err) {
      failed(err);
    }
  }

  function setSeries(series) {
    state.series = series;
    const known = new Set(series.map((s) => s.key));
    for (const key of [...state.selected]) if (!known.has(key)) state.selected.delete(key);
    renderSeries();
  }

  function visibleSeries() {
    const needle = $("filter-key").value.trim().toLowerCase();
    return state.series.filter((s) => !needle || s.key.toLowerCase().includes(needle) ||
      (s.name || "").toLowerCase().includes(needle));
  }

  function chip(text, cls) {
    const el = document.createElement("span");
    el.className = "chip" + (cls ? " " + cls : "");
    el.textContent = text;
    return el;
  }

  function renderSeries() {
    const list = $("series-list");
    const shown = visibleSeries();
    list.replaceChildren();
    for (const s of shown.slice(0, MAX_LISTED)) {
      const item = document.createElement("li");
      item.dataset.key = s.key;
      item.classList.toggle("selected", state.selected.has(s.key));
      const box = document.createElement("input");
      box.type = "checkbox";
      box.checked = state.selected.has(s.key);
      box.setAttribute("aria-label", "select " + s.key);
      const key = document.createElement("span");
      key.className = "key";
      key.textContent = s.key;
      const meta = document.createElement("span");
      meta.className = "meta";
      if (s.name) meta.appendChild(chip(s.name, "name"));
      for (const tag of s.tags || []) meta.appendChild(chip(tag));
      for (const [name, value] of Object.entries(s.attributes || {})) {
        meta.appendChild(chip(name + "=" + value, "attr"));
      }
      item.append(box, key, meta);
      item.addEventListener("click", (event) => {
        if (event.target !== box) box.checked = !box.checked;
        toggle(s.key, box.checked);
      });
      list.appendChild(item);
    }
    const total = state.series.length;
    let text = shown.length + " of " + total + " series";
    if (shown.length > MAX_LISTED) text += " (first " + MAX_LISTED + " listed)";
    if (state.selected.size) text += " · " + state.selected.size + " selected";
    $("series-count").textContent = text;
    updateButtons();
  }

  function toggle(key, on) {
    if (on) state.selected.add(key);
    else state.selected.delete(key);
    renderSeries();
  }

  function updateButtons() {
    const any = state.selected.size > 0;
    $("plot").disabled = !any;
    $("fit").disabled = !any;
    $("zoom-out").disabled = state.history.length === 0;
  }

  // -- ranges ------------------------------------------------------------------------------

  function selectedParams() {
    return [...state.selected].sort().map((key) => ["key", key]);
  }

  function setRangeInputs(start, end) {
    const tz = validZone(currentZone()) ? currentZone() : state.inputZone;
    $("range-start").value = wallText(start, tz);
    $("range-end").value = wallText(end, tz);
    state.inputZone = tz;
  }

  /** A new zone keeps the instants of the range: its inputs are rewritten in that zone. */
  function zoneChanged() {
    const tz = currentZone();
    if (!validZone(tz) || tz === state.inputZone) return;
    const start = fromWall($("range-start").value, state.inputZone);
    const end = fromWall($("range-end").value, state.inputZone);
    state.inputZone = tz;
    if (start !== null) $("range-start").value = wallText(start, tz);
    if (end !== null) $("range-end").value = wallText(end, tz);
  }

  function rangeFromInputs() {
    const tz = state.inputZone;
    const start = fromWall($("range-start").value, tz);
    const end = fromWall($("range-end").value, tz);
    if (start === null || end === null) return null;
    if (end <= start) throw new Error("The end of the range must be after its start.");
    return { start, end };
  }

  /** The range from the first to the last point of the selected series (null if empty). */
  async function dataRange() {
    const keys = selectedParams();
    const [first, last] = await Promise.all([
      api("single/", [...keys, ["ts", "0001-01-01T00:00:00.000Z"], ["direction", "after"]]),
      api("single/", [...keys, ["ts", "9999-12-31T23:59:59.999Z"], ["direction", "before"]]),
    ]);
    const times = (sets) => sets.filter((s) => s.data).map((s) => Date.parse(s.data.t));
    const starts = times(first);
    const ends = times(last);
    if (!starts.length) return null;
    // The end is exclusive: the next whole second after the last point (within year 9999).
    const end = Math.floor(Math.max(...ends) / 1000) * 1000 + 1000;
    return { start: Math.min(...starts), end: Math.min(end, LAST_MS) };
  }

  async function fitRange() {
    try {
      const range = await dataRange();
      if (!range) {
        showStatus("The selected series have no points.", false);
        return null;
      }
      setRangeInputs(range.start, range.end);
      return range;
    } catch (err) {
      failed(err);
      return null;
    }
  }

  // -- plotting ----------------------------------------------------------------------------

  async function plot(event, keepHistory) {
    if (event) event.preventDefault();
    if (!state.selected.size) return;
    const tz = currentZone();
    if (!validZone(tz)) {
      showStatus("Unknown time zone: " + tz, true);
      return;
    }
    zoneChanged();
    let range;
    try {
      range = rangeFromInputs() || await fitRange();
    } catch (err) {
      showStatus(err.message, true);
      return;
    }
    if (!range) return;
    if (!keepHistory) state.history = [];
    const params = [
      ...selectedParams(),
      ["start", new Date(range.start).toISOString()],
      ["end", new Date(range.end).toISOString()],
      ["tz", tz],
    ];
    if ($("interval").value) params.push(["interval", $("interval").value]);
    params.push(["function", $("function").value]);
    $("chart").dataset.state = "loading";
    try {
      const sets = await api("data/", params);
      state.range = range;
      draw(sets, range, tz);
      renderSummary(sets);
      showStatus("", false);
    } catch (err) {
      $("chart").dataset.state = "error";
      failed(err);
    }
    updateButtons();
  }

  function clearChart() {
    if (state.chart) state.chart.destroy();
    state.chart = null;
    const chart = $("chart");
    chart.replaceChildren();
    chart.dataset.state = "empty";
    chart.dataset.points = "0";
    $("summary").tBodies[0].replaceChildren();
  }

  function formatValue(v) {
    if (v === null || v === undefined) return "–";
    if (Number.isInteger(v)) return String(v);
    return String(Number(v.toPrecision(6)));
  }

  function draw(sets, range, tz) {
    clearChart();
    const chart = $("chart");
    const tables = sets.map((set) => [
      set.data.map((p) => Date.parse(p.t)),
      set.data.map((p) => p.v),
    ]);
    const total = tables.reduce((n, t) => n + t[0].length, 0);
    let data;
    if (tables.length === 1) data = tables[0];
    else if (tables.length > 1) data = uPlot.join(tables);
    else data = [[]];
    const rollup = sets.length && sets[0].rollup;
    $("chart-caption").textContent = displayTime(range.start, tz) + " → " +
      displayTime(range.end, tz) + " · " + total + (total === 1 ? " point · " : " points · ") +
      (rollup ? rollup.interval + " " + rollup.function : "raw") + " · " + tz +
      " · drag to zoom";
    const options = {
      width: Math.max(320, chart.clientWidth),
      height: 320,
      ms: 1,
      tzDate: (ts) => zoneDate(ts, tz),
      cursor: { drag: { x: true, y: false, setScale: false } },
      scales: { x: { time: true, range: () => [range.start, range.end] } },
      series: [
        { label: "time", value: (u, ts) => (ts === null ? "–" : displayTime(ts, tz)) },
        ...sets.map((set, i) => ({
          label: set.series.key,
          stroke: COLORS[i % COLORS.length],
          width: 1.5,
          points: { show: set.data.length <= 200 },
          value: (u, v) => formatValue(v),
        })),
      ],
      hooks: { setSelect: [zoomSelection] },
    };
    state.chart = new uPlot(options, data, chart);
    chart.dataset.points = String(total);
    chart.dataset.series = String(sets.length);
    chart.dataset.start = new Date(range.start).toISOString();
    chart.dataset.end = new Date(range.end).toISOString();
    chart.dataset.state = "ready";
  }

  function zoomSelection(u) {
    const width = u.select.width;
    if (width < 4) return;
    const lo = Math.floor(u.posToVal(u.select.left, "x"));
    const hi = Math.ceil(u.posToVal(u.select.left + width, "x"));
    u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
    if (hi <= lo || !state.range) return;
    state.history.push(state.range);
    setRangeInputs(lo, hi);
    plot(null, true);
  }

  function zoomOut() {
    const previous = state.history.pop();
    if (!previous) return;
    setRangeInputs(previous.start, previous.end);
    plot(null, true);
  }

  function renderSummary(sets) {
    const body = $("summary").tBodies[0];
    body.replaceChildren();
    sets.forEach((set, i) => {
      const row = document.createElement("tr");
      row.dataset.key = set.series.key;
      const name = document.createElement("td");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = COLORS[i % COLORS.length];
      name.append(swatch, document.createTextNode(set.series.key));
      row.appendChild(name);
      const s = set.summary || {};
      for (const [field, value] of [["plotted", set.data.length], ["count", s.count],
        ["mean", s.mean], ["min", s.min], ["max", s.max], ["sum", s.sum], ["stddev", s.stddev]]) {
        const cell = document.createElement("td");
        cell.dataset.field = field;
        cell.textContent = formatValue(value);
        row.appendChild(cell);
      }
      body.appendChild(row);
    });
  }

  // -- start -------------------------------------------------------------------------------

  function start() {
    fillZones();
    $("signin-form").addEventListener("submit", signIn);
    $("signout").addEventListener("click", () => signOut(""));
    $("filter-form").addEventListener("submit", loadSeries);
    $("filter-key").addEventListener("input", renderSeries);
    $("select-none").addEventListener("click", () => {
      state.selected.clear();
      renderSeries();
    });
    $("query-form").addEventListener("submit", (event) => plot(event, false));
    $("fit").addEventListener("click", fitRange);
    $("tz").addEventListener("change", zoneChanged);
    $("zoom-out").addEventListener("click", zoomOut);
    new ResizeObserver(() => {
      const chart = $("chart");
      if (state.chart && chart.clientWidth) {
        state.chart.setSize({ width: Math.max(320, chart.clientWidth), height: 320 });
      }
    }).observe($("chart"));
    if (typeof uPlot === "undefined") {
      showStatus("The chart library is missing from this installation: run " +
        "build_support/ui_assets.py (make install and every wheel build do) and reinstall.", true);
    }
    if (sessionStorage.getItem(AUTH_ITEM)) {
      showSignedIn(true);
      loadSeries(null);
    } else {
      showSignedIn(false);
    }
  }

  start();
}());
