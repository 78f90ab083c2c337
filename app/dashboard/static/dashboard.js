// Orderlens dashboard: reads the service's own JSON API (same origin only) and shows
// money exactly as the API writes it. No framework, no inline handlers (CSP: self only).
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const PERIOD_KEYS = ["start", "end", "fx_mode"];
  const state = { start: "", end: "", fx_mode: "" };
  const POLL_MS = 500;

  // ---------- helpers ----------

  class ApiError extends Error {
    constructor(status, body) {
      const error = body && body.error ? body.error : null;
      super(error ? `${error.message} (${error.code})` : `HTTP ${status}`);
      this.status = status;
      this.body = body;
    }
  }

  // ---------- the read key ----------
  // With READ_ACCESS=key every data read needs X-API-Key. The page asks for a key once,
  // only when the API answers 401, and keeps it in sessionStorage (this tab, until it is
  // closed); it is sent in the header only, never put in a URL.

  const KEY_STORE = "orderlens.apiKey";
  let keyPrompt = null; // the one open prompt that every refused request waits on
  let keyDeclined = false;
  let memoryKey = ""; // the key when sessionStorage is refused

  function storedKey() {
    try {
      return window.sessionStorage.getItem(KEY_STORE) || "";
    } catch (_) {
      return "";
    }
  }

  function keyDialog() {
    let dialog = $("key-dialog");
    if (dialog) return dialog;
    dialog = make("dialog");
    dialog.id = "key-dialog";
    dialog.setAttribute("aria-labelledby", "key-dialog-title");
    const form = make("form");
    form.id = "key-form";
    form.noValidate = true;
    const title = make("h2", "API key needed");
    title.id = "key-dialog-title";
    const help = make("p", "This service shows its data only to holders of a key (a read key or the write key).");
    const label = make("label", "X-API-Key ");
    const input = make("input");
    input.id = "key-input";
    input.type = "password";
    input.autocomplete = "off";
    input.required = true;
    label.append(input);
    const refused = make("p", "", "error");
    refused.id = "key-dialog-error";
    refused.setAttribute("role", "alert");
    refused.hidden = true;
    const submit = make("button", "Use this key");
    submit.type = "submit";
    submit.id = "key-submit";
    const cancel = make("button", "Cancel", "secondary");
    cancel.type = "button";
    cancel.id = "key-cancel";
    const actions = make("div", null, "actions");
    actions.append(submit, " ", cancel);
    form.append(title, help, label, refused, actions);
    dialog.append(form);
    document.body.append(dialog);
    return dialog;
  }

  /** Ask for a key (once for every request refused meanwhile); null when declined. */
  function askKey(wasRefused) {
    if (keyDeclined) return Promise.resolve(null);
    if (keyPrompt) return keyPrompt;
    keyPrompt = new Promise((resolve) => {
      const dialog = keyDialog();
      const input = $("key-input");
      const error = $("key-dialog-error");
      error.textContent = wasRefused ? "That key was refused; enter another." : "";
      error.hidden = !wasRefused;
      input.value = "";
      const done = (key) => {
        $("key-form").removeEventListener("submit", onSubmit);
        $("key-cancel").removeEventListener("click", onCancel);
        dialog.removeEventListener("cancel", onCancel);
        if (dialog.open) dialog.close();
        keyPrompt = null;
        resolve(key);
      };
      const onSubmit = (event) => {
        event.preventDefault();
        const key = input.value.trim();
        if (!key) return;
        try {
          window.sessionStorage.setItem(KEY_STORE, key);
        } catch (_) {
          // Storage refused (private mode): the key lives until the page is left.
        }
        memoryKey = key;
        done(key);
      };
      const onCancel = (event) => {
        event.preventDefault();
        keyDeclined = true;
        done(null);
      };
      $("key-form").addEventListener("submit", onSubmit);
      $("key-cancel").addEventListener("click", onCancel);
      dialog.addEventListener("cancel", onCancel);
      dialog.showModal();
      input.focus();
    });
    return keyPrompt;
  }

  const currentKey = () => storedKey() || memoryKey;

  /** fetch() with the key in X-API-Key when one is held; a 401 asks for one and retries. */
  async function api(path, init = {}) {
    for (let attempt = 0; ; attempt += 1) {
      const key = currentKey();
      const headers = new Headers(init.headers || {});
      if (key) headers.set("X-API-Key", key);
      const response = await fetch(path, { ...init, headers });
      if (response.status !== 401 || attempt >= 3) return response;
      // Another request may have got a key meanwhile: try that before asking.
      if (currentKey() && currentKey() !== key) continue;
      if (!(await askKey(Boolean(key)))) return response;
    }
  }

  async function errorBody(response) {
    try {
      return await response.json();
    } catch (_) {
      return null;
    }
  }

  async function getJson(path) {
    const response = await api(path, { headers: { Accept: "application/json" } });
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    if (!response.ok) throw new ApiError(response.status, body);
    return body;
  }

  /** `path` with the chosen period and FX mode (plus `extra`) as its query. */
  function withPeriod(path, extra = {}, keys = PERIOD_KEYS) {
    const query = new URLSearchParams(extra);
    for (const key of keys) if (state[key]) query.set(key, state[key]);
    const text = query.toString();
    return text ? `${path}?${text}` : path;
  }

  function setText(id, text) {
    $(id).textContent = text;
  }

  function make(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function showError(id, error) {
    const node = $(id);
    if (error) {
      node.textContent = error instanceof Error ? error.message : String(error);
      node.hidden = false;
    } else {
      node.textContent = "";
      node.hidden = true;
    }
  }

  // Numbers in the browser's locale (its grouping and decimal signs). Money stays exact:
  // the API's decimal string is grouped digit by digit (a BigInt), never made a float.
  const NUMBERS = new Intl.NumberFormat();
  const DECIMAL_SIGN = (NUMBERS.formatToParts(1.5).find((p) => p.type === "decimal") || { value: "." }).value;
  const count = (n) => (typeof n === "number" ? NUMBERS.format(n) : "—");
  /** "13544735.59" as "13,544,735.59" (en-US), "13.544.735,59" (pt-BR), exactly. */
  function decimal(s) {
    if (s === null || s === undefined) return "—";
    const text = String(s);
    const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text);
    if (!match) return text;
    const [, sign, whole, fraction] = match;
    return sign + NUMBERS.format(BigInt(whole)) + (fraction === undefined ? "" : DECIMAL_SIGN + fraction);
  }
  const brl = (s) => (s === null || s === undefined ? "—" : `R$ ${decimal(s)}`);
  const usd = (s) => (s === null || s === undefined ? "—" : `US$ ${decimal(s)}`);
  /** An exchange rate to 4 significant digits (the exact one is the element's title). */
  const RATES = new Intl.NumberFormat(undefined, { minimumSignificantDigits: 4, maximumSignificantDigits: 4 });
  const rate = (s) => RATES.format(Number(s));
  // One date format on the whole page, the browser's own numeric one: the one its date
  // pickers show (en-US 12/06/2024, pt-BR and en-GB 06/12/2024), always with the year.
  const DATES = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "2-digit", day: "2-digit", timeZone: "UTC",
  });
  /** A timestamp's day, in the page's one date format. */
  const dayOf = (time) => DATES.format(new Date(time));
  /** A YYYY-MM-DD in the page's one date format. */
  const day = (iso) => (iso ? dayOf(stamp(iso)) : "—");
  /** An ISO timestamp in UTC as its day and hh:mm. */
  const utc = (iso) => (iso ? `${day(iso.slice(0, 10))} ${iso.slice(11, 16)}` : "—");

  function bytes(n) {
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
    if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
    return `${(n / 1024 ** 3).toFixed(2)} GiB`;
  }

  // ---------- period ----------

  function readLocation() {
    const query = new URLSearchParams(window.location.search);
    for (const key of PERIOD_KEYS) state[key] = query.get(key) || "";
    $("start").value = state.start;
    $("end").value = state.end;
    $("fx-mode").value = state.fx_mode;
  }

  function applyForm(event) {
    event.preventDefault();
    const start = $("start").value;
    const end = $("end").value;
    if (start && end && start > end) {
      setText("period-status", `“From” (${day(start)}) is after “To” (${day(end)}).`);
      $("period-status").classList.add("error");
      return;
    }
    $("period-status").classList.remove("error");
    state.start = start;
    state.end = end;
    state.fx_mode = $("fx-mode").value;
    const query = new URLSearchParams();
    for (const key of PERIOD_KEYS) if (state[key]) query.set(key, state[key]);
    const search = query.toString();
    window.history.replaceState(null, "", search ? `?${search}` : window.location.pathname);
    loadAnalytics();
  }

  function resetPeriod() {
    $("start").value = "";
    $("end").value = "";
    $("period-form").requestSubmit();
  }

  function describePeriod(period) {
    $("period-status").classList.remove("error");
    if (!period || !period.start) {
      setText("period-status", state.start || state.end ? "No orders in this period." : "No orders yet.");
      return;
    }
    const scope = state.start || state.end ? "Orders in the chosen period" : "All orders";
    setText("period-status", `${scope}: ${day(period.start)} to ${day(period.end)}.`);
    if (!state.start && !state.end) {
      // The whole span bounds the pickers.
      for (const id of ["start", "end"]) {
        $(id).min = period.start;
        $(id).max = period.end;
      }
    }
  }

  // ---------- FX ----------

  const SOURCES = {
    ecb: "European Central Bank reference rates (shipped with the service, offline)",
    freecurrencyapi: "freecurrencyapi.com",
  };

  function showFx(fx) {
    const box = $("fx-note");
    box.replaceChildren();
    box.classList.toggle("stale", Boolean(fx && fx.stale));
    const line = make("p");
    if (!fx) {
      line.textContent = "No USD figures for this period, so no exchange rate is used.";
      box.append(line);
      return;
    }
    const source = SOURCES[fx.source] || fx.source;
    const strong = make("strong", "Exchange rate: ");
    line.append(strong);
    if (fx.rate !== null) {
      const shown = make("span", rate(fx.rate));
      shown.title = `${fx.rate} exactly`;
      line.append(`1 ${fx.base} = `, shown, ` ${fx.quote}: `);
      // The offline ECB data ends on the day the package was made: say so, not an age.
      if (fx.source === "ecb") line.append(`ECB reference rate of ${day(fx.as_of)}, the latest the offline data holds`);
      else line.append(`${source} rate of ${day(fx.as_of)}`);
    } else {
      line.append(
        `each order at its own day's ${fx.base}→${fx.quote} rate (${fx.days} days' rates, ` +
          `${day(fx.first_as_of)} to ${day(fx.last_as_of)}), ${source}`,
      );
    }
    if (fx.fetched_at && fx.source !== "ecb") line.append(`, fetched ${utc(fx.fetched_at)} UTC`);
    line.append(".");
    if (fx.stale) {
      line.append(make("span", "stale", "badge warn"));
      const why = make(
        "p",
        "The rate source could not be reached: USD figures use the last rate known, which may be out of date.",
      );
      box.append(line, why);
      return;
    }
    box.append(line);
  }

  // ---------- KPIs ----------

  async function loadKpis() {
    const section = $("kpis");
    section.setAttribute("aria-busy", "true");
    try {
      const [kpis, ticket] = await Promise.all([
        getJson(withPeriod("/kpis")),
        getJson(withPeriod("/insights/average-ticket")),
      ]);
      showError("kpi-error", null);
      renderKpis(kpis, ticket);
      describePeriod(kpis.period);
      // The average ticket's rate covers every order day of the period (order_date mode).
      showFx(ticket.fx || kpis.fx);
    } catch (error) {
      showError("kpi-error", error);
      setText("period-status", "");
      for (const id of ["kpi-day", "kpi-product", "kpi-ticket-brl"]) setText(id, "—");
    } finally {
      section.setAttribute("aria-busy", "false");
    }
  }

  function renderKpis(kpis, ticket) {
    const busiest = kpis.max_order_date;
    setText("kpi-day", busiest ? day(busiest.date) : "—");
    setText("kpi-day-orders", busiest ? `${count(busiest.orders)} orders, the most of any day` : "No orders");

    const product = kpis.most_demanded_product;
    setText("kpi-product", product ? product.product_name : "—");
    setText("kpi-product-units", product ? `#${product.product_id} · ${count(product.quantity)} units` : "No orders");
    setText("kpi-product-brl", product ? brl(product.sales_brl) : "—");
    setText("kpi-product-usd", product ? usd(product.sales_usd) : "—");

    const list = $("kpi-categories");
    list.replaceChildren();
    for (const category of kpis.top_categories) {
      const item = make("li", category.category);
      item.append(" ", make("span", `${count(category.quantity)} units`, "units"));
      list.append(item);
    }
    if (!kpis.top_categories.length) list.append(make("li", "No orders"));

    setText("kpi-ticket-brl", brl(ticket.average_ticket_brl));
    setText("kpi-ticket-usd", ticket.average_ticket_usd ? usd(ticket.average_ticket_usd) : "");
    setText("kpi-orders", count(ticket.orders));
    setText("kpi-revenue", brl(ticket.revenue_brl));
  }

  // ---------- daily revenue and charts ----------

  async function loadDaily() {
    const body = $("daily-rows");
    try {
      const items = [];
      let cursor = null;
      // At most 20 pages of 1000 days: decades of daily figures.
      for (let page = 0; page < 20; page += 1) {
        const extra = { limit: "1000" };
        if (cursor) extra.cursor = cursor;
        const answer = await getJson(withPeriod("/insights/daily-revenue", extra));
        items.push(...answer.items);
        cursor = answer.next_cursor;
        if (!cursor) break;
      }
      showError("daily-error", null);
      for (const id of ["chart-brl", "chart-usd"]) showError(`${id}-error`, null);
      try {
        drawRevenue(items, Boolean(cursor));
      } catch (error) {
        for (const id of ["chart-brl", "chart-usd"]) showError(`${id}-error`, `The chart could not be drawn: ${error.message}`);
      }
      body.replaceChildren(
        ...items.map((item) => {
          const row = make("tr");
          row.append(make("td", day(item.date)));
          row.append(make("td", count(item.orders), "num"));
          row.append(make("td", count(item.quantity), "num"));
          row.append(make("td", decimal(item.revenue_brl), "num"));
          row.append(make("td", decimal(item.revenue_usd), "num"));
          row.append(make("td", decimal(item.revenue_brl_7d_avg), "num"));
          return row;
        }),
      );
      if (cursor) {
        // More days than the table shows: say so rather than end the table silently.
        const row = make("tr");
        const cell = make("td", `The first ${items.length} days of the period; the CSV has them all.`);
        cell.colSpan = 6;
        row.append(cell);
        body.append(row);
      }
      if (!items.length) {
        const row = make("tr");
        const cell = make("td", "No orders in this period.");
        cell.colSpan = 6;
        row.append(cell);
        body.append(row);
      }
    } catch (error) {
      body.replaceChildren();
      showError("daily-error", error);
      for (const id of ["chart-brl", "chart-usd"]) {
        hideChart(id);
        showError(`${id}-error`, `The chart could not be drawn: ${error.message}`);
      }
    }
  }

  // ---------- charts ----------
  // Drawn in the browser by the vendored Apache ECharts (static/echarts.min.js) with its
  // SVG renderer, from the same JSON the tables show. Money is plotted as a Number (a
  // point's height needs no cent), but every figure a tooltip shows is the API's exact
  // text, formatted by `decimal`. Tooltips are built as elements (`textContent`): an HTML
  // string's style attributes would be refused by the page's CSP.

  const INK = "#1b1f24";
  const MUTED = "#4b5563";
  const GRID = "#e5e7eb";
  const BLUE = "#1d4ed8";
  const AMBER = "#b45309";
  const GREEN = "#047857";
  const GREY = "#6b7280";
  const FONT = getComputedStyle(document.documentElement).fontFamily;
  const PHONE_PX = 480; // a chart box narrower than this gets the phone's layout
  const charts = {}; // id -> {chart, build, width}

  const COMPACT = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });
  const UNITS = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
  /** A day's timestamp (UTC midnight) from a YYYY-MM-DD; any year, 1 to 9999. */
  function stamp(iso) {
    const [year, month, date] = iso.split("-").map(Number);
    const d = new Date(0);
    d.setUTCFullYear(year, month - 1, date);
    return d.getTime();
  }
  const ONE_DAY = 86400000;

  /** A tooltip: a title and rows of [key, value, swatch class], as elements. */
  function tip(title, rows) {
    const box = make("div", null, "tip");
    box.append(make("strong", title));
    for (const [key, value, swatch] of rows) {
      const line = make("div", null, "tip-row");
      if (swatch) line.append(make("span", "", `swatch ${swatch}`));
      line.append(make("span", `${key}: `), make("span", value, "tip-value"));
      box.append(line);
    }
    return box;
  }

  function baseOption(width) {
    const phone = width < PHONE_PX;
    const size = phone ? 12 : 13;
    return {
      phone,
      size,
      option: {
        animation: false,
        useUTC: true,
        textStyle: { fontFamily: FONT, fontSize: size, color: INK },
        tooltip: {
          confine: true,
          className: "chart-tip",
          backgroundColor: "#ffffff",
          borderColor: "#9ca3af",
          textStyle: { color: INK, fontSize: size },
          // No show/hide transition: the tooltip follows at once.
          transitionDuration: 0,
        },
      },
    };
  }

  const axisLabel = (size) => ({ fontSize: size, color: MUTED, hideOverlap: true });

  /** Draw (or redraw) chart `id` from `build(width)`; it is built anew when its box's
   * width changes, keeping the part of the time axis the reader zoomed to. */
  function draw(id, build, after) {
    const box = $(id);
    box.hidden = false;
    let entry = charts[id];
    if (!entry) {
      const chart = echarts.init(box, null, { renderer: "svg" });
      entry = { chart, build, width: 0, after: null };
      charts[id] = entry;
      chart.on("dataZoom", () => entry.after && entry.after(chart));
      new ResizeObserver(() => {
        const width = box.clientWidth;
        if (!width || width === entry.width) return;
        const zoom = entry.chart.getOption().dataZoom;
        const kept = zoom && zoom.length ? { start: zoom[0].start, end: zoom[0].end } : null;
        render(entry, width, kept);
      }).observe(box);
    }
    entry.build = build;
    entry.after = after || null;
    render(entry, box.clientWidth, null);
  }

  function render(entry, width, kept) {
    if (!width) return;
    entry.width = width;
    const option = entry.build(width);
    if (kept && option.dataZoom) {
      for (const zoom of option.dataZoom) {
        delete zoom.startValue;
        delete zoom.endValue;
        Object.assign(zoom, kept);
      }
    }
    entry.chart.resize();
    entry.chart.setOption(option, { notMerge: true });
    if (entry.after) entry.after(entry.chart);
    const box = entry.chart.getDom();
    box.dataset.drawn = String(Number(box.dataset.drawn || 0) + 1);
  }

  function hideChart(id) {
    if (charts[id]) charts[id].chart.clear();
    $(id).hidden = true;
  }

  /** A time axis and its zoom (the wheel or a pinch, and a slider under the plot). */
  /** A time chart's frame (the daily revenue and the forecast): the base option, the
   * grid, the time axis opened on `view`, and a value axis from 0 in compact numbers. */
  function timeFrame(width, first, last, view) {
    const { size, phone, option } = baseOption(width);
    return {
      ...option,
      grid: { left: 4, right: phone ? 10 : 16, top: 12, bottom: 36, outerBoundsMode: "same" },
      ...timeAxis(width, size, first, last, view),
      yAxis: {
        type: "value",
        min: 0,
        splitNumber: phone ? 3 : 5,
        axisLabel: { ...axisLabel(size), formatter: (v) => COMPACT.format(v) },
        splitLine: { lineStyle: { color: GRID } },
      },
    };
  }

  function timeAxis(width, size, first, last, view) {
    const days = Math.max(1, (last - first) / ONE_DAY);
    return {
      xAxis: {
        type: "time",
        min: first,
        max: last,
        // At least a day between ticks: a short period is labelled a day at a time.
        minInterval: ONE_DAY,
        splitNumber: Math.max(2, Math.floor(width / 150)),
        // The end labels inside the plot's width: the first clear of the value axis'
        // "0", the last clear of the chart's right edge; and all of them below the "0".
        axisLabel: {
          ...axisLabel(size), formatter: (value) => dayOf(value), alignMinLabel: "left", alignMaxLabel: "right", margin: 12,
        },
        axisLine: { lineStyle: { color: GREY } },
        splitLine: { show: false },
      },
      dataZoom: [
        { type: "inside", xAxisIndex: 0, startValue: view[0], endValue: view[1], minValueSpan: Math.min(days, 3) * ONE_DAY },
        {
          type: "slider",
          xAxisIndex: 0,
          startValue: view[0],
          endValue: view[1],
          height: 22,
          bottom: 6,
          // The handles' labels would run off the chart at its edges: the caption says
          // which days are shown instead.
          showDetail: false,
          brushSelect: false,
          borderColor: "#d1d5db",
        },
      ],
    };
  }

  /** The days before and after the bulk of the orders, left out of the first view: a
   * few stray order days (at most 2% of the orders on each side) separated from the
   * rest by 30 or more days without an order. [first shown, last shown, left out]. */
  function bulkOfDays(items) {
    const sold = items.filter((i) => i.orders > 0);
    const all = sold.reduce((n, i) => n + i.orders, 0);
    const GAP = 30 * ONE_DAY;
    const SHARE = 0.02;
    let from = 0;
    let to = sold.length - 1;
    let share = 0;
    for (let i = 0; i < sold.length - 1; i += 1) {
      share += sold[i].orders;
      if (share > SHARE * all) break;
      if (stamp(sold[i + 1].date) - stamp(sold[i].date) >= GAP) from = i + 1;
    }
    share = 0;
    for (let i = sold.length - 1; i > from; i -= 1) {
      share += sold[i].orders;
      if (share > SHARE * all) break;
      if (stamp(sold[i].date) - stamp(sold[i - 1].date) >= GAP) to = i - 1;
    }
    if (!sold.length) return null;
    const before = sold.slice(0, from);
    const after = sold.slice(to + 1);
    return { first: sold[from].date, last: sold[to].date, before, after };
  }

  const plural = (n, one, many) => `${count(n)} ${n === 1 ? one : many}`;

  /** What a revenue chart's caption says of the days outside its first view. */
  function strayNote(bulk) {
    const parts = [];
    const say = (days, where) => {
      const orders = days.reduce((n, i) => n + i.orders, 0);
      parts.push(`${plural(days.length, "day", "days")} with orders (${plural(orders, "order", "orders")}) ${where}`);
    };
    if (bulk.before.length) say(bulk.before, `before ${day(bulk.first)}`);
    if (bulk.after.length) say(bulk.after, `after ${day(bulk.last)}`);
    if (!parts.length) return "";
    return `Outside the first view, far from the other orders: ${parts.join(" and ")}.`
      + " Drag the slider's handles, or zoom out, to see them.";
  }

  /** A time chart's caption: "Shown: from … to …", kept as it is zoomed. */
  const sayShown = (noteId) => (chart) => {
    const [zoom] = chart.getOption().dataZoom || [];
    if (zoom && zoom.startValue !== undefined) {
      setText(noteId, `Shown: ${dayOf(zoom.startValue)} to ${dayOf(zoom.endValue)}.`);
    }
  };

  /** Exact mean of money strings, to the cent, half away from zero (as the API's). */
  function meanMoney(values) {
    const cents = values.map((v) => BigInt(String(v).replace(".", "")));
    const sum = cents.reduce((a, b) => a + b, 0n);
    const n = BigInt(values.length);
    const negative = sum < 0n;
    const abs = negative ? -sum : sum;
    const rounded = (2n * abs + n) / (2n * n);
    const text = rounded.toString().padStart(3, "0");
    return `${negative ? "-" : ""}${text.slice(0, -2)}.${text.slice(-2)}`;
  }

  /** The USD 7-day average: the mean of the day's and the six days before's USD revenue
   * (the API's definition for BRL; the API has no USD one). */
  function usdAverages(items) {
    return items.map((_, i) => {
      const window = items.slice(Math.max(0, i - 6), i + 1).map((w) => w.revenue_usd);
      return window.some((v) => v === null || v === undefined) ? null : meanMoney(window);
    });
  }

  /** The revenue charts; `cut`: the period has more days than were read (20,000). */
  function drawRevenue(items, cut) {
    const bulk = bulkOfDays(items);
    const unread = cut
      ? ` Only the period's first ${count(items.length)} days are drawn; the CSV has them all.`
      : "";
    for (const currency of ["BRL", "USD"]) {
      const id = `chart-${currency.toLowerCase()}`;
      if (!items.length || !bulk) {
        hideChart(id);
        setText(`${id}-note`, cut
          ? `No orders in the period's first ${count(items.length)} days.`
          : "No orders in this period.");
        setText(`${id}-stray`, unread.trim());
        continue;
      }
      const money = currency === "BRL" ? brl : usd;
      const amounts = items.map((i) => (currency === "BRL" ? i.revenue_brl : i.revenue_usd));
      const averages = currency === "BRL" ? items.map((i) => i.revenue_brl_7d_avg) : usdAverages(items);
      const points = (values) => values.map((v, i) => [stamp(items[i].date), v === null ? null : Number(v)]);
      const first = stamp(items[0].date);
      const last = stamp(items[items.length - 1].date);
      const view = [stamp(bulk.first), stamp(bulk.last)];
      const build = (width) => {
        const { phone, option } = baseOption(width);
        // Dots while there are few enough days to tell apart.
        const dots = (view[1] - view[0]) / ONE_DAY < (phone ? 31 : 62);
        return {
          ...timeFrame(width, first, last, view),
          tooltip: {
            ...option.tooltip,
            trigger: "axis",
            formatter: (params) => {
              const i = params[0].dataIndex;
              const item = items[i];
              return tip(day(item.date), [
                ["Revenue", money(amounts[i]), "swatch-line blue"],
                ["7-day average", money(averages[i]), "swatch-dash amber"],
                ["Orders", count(item.orders)],
              ]);
            },
          },
          series: [
            {
              name: "Revenue",
              type: "line",
              data: points(amounts),
              color: BLUE,
              lineStyle: { width: 2 },
              showSymbol: dots,
              symbolSize: 5,
              sampling: "lttb",
            },
            {
              name: "7-day average",
              type: "line",
              data: points(averages),
              color: AMBER,
              lineStyle: { width: 2, type: "dashed" },
              showSymbol: false,
              sampling: "lttb",
            },
          ],
        };
      };
      draw(id, build, sayShown(`${id}-note`));
      setText(`${id}-stray`, (strayNote(bulk) + unread).trim());
    }
  }

  // The category chart lists this many, then every other category as one bar.
  const TOP_CATEGORIES = 10;

  async function loadCategoryChart() {
    const id = "chart-categories";
    try {
      const answer = await getJson(withPeriod("/insights/top-categories", { limit: String(TOP_CATEGORIES) }, ["start", "end"]));
      showError(`${id}-error`, null);
      drawCategories(answer);
    } catch (error) {
      hideChart(id);
      showError(`${id}-error`, `The chart could not be drawn: ${error.message}`);
    }
  }

  function drawCategories(answer) {
    const id = "chart-categories";
    const bars = answer.items.map((c) => ({ name: c.category, full: c.category, value: c.quantity }));
    if (answer.other) {
      const name = `Other (${plural(answer.other.categories, "category", "categories")})`;
      bars.push({ name, full: `${name}, summed`, value: answer.other.quantity, other: true });
    }
    const listed = answer.items.length;
    const others = answer.other ? answer.other.categories : 0;
    setText(`${id}-caption`, others
      ? `Units sold in the period: the ${listed} categories that sold the most, then the other ${plural(others, "category", "categories")} together`
      : `Units sold in the period, per category (${plural(listed, "category", "categories")})`);
    if (!bars.length) {
      hideChart(id);
      setText(`${id}-caption`, "No orders in this period.");
      return;
    }
    // Each bar a row of its own: the box grows with the bars (through the CSSOM).
    $(id).style.height = `${Math.max(160, 48 + bars.length * 30)}px`;
    draw(id, (width) => {
      const { size, phone, option } = baseOption(width);
      // Names beyond the room are cut with "…"; the tooltip has them whole.
      const nameRoom = Math.round(Math.min(phone ? 0.42 : 0.34, 280 / width) * width);
      const widest = Math.max(...bars.map((b) => count(b.value).length));
      return {
        ...option,
        grid: { left: 4, right: Math.ceil(widest * size * 0.62) + 12, top: 8, bottom: 6, outerBoundsMode: "same" },
        xAxis: {
          type: "value",
          splitNumber: phone ? 3 : 5,
          axisLabel: { ...axisLabel(size), formatter: (v) => COMPACT.format(v) },
          splitLine: { lineStyle: { color: GRID } },
        },
        yAxis: {
          type: "category",
          inverse: true,
          data: bars.map((b) => b.name),
          axisTick: { show: false },
          axisLine: { lineStyle: { color: GREY } },
          axisLabel: { fontSize: size, color: INK, width: nameRoom, overflow: "truncate", interval: 0 },
        },
        tooltip: {
          ...option.tooltip,
          trigger: "axis",
          axisPointer: { type: "shadow" },
          formatter: (params) => {
            const bar = bars[params[0].dataIndex];
            return tip(bar.full, [["Units sold", count(bar.value)]]);
          },
        },
        series: [
          {
            type: "bar",
            data: bars.map((b) => ({ value: b.value, itemStyle: { color: b.other ? GREY : BLUE } })),
            barMaxWidth: 22,
            label: { show: true, position: "right", fontSize: size, color: INK, formatter: (p) => count(p.value) },
          },
        ],
      };
    });
  }

  // ---------- CSV downloads ----------

  function downloadName(response, path) {
    const match = /filename="?([^";]+)"?/.exec(response.headers.get("Content-Disposition") || "");
    return match ? match[1] : path.split("?")[0].split("/").pop() || "download.csv";
  }

  /** With a key held, a download is fetched with it and saved from a blob: URL; without
   * one (public reads) the link is followed as is and the browser streams the file. */
  async function keyedDownload(event) {
    const link = event.target.closest("#downloads a, a[data-keyed]");
    if (!link || !currentKey() || event.defaultPrevented) return;
    event.preventDefault();
    const path = link.getAttribute("href");
    const note = $("download-error") || make("p", "", "error");
    if (!note.id) {
      note.id = "download-error";
      note.setAttribute("role", "alert");
      $("downloads").append(note);
    }
    showError("download-error", null);
    try {
      const response = await api(path, { headers: { Accept: "text/csv" } });
      if (!response.ok) throw new ApiError(response.status, await errorBody(response));
      const url = URL.createObjectURL(await response.blob());
      const save = make("a");
      save.href = url;
      save.download = downloadName(response, path);
      save.hidden = true;
      document.body.append(save);
      save.click();
      save.remove();
      window.setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (error) {
      showError("download-error", `The download failed: ${error.message}`);
    }
  }

  function updateDownloads() {
    $("dl-orders").href = withPeriod("/orders", { format: "csv" });
    $("dl-daily").href = withPeriod("/insights/daily-revenue", { format: "csv" });
    $("dl-kpis").href = withPeriod("/kpis", { format: "csv" });
    $("dl-fixed").href = withPeriod("/exports/fixed_order_full_information.csv", {}, ["fx_mode"]);
    $("dl-kpi-file").href = withPeriod("/exports/kpi_product_orders.csv", {}, ["fx_mode"]);
  }

  function loadAnalytics() {
    updateDownloads();
    return Promise.all([loadKpis(), loadDaily(), loadCategoryChart()]);
  }

  // ---------- uploads ----------

  function statusBadge(upload) {
    const cls = { succeeded: "ok", failed: "failed", running: "running" }[upload.status] || "";
    const badge = make("span", upload.status, `badge ${cls}`);
    if (upload.status === "failed" && upload.error) badge.title = upload.error.message;
    return badge;
  }

  function rejectsLink(upload) {
    if (!upload.rows_rejected) return make("span", "—", "muted");
    const link = make("a", `CSV (${count(upload.rows_rejected)})`);
    link.href = `${upload.rejects_url}?format=csv`;
    link.dataset.keyed = "1";
    link.setAttribute("aria-label", `Download the ${upload.rows_rejected} rejected rows of upload ${upload.upload_id} as CSV`);
    return link;
  }

  async function loadUploads() {
    const body = $("uploads-rows");
    try {
      const page = await getJson("/uploads?limit=10");
      showError("uploads-error", null);
      body.replaceChildren(
        ...page.items.map((upload) => {
          const row = make("tr");
          row.append(make("td", `#${upload.upload_id}`));
          row.append(make("td", upload.kind));
          row.append(make("td", upload.filename || "—", "file"));
          const status = make("td", null, "status");
          status.append(statusBadge(upload));
          if (upload.status === "failed" && upload.error) status.append(make("span", upload.error.code, "muted code"));
          row.append(status);
          row.append(make("td", utc(upload.started_at)));
          for (const key of ["rows_total", "rows_inserted", "rows_updated", "rows_unchanged"]) {
            row.append(make("td", count(upload[key]), "num"));
          }
          // One column for the rejected rows: their count, linked to their CSV.
          const rejects = make("td", null, "num");
          rejects.append(upload.rows_rejected ? rejectsLink(upload) : count(upload.rows_rejected));
          row.append(rejects);
          return row;
        }),
      );
      if (!page.items.length) {
        const row = make("tr");
        const cell = make("td", "No uploads yet.");
        cell.colSpan = 10;
        row.append(cell);
        body.append(row);
      }
    } catch (error) {
      showError("uploads-error", error);
    }
  }

  // ---------- upload form ----------

  let polling = null;

  function setPhase(phase, status) {
    setText("upload-phase", phase);
    setText("upload-status", status || "");
  }

  function startPolling(kind, filename, sentAt) {
    stopPolling();
    const poll = async () => {
      try {
        const page = await getJson(`/uploads?kind=${encodeURIComponent(kind)}&limit=5`);
        const mine = page.items.find(
          (u) => u.status === "running" && u.filename === filename && Date.parse(u.started_at) >= sentAt - 60000,
        );
        if (mine) {
          setText(
            "upload-status",
            `Upload #${mine.upload_id}: ${bytes(mine.bytes_received)} received, ${count(mine.rows_total)} rows read so far.`,
          );
        }
      } catch (_) {
        // Progress is a courtesy; the upload's own answer says how it ended.
      }
    };
    polling = window.setInterval(poll, POLL_MS);
    poll();
  }

  function stopPolling() {
    if (polling !== null) window.clearInterval(polling);
    polling = null;
  }

  function addField(list, term, value) {
    const dd = make("dd");
    if (value instanceof Node) dd.append(value);
    else dd.textContent = value;
    list.append(make("dt", term), dd);
  }

  function renderReport(report) {
    const list = $("upload-report-fields");
    list.replaceChildren();
    setText("upload-report-title", `Report of upload #${report.upload_id} (${report.kind}, ${report.filename || "no name"})`);
    const status = make("span");
    status.append(statusBadge(report));
    addField(list, "Status", status);
    addField(list, "Rows read", count(report.rows_total));
    addField(list, "Inserted", count(report.rows_inserted));
    addField(list, "Updated", count(report.rows_updated));
    addField(list, "Unchanged", count(report.rows_unchanged));
    const share = report.rejected_share || 0;
    addField(list, "Rejected", share
      ? `${count(report.rows_rejected)} (${(share * 100).toFixed(1)}%)`
      : count(report.rows_rejected));
    // Half or more of the file rejected: said above the figures, where it is seen.
    const loud = share >= 0.5 && report.warnings && report.warnings.length;
    setText("upload-report-warning", loud ? report.warnings.join(" ") : "");
    $("upload-report-warning").hidden = !loud;
    const codes = Object.entries(report.rejects_by_code || {});
    if (codes.length) {
      const ul = make("ul");
      for (const [code, n] of codes.sort()) ul.append(make("li", `${code}: ${count(n)}`));
      addField(list, "Rejected by reason", ul);
    }
    if (report.rows_rejected) addField(list, "Rejected rows", rejectsLink(report));
    if (report.warnings && report.warnings.length) {
      const ul = make("ul");
      for (const warning of report.warnings) ul.append(make("li", warning));
      addField(list, "Warnings", ul);
    }
    if (report.sha256) addField(list, "SHA-256", report.sha256);
    $("upload-report").hidden = false;
  }

  function uploadFailed(message) {
    stopPolling();
    $("upload-progress").hidden = true;
    showError("upload-error", message);
  }

  function startUpload(event) {
    event.preventDefault();
    const form = $("upload-form");
    const file = $("upload-file").files[0];
    // The form's key, or the one this tab holds for reading (it works if it is the write key).
    const key = $("upload-key").value.trim() || currentKey();
    const kind = form.elements.kind.value;
    $("upload-report").hidden = true;
    if (!file) return showError("upload-error", "Choose a CSV file to upload.");
    if (!key) return showError("upload-error", "Enter the API key: uploads need it.");
    showError("upload-error", null);

    const data = new FormData();
    data.append("file", file, file.name);
    const query = $("upload-update").checked ? "?on_conflict=update" : "";
    const xhr = new XMLHttpRequest();
    const bar = $("upload-bar");
    const button = $("upload-submit");
    const sentAt = Date.now();

    xhr.open("POST", `/uploads/${encodeURIComponent(kind)}${query}`);
    xhr.setRequestHeader("X-API-Key", key);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (e) => {
      if (!e.lengthComputable) return;
      bar.max = e.total;
      bar.value = e.loaded;
      setPhase("Sending the file…", `${Math.floor((100 * e.loaded) / e.total)}% (${bytes(e.loaded)} of ${bytes(e.total)})`);
    });
    xhr.upload.addEventListener("load", () => {
      bar.removeAttribute("value"); // indeterminate: the service is checking and loading
      setPhase("Checking and loading rows…", "The file is sent; the service is checking every row.");
      startPolling(kind, file.name, sentAt);
    });
    xhr.addEventListener("load", () => {
      stopPolling();
      button.disabled = false;
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch (_) {
        body = null;
      }
      if (xhr.status === 201 && body) {
        bar.max = 1;
        bar.value = 1;
        setPhase("Done", `Upload #${body.upload_id} finished in ${((Date.now() - sentAt) / 1000).toFixed(1)} s.`);
        renderReport(body);
        loadUploads();
        loadAnalytics();
        return;
      }
      const error = new ApiError(xhr.status, body);
      const hint = { 401: " Check the API key.", 403: " Uploads need the write key." }[xhr.status] || "";
      uploadFailed(`The upload was refused: ${error.message}.${hint}`);
      loadUploads();
    });
    xhr.addEventListener("error", () => {
      button.disabled = false;
      uploadFailed("The service could not be reached; nothing was confirmed.");
    });

    button.disabled = true;
    bar.max = file.size || 1;
    bar.value = 0;
    setPhase("Sending the file…", `0% (0 B of ${bytes(file.size)})`);
    $("upload-progress").hidden = false;
    xhr.send(data);
    return undefined;
  }

  // ---------- layout cues ----------

  // Phones show no scrollbar: a table wider than its box says so above it, and fades at
  // the edge where more columns are.
  function watchTableScrolling() {
    const update = (box) => {
      const scrolls = box.scrollWidth > box.clientWidth + 1;
      box.classList.toggle("scrolls", scrolls);
      box.classList.toggle("at-end", box.scrollLeft + box.clientWidth >= box.scrollWidth - 1);
      const hint = box.previousElementSibling;
      if (hint && hint.classList.contains("scroll-hint")) hint.hidden = !scrolls;
    };
    const observer = new ResizeObserver((entries) => {
      for (const entry of entries) update(entry.target.closest(".table-scroll"));
    });
    for (const box of document.querySelectorAll(".table-scroll")) {
      observer.observe(box);
      observer.observe(box.querySelector("table"));
      box.addEventListener("scroll", () => update(box), { passive: true });
    }
  }

  // ---------- forecast ----------

  function figure(value, digits = 2) {
    return value === null || value === undefined ? "—" : Number(value).toFixed(digits);
  }

  // The three views of the panel: the whole shop (first: what a planner looks at), one
  // category, one product.
  const WHOSE = { total: "the whole shop's", category: "the category's", product: "the product's" };
  const BAND = "Units per day; shaded: the forecast's 80% interval (darker) and 95% interval";
  // A level's `unallocated`: of its forecast, what no product's own forecast holds.
  const NOT_YET = "products not yet selling";

  // A level's model is "<model>+<reconciliation>" (levels.py), or "sum_of_products".
  const LEVEL_MODELS = {
    SeasonalNaive: "seasonal naive (each day as the same weekday a week before)",
    WindowAverage: "the average of the recent days",
    SeasonalWindowAverage: "the average of the same weekday over the recent weeks",
    AutoETS: "exponential smoothing",
    Ensemble: "the mean of exponential smoothing and the two window averages",
  };
  const RECONCILERS = {
    BottomUp: "bottom-up: the total is the sum of the categories",
    TopDown: "top-down: the total's forecast is shared among the categories in proportion to theirs",
    "MinTrace(ols)": "by moving the total and the categories as little as possible until they add up",
    "MinTrace(wls_struct)": "by moving the total and the categories as little as possible until they add up, the total (the sum of them all) the most",
  };

  function forecastView() {
    const checked = document.querySelector('input[name="forecast-view"]:checked');
    return checked ? checked.value : "total";
  }

  /** The level's model and reconciliation in words, e.g. for "AutoETS+MinTrace(ols)". */
  function levelModel(forecast) {
    const whose = forecast.level === "total" ? "the whole shop" : forecast.category;
    const owned = `${count(forecast.products)} of its products have a forecast of their own.`;
    if (forecast.model === "sum_of_products") {
      return `Model for ${whose}: the sum of its products' forecasts (too little history to`
        + ` forecast it on its own). ${owned}`;
    }
    const plus = forecast.model.indexOf("+");
    const model = plus < 0 ? forecast.model : forecast.model.slice(0, plus);
    const reconciler = plus < 0 ? "" : forecast.model.slice(plus + 1);
    const agreed = reconciler
      ? `, made to agree with the other levels ${RECONCILERS[reconciler] || `by ${reconciler}`}`
      : "";
    return `Model for ${whose}: ${LEVEL_MODELS[model] || "a statistical model"}${agreed}.`
      + `${levelGain(forecast.level)} ${owned}`;
  }

  // The latest run's pooled backtest accuracy (`/forecasts/accuracy`), per level and model.
  let accuracyRows = [];

  /** The level's backtest in words: its served forecast's errors against seasonal
   * naive's, over the days held back to test them (all categories together). */
  function levelGain(level) {
    const served = accuracyRows.find((a) => a.level === level && a.scope === "served");
    const naive = accuracyRows.find(
      (a) => a.level === level && a.model === "SeasonalNaive" && a.scope === "all");
    if (!served || !naive || !served.mae || !naive.mae) return "";
    const gain = Math.round((1 - served.mae / naive.mae) * 100);
    const whose = level === "total" ? "its" : "the categories' (all together)";
    const than = gain > 0 ? `${gain}% smaller than` : gain < 0 ? `${-gain}% larger than` : "as large as";
    return ` On the days held back to test it, ${whose} errors were ${than} seasonal naive's`
      + " (each day as the same weekday a week before).";
  }

  // A product's served model in plain words (no internal names on screen).
  const PRODUCT_MODELS = {
    LightGBM: "a model learnt from every product's history at once",
    WindowAverage: "the average of its recent days",
    SeasonalWindowAverage: "the average of the same weekday over its recent weeks",
    AutoETS: "exponential smoothing of its history",
    Ensemble: "the mean of several models",
    CrostonOptimized: "a method for items that sell now and then",
    ADIDA: "a method for items that sell now and then (sales summed over weeks)",
    IMAPA: "a method for items that sell now and then (several week lengths)",
    TSB: "a method for items that sell now and then, and may stop selling",
  };

  /** How this product's forecast is made and how it did on the days held back. */
  function productModel(chosen) {
    if (chosen.model === "category_profile") {
      return "Too little history to test a model on this product: its forecast follows its"
        + " category's weekly pattern, at the product's own level of sales.";
    }
    if (chosen.model === "SeasonalNaive") {
      return "Forecast: each day as the same weekday a week before; no model did better on"
        + " the days of this product's history held back to test them.";
    }
    const accuracy = chosen.accuracy || {};
    const how = `Forecast by ${PRODUCT_MODELS[chosen.model] || "a statistical model"}.`;
    if (accuracy.mase === null || accuracy.mase === undefined || !accuracy.seasonal_naive_mase) return how;
    const gain = Math.round((1 - accuracy.mase / accuracy.seasonal_naive_mase) * 100);
    return gain > 0
      ? `${how} On the days held back to test it, its errors were ${gain}% smaller than seasonal`
        + " naive's (each day as the same weekday a week before)."
      : `${how} On the days held back to test it, it did as well as seasonal naive.`;
  }

  // Bumped at each ask: an answer for a view or choice left meanwhile is dropped.
  let forecastAsked = 0;

  function hideForecastChart() {
    hideChart("chart-forecast");
    delete $("chart-forecast").dataset.subject;
    $("chart-forecast-legend").replaceChildren();
    showError("chart-forecast-error", null);
  }

  // Days of sales shown before the forecast.
  const HISTORY_DAYS = 90;

  async function loadForecastChart() {
    const view = forecastView();
    const asked = ++forecastAsked;
    let read;
    let none;
    if (view === "product") {
      const id = $("forecast-product").value;
      if (!id) return;
      read = `/forecasts/products/${encodeURIComponent(id)}`;
      none = "No forecast for this product in the latest run (no sale in its history).";
    } else if (view === "category") {
      const category = $("forecast-category").value;
      if (!category) return;
      read = `/forecasts/categories/${encodeURIComponent(category)}`;
      none = "No forecast for this category in the latest run (none of its products sold in its history).";
    } else {
      read = "/forecasts/total";
      none = "No forecast of the total in the latest run.";
    }
    let forecast;
    let history;
    try {
      [forecast, history] = await Promise.all([
        getJson(read),
        getJson(`${read}/history?days=${HISTORY_DAYS}`),
      ]);
    } catch (error) {
      if (asked !== forecastAsked) return;
      const missing = error instanceof ApiError && error.status === 404;
      setText("forecast-model", missing ? none : `The forecast could not be read: ${error.message}`);
      hideForecastChart();
      if (!missing) showError("chart-forecast-error", `The chart could not be drawn: ${error.message}`);
      return;
    }
    if (asked !== forecastAsked) return;
    setText("forecast-model", view === "product" ? productModel(forecast) : levelModel(forecast));
    // The level's part beyond its products, unless the level is their sum.
    const beyond = view !== "product" && forecast.model !== "sum_of_products";
    showError("chart-forecast-error", null);
    $("chart-forecast").setAttribute("aria-label", `Chart of ${WHOSE[view]} units sold over the last`
      + ` ${HISTORY_DAYS} days, its forecast and the forecast's 80% and 95% intervals`
      + `${beyond ? `, and the part expected from ${NOT_YET}` : ""}.`);
    setText("chart-forecast-caption", beyond ? `${BAND}; dotted: ${NOT_YET}` : BAND);
    forecastLegend(beyond);
    drawForecast(history.items, forecast.items, beyond);
    $("chart-forecast").dataset.subject = read;
  }

  function forecastLegend(beyond) {
    const keys = [
      ["swatch-line blue", "Sold"],
      ["swatch-line amber", "Forecast"],
      ["swatch-band band-80", "80% interval"],
      ["swatch-band band-95", "95% interval"],
    ];
    if (beyond) keys.push(["swatch-dot green", NOT_YET[0].toUpperCase() + NOT_YET.slice(1)]);
    $("chart-forecast-legend").replaceChildren(...keys.map(([swatch, name]) => {
      const item = make("li");
      item.append(make("span", "", `swatch ${swatch}`), name);
      return item;
    }));
  }

  /** Units sold, then the forecast in its 80% and 95% bands: each band a transparent
   * line at its low bound with its width stacked on it as a shaded area. */
  function drawForecast(sold, days, beyond) {
    const at = (d) => stamp(d.date);
    const times = [...sold.map(at), ...days.map(at)];
    if (!times.length) {
      hideForecastChart();
      return;
    }
    const first = Math.min(...times);
    const last = Math.max(...times);
    const soldOn = new Map(sold.map((d) => [at(d), d]));
    const forecastOn = new Map(days.map((d) => [at(d), d]));
    // The forecast's line starts at the last day sold, so that the two lines meet.
    const joined = sold.length ? [[at(sold[sold.length - 1]), sold[sold.length - 1].quantity]] : [];
    const band = (low, high, stack, color) => [
      {
        type: "line", stack, data: days.map((d) => [at(d), d[low]]), silent: true,
        lineStyle: { opacity: 0 }, showSymbol: false, tooltip: { show: false },
      },
      {
        type: "line", stack, data: days.map((d) => [at(d), Math.max(0, d[high] - d[low])]), silent: true,
        lineStyle: { opacity: 0 }, showSymbol: false, areaStyle: { color, opacity: 1 }, tooltip: { show: false },
      },
    ];
    draw("chart-forecast", (width) => {
      const { option } = baseOption(width);
      return {
        ...timeFrame(width, first, last, [first, last]),
        tooltip: {
          ...option.tooltip,
          trigger: "axis",
          formatter: (params) => {
            const time = params[0].value[0];
            const had = soldOn.get(time);
            const ahead = forecastOn.get(time);
            const rows = [];
            if (had) rows.push(["Sold", UNITS.format(had.quantity), "swatch-line blue"]);
            if (ahead) {
              rows.push(["Forecast", UNITS.format(ahead.quantity), "swatch-line amber"]);
              rows.push(["80% interval", `${UNITS.format(ahead.lo_80)} to ${UNITS.format(ahead.hi_80)}`, "swatch-band band-80"]);
              rows.push(["95% interval", `${UNITS.format(ahead.lo_95)} to ${UNITS.format(ahead.hi_95)}`, "swatch-band band-95"]);
              if (beyond) rows.push(["Of it, from products not yet selling", UNITS.format(ahead.unallocated), "swatch-dot green"]);
            }
            return tip(`${dayOf(time)}, units`, rows);
          },
        },
        series: [
          ...band("lo_95", "hi_95", "band95", "#fde7c7"),
          ...band("lo_80", "hi_80", "band80", "#f8c98f"),
          {
            name: "Sold", type: "line", data: sold.map((d) => [at(d), d.quantity]), color: BLUE,
            lineStyle: { width: 2 }, showSymbol: false,
          },
          {
            name: "Forecast", type: "line", data: [...joined, ...days.map((d) => [at(d), d.quantity])],
            color: AMBER, lineStyle: { width: 2.5 }, showSymbol: false,
          },
          ...(beyond
            ? [{
              name: NOT_YET, type: "line", data: days.map((d) => [at(d), d.unallocated]), color: GREEN,
              lineStyle: { width: 2, type: "dotted" }, showSymbol: false,
            }]
            : []),
        ],
      };
    });
  }

  /** The category picker: every category of the served forecast run, by name (read
   * once, when the category view is first shown). */
  async function fillCategories() {
    const page = await getJson("/forecasts/categories");
    const names = page.items.map((c) => c.category);
    names.sort((a, b) => a.localeCompare(b, "en"));
    const select = $("forecast-category");
    select.replaceChildren(...names.map((name) => {
      const option = make("option", name);
      option.value = name;
      return option;
    }));
    return names.length;
  }

  let categoriesRead = false;
  let forecastRun = false; // whether a run has succeeded (read at start)

  async function showForecastView() {
    const view = forecastView();
    $("forecast-category-controls").hidden = view !== "category";
    $("forecast-product-controls").hidden = view !== "product";
    if (!forecastRun) return;
    try {
      if (view === "category" && !categoriesRead) {
        categoriesRead = true;
        if (!(await fillCategories())) {
          setText("forecast-model", "The latest forecast run has no category.");
          hideForecastChart();
          return;
        }
      }
      if (view === "product" && !$("forecast-product").options.length) {
        setText("forecast-model", "No product matches.");
        hideForecastChart();
        return;
      }
      await loadForecastChart();
    } catch (error) {
      if (view === "category") categoriesRead = false; // asked again at the next switch
      showError("chart-forecast-error", `The categories could not be read: ${error.message}`);
    }
  }

  /** The picker's options: the best sellers matching `search` (all when empty), 50 at
   * most; a catalogue of 30,000 is searched, never listed. */
  async function fillProducts(search) {
    const query = new URLSearchParams({ limit: "50" });
    if (search) query.set("search", search);
    const page = await getJson(`/products?${query}`);
    const select = $("forecast-product");
    const keep = select.value;
    select.replaceChildren(...page.items.map((p) => {
      const option = make("option", `${p.name} (${p.category}) · ${count(p.units_sold)} sold`);
      option.value = String(p.product_id);
      return option;
    }));
    if (keep && page.items.some((p) => String(p.product_id) === keep)) select.value = keep;
    return page.items.length;
  }

  let searchTimer = null;

  function searchProducts() {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(async () => {
      try {
        const found = await fillProducts($("forecast-search").value.trim());
        if (forecastView() !== "product") return;
        if (!found) {
          setText("forecast-model", "No product matches.");
          hideForecastChart();
          return;
        }
        await loadForecastChart();
      } catch (error) {
        showError("chart-forecast-error", `The products could not be read: ${error.message}`);
      }
    }, 250);
  }

  async function loadForecast() {
    try {
      const run = await getJson("/forecasts/accuracy");
      if (run.run_id === null) {
        $("forecast-product").replaceChildren();
        setText("forecast-model", "No forecast yet: POST /forecasts/runs or run `orderlens forecast`.");
        return;
      }
      forecastRun = true;
      accuracyRows = run.items;
      await fillProducts($("forecast-search").value.trim());
      $("accuracy-rows").replaceChildren(...run.items.map((a) => {
        const row = make("tr");
        row.append(make("td", a.level), make("td", a.model), make("td", a.scope),
          make("td", String(a.series ?? a.products), "num"),
          make("td", figure(a.mae), "num"), make("td", figure(a.mase), "num"),
          make("td", figure(a.bias), "num"), make("td", figure(a.coverage_80), "num"),
          make("td", figure(a.coverage_80_sales_days), "num"),
          make("td", figure(a.coverage_95), "num"));
        return row;
      }));
      await showForecastView();
    } catch (error) {
      showError("chart-forecast-error", `The forecast could not be read: ${error.message}`);
    }
  }

  // ---------- start ----------

  function start() {
    readLocation();
    $("period-form").addEventListener("submit", applyForm);
    $("period-reset").addEventListener("click", resetPeriod);
    $("uploads-refresh").addEventListener("click", loadUploads);
    $("upload-form").addEventListener("submit", startUpload);
    watchTableScrolling();
    document.addEventListener("click", keyedDownload);
    $("forecast-product").addEventListener("change", loadForecastChart);
    $("forecast-category").addEventListener("change", loadForecastChart);
    for (const radio of document.querySelectorAll('input[name="forecast-view"]')) {
      radio.addEventListener("change", showForecastView);
    }
    $("forecast-search").addEventListener("input", searchProducts);
    loadAnalytics();
    loadUploads();
    loadForecast();
  }

  document.addEventListener("DOMContentLoaded", start);
})();
