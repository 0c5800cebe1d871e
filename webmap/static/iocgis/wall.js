/* IOC-GIS video wall. Runs for days unattended, so: every map layer is made once and restyled,
 * never re-created; every list is capped; every timer is one setTimeout chain; a failed poll backs
 * off (2 s doubling to 60 s) and the first good answer after it brings everything back.
 * Strings from data go through text nodes or escapeHtml, never raw into innerHTML. */
(function () {
  "use strict";

  var cfg = window.IOCGIS_WALL;
  var lang = cfg.lang === "en" ? "en" : "vi";
  var locale = lang === "en" ? "en-GB" : "vi-VN";
  var TZ = "Asia/Ho_Chi_Minh";
  var FEED_MAX = 14;          // rows in the incident list
  var MARKERS_MAX = 30;       // "new incident" markers on the map
  var BACKOFF_MAX_S = 60;

  var num = new Intl.NumberFormat(locale, { maximumFractionDigits: 1 });
  var timeFmt = new Intl.DateTimeFormat(locale, { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false, timeZone: TZ });
  var shortFmt = new Intl.DateTimeFormat(locale, { hour: "2-digit", minute: "2-digit", day: "2-digit", month: "2-digit", hour12: false, timeZone: TZ });
  var dateFmt = new Intl.DateTimeFormat(locale, { weekday: "long", day: "2-digit", month: "2-digit", year: "numeric", timeZone: TZ });

  var CATEGORY = {
    traffic: ["Giao thông", "Traffic"], environment: ["Môi trường", "Environment"],
    urban_order: ["Trật tự đô thị", "Urban order"], landslide: ["Sạt lở", "Landslide"], flood: ["Ngập lụt", "Flood"],
    fire: ["Cháy", "Fire"], infrastructure: ["Hạ tầng", "Infrastructure"], security: ["An ninh", "Security"],
    other: ["Khác", "Other"],
  };
  var OPEN_RAMP = ["#1e3a5f", "#2563eb", "#f59e0b", "#ea580c", "#dc2626"];

  function t(vi, en) { return lang === "en" ? en : vi; }
  function escapeHtml(value) {
    return String(value).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }
  function $(id) { return document.getElementById(id); }

  window.iocgisWall = { polls: 0, failures: 0, lastId: null, theme: null, feed: 0 };
  var state = window.iocgisWall;

  document.querySelectorAll("[data-vi]").forEach(function (el) { el.textContent = t(el.dataset.vi, el.dataset.en); });

  // -- clock -----------------------------------------------------------------------------------
  function tick() {
    var now = new Date();
    $("wall-time").textContent = timeFmt.format(now);
    $("wall-date").textContent = dateFmt.format(now);
    setTimeout(tick, 1000 - (now.getTime() % 1000) + 5);
  }
  tick();

  // -- fetch with a timeout, and the reconnect policy --------------------------------------------
  function getJson(url) {
    var ctrl = new AbortController();
    var timer = setTimeout(function () { ctrl.abort(); }, 15000);
    return fetch(url, { signal: ctrl.signal, cache: "no-store" }).then(function (r) {
      clearTimeout(timer);
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    }, function (e) { clearTimeout(timer); throw e; });
  }
  var backoff = 0;
  function connected(ok) {
    var box = $("wall-conn");
    if (ok) {
      backoff = 0;
      box.className = "wall-conn ok";
      box.textContent = t("● Đang kết nối", "● Connected");
      $("wall-updated").textContent = timeFmt.format(new Date());
    } else {
      state.failures += 1;
      backoff = Math.min(backoff ? backoff * 2 : 2, BACKOFF_MAX_S);
      box.className = "wall-conn down";
      box.textContent = t("● Mất kết nối, thử lại sau " + backoff + " giây", "● Disconnected, retrying in " + backoff + " s");
    }
  }

  // -- the map: communes made once, restyled per theme --------------------------------------------
  var map = L.map("wall-map", { zoomControl: false, attributionControl: false, dragging: false,
    scrollWheelZoom: false, doubleClickZoom: false, boxZoom: false, keyboard: false, touchZoom: false,
    zoomSnap: 0.1, fadeAnimation: false }).setView([22.1, 104.3], 8);  // a view first: polygons need it to find centres
  var relief = null;
  getJson("/api/relief.json").then(function (info) {
    relief = L.imageOverlay(info.url, info.bounds, { opacity: 0.55, interactive: false }).addTo(map);
    relief.bringToBack();
  }).catch(function () { /* the wall works without relief */ });
  var communes = L.geoJSON(null, { style: { color: "#5b6b88", weight: 1, fillOpacity: 0.0 }, interactive: false });
  communes.addTo(map);
  var labels = L.layerGroup().addTo(map);
  var points = L.layerGroup().addTo(map);     // theme points (cameras), refilled per theme
  var pulses = L.layerGroup().addTo(map);     // new incidents, capped
  var alertAreas = L.geoJSON(null, { style: { color: "#ef4444", weight: 3, dashArray: "8 6", fill: true,
    fillColor: "#ef4444", fillOpacity: 0.12 }, interactive: false }).addTo(map);  // refilled, never re-made
  var byCode = {};

  function fit() {
    if (!communes.getLayers().length) return;
    map.invalidateSize();  // the grid may have settled after the map was made
    map.fitBounds(communes.getBounds(), { padding: [10, 10] });
  }
  window.addEventListener("resize", fit);

  function loadCommunes() {
    if (communes.getLayers().length) return Promise.resolve();  // a retried start
    return getJson("/ogc/collections/communes/items?f=json&limit=500&properties=name").then(function (fc) {
      communes.addData(fc);
      communes.eachLayer(function (l) {
        var code = l.feature.id || l.feature.properties.code;
        byCode[code] = l;
        labels.addLayer(L.marker(l.getCenter(), { interactive: false, keyboard: false,
          icon: L.divIcon({ className: "wall-label", html: "<span>" + escapeHtml(l.feature.properties.name) + "</span>", iconSize: null }) }));
      });
      fit();
      state.communes = communes.getLayers().length;
    });
  }

  // -- themes --------------------------------------------------------------------------------------
  var summary = null;
  var indicators = [];
  var choroCache = {};   // one entry per indicator code: replaced, never grown past the 8 indicators

  function legend(title, rows, note) {
    var box = $("wall-legend");
    box.textContent = "";
    var h = document.createElement("h2"); h.textContent = title; box.appendChild(h);
    rows.forEach(function (row) {
      var div = document.createElement("div"); div.className = "row";
      var sw = document.createElement("span"); sw.className = "sw"; sw.style.background = row[0];
      var label = document.createElement("span"); label.textContent = row[1];
      div.appendChild(sw); div.appendChild(label); box.appendChild(div);
    });
    if (note) { var n = document.createElement("div"); n.className = "dir"; n.textContent = note; box.appendChild(n); }
  }

  function themeIncidents() {
    var counts = (summary && summary.open_by_commune) || {};
    var max = 0; Object.keys(counts).forEach(function (k) { max = Math.max(max, counts[k]); });
    var edges = [0, Math.ceil(max * 0.1), Math.ceil(max * 0.3), Math.ceil(max * 0.6), max];
    function cls(n) { for (var i = 0; i < edges.length; i++) if (n <= edges[i]) return i; return edges.length - 1; }
    Object.keys(byCode).forEach(function (code) {
      var n = counts[code] || 0;
      byCode[code].setStyle({ fillColor: OPEN_RAMP[cls(n)], fillOpacity: n ? 0.75 : 0.25 });
    });
    points.clearLayers();
    legend(t("Sự cố đang mở theo xã", "Open incidents by commune"), [
      [OPEN_RAMP[0], "0"], [OPEN_RAMP[1], "1–" + num.format(edges[1])],
      [OPEN_RAMP[2], num.format(edges[1] + 1) + "–" + num.format(edges[2])],
      [OPEN_RAMP[3], num.format(edges[2] + 1) + "–" + num.format(edges[3])],
      [OPEN_RAMP[4], num.format(edges[3] + 1) + "–" + num.format(max)],
    ].filter(function (r, i) { return i === 0 || edges[i] > edges[i - 1]; }));
    return t("An ninh, an toàn — sự cố đang mở", "Safety — open incidents");
  }

  function themeIndicator(ind) {
    var data = choroCache[ind.code];
    if (data) {
      Object.keys(byCode).forEach(function (code) {
        var u = data.units[code];
        byCode[code].setStyle({ fillColor: u ? u.color : data.no_data_color, fillOpacity: 0.8 });
      });
      var unit = t(ind.unit.vi, ind.unit.en);
      legend(t(ind.name.vi, ind.name.en) + " (" + unit + ")", data.classes.map(function (c) {
        return [c.color, num.format(c.min) + " – " + num.format(c.max) + "  (" + c.count + t(" xã", " communes") + ")"];
      }), (ind.higher_is_better ? t("Xanh: cao hơn là tốt hơn", "Green: higher is better")
        : t("Xanh: thấp hơn là tốt hơn", "Green: lower is better")) + " · " + t("Kỳ ", "Period ") + data.period +
        (data.province && data.province.value !== null ? " · " + t("Toàn tỉnh: ", "Province: ") + num.format(data.province.value) + " " + unit : ""));
    }
    points.clearLayers();
    // Fetch for next time round (and redraw now if this is the first time).
    getJson("/api/indicators/" + encodeURIComponent(ind.code) + "/choropleth?method=natural_breaks&k=5").then(function (d) {
      var first = !choroCache[ind.code];
      choroCache[ind.code] = d;
      if (first && state.theme === "indicator:" + ind.code) themeIndicator(ind);
    }).catch(function () {});
    return t("Chỉ số: ", "Indicator: ") + t(ind.name.vi, ind.name.en);
  }

  function themeCameras() {
    Object.keys(byCode).forEach(function (code) { byCode[code].setStyle({ fillColor: "#1e293b", fillOpacity: 0.35 }); });
    points.clearLayers();
    var colors = { online: "#22c55e", offline: "#ef4444", maintenance: "#f59e0b" };
    getJson("/ogc/collections/cameras/items?f=json&limit=2000&properties=status,name").then(function (fc) {
      if (state.theme !== "cameras") return;
      points.clearLayers();
      (fc.features || []).forEach(function (f) {
        var c = f.geometry.coordinates;
        points.addLayer(L.circleMarker([c[1], c[0]], { radius: 6, weight: 1, color: "#0b1220",
          fillColor: colors[f.properties.status] || "#9ca3af", fillOpacity: 0.95, interactive: false }));
      });
    }).catch(function () {});
    legend(t("Camera giám sát", "Cameras"), [[colors.online, t("Hoạt động", "Online")],
      [colors.offline, t("Mất tín hiệu", "Offline")], [colors.maintenance, t("Bảo trì", "Maintenance")]]);
    return t("Camera giám sát", "Surveillance cameras");
  }

  var themes = [];
  var themeIndex = -1;
  function buildThemes() {
    themes = [{ key: "incidents", draw: themeIncidents }];
    indicators.forEach(function (ind) {
      themes.push({ key: "indicator:" + ind.code, draw: function () { return themeIndicator(ind); } });
    });
    themes.push({ key: "cameras", draw: themeCameras });
  }
  var themeStarted = 0;
  function rotate() {
    if (themes.length) {
      themeIndex = (themeIndex + 1) % themes.length;
      var theme = themes[themeIndex];
      state.theme = theme.key;
      state.rotations = (state.rotations || 0) + 1;
      $("wall-theme-title").textContent = theme.draw();
    }
    themeStarted = Date.now();
    setTimeout(rotate, cfg.rotate_s * 1000);
  }
  function progress() {
    var share = Math.min(1, (Date.now() - themeStarted) / (cfg.rotate_s * 1000));
    $("wall-progress-bar").style.width = (share * 100).toFixed(1) + "%";
    setTimeout(progress, 500);
  }

  // -- KPIs ------------------------------------------------------------------------------------------
  function setKpi(id, value, note, level) {
    var tile = $(id);
    var v = tile.querySelector(".kpi-value");
    var text = num.format(value);
    if (v.textContent !== text && v.textContent !== "—") {
      tile.classList.remove("flash"); void tile.offsetWidth; tile.classList.add("flash");
    }
    v.textContent = text;
    tile.querySelector(".kpi-note").textContent = note || "";
    if (level) tile.className = "kpi " + level + (tile.classList.contains("flash") ? " flash" : "");
  }
  function showSummary(s) {
    summary = s;
    setKpi("kpi-open", s.incidents.open, t(num.format(s.incidents.reported_24h) + " phản ánh trong 24 giờ qua",
      num.format(s.incidents.reported_24h) + " reports in the last 24 h"));
    setKpi("kpi-overdue", s.incidents.overdue, t("đang mở và đã quá hạn", "open and past their deadline"),
      s.incidents.overdue ? "bad" : "good");
    var p = s.permits;
    setKpi("kpi-permits", p.count, p.source === "permit_checks"
      ? t("theo kết quả kiểm tra quy hoạch", "from the zoning checks") + (p.needs_review ? t(", " + num.format(p.needs_review) + " cần xem xét", ", " + num.format(p.needs_review) + " to review") : "")
      : t("vượt chiều cao/tầng cao của khu", "over their zone's height/floors"), p.count ? "warn" : "good");
    setKpi("kpi-cameras", s.cameras.offline, t("trên " + num.format(s.cameras.total) + " camera; " + num.format(s.cameras.maintenance) +
      " bảo trì; " + num.format(s.cameras.silent) + " quá hạn tín hiệu", "of " + num.format(s.cameras.total) + "; " +
      num.format(s.cameras.maintenance) + " in maintenance; " + num.format(s.cameras.silent) + " heartbeat late"), s.cameras.offline ? "warn" : "good");
    var off = s.indicators.items.filter(function (i) { return i.province_off_target; })
      .map(function (i) { return t(i.name.vi, i.name.en); });
    setKpi("kpi-targets", s.indicators.off_target, (t("trên ", "of ") + s.indicators.with_target + t(" chỉ số có mục tiêu", " with a target")) +
      (off.length ? ": " + off.join(", ") : ""), s.indicators.off_target ? "bad" : "good");
    if (s.last_data_update) $("wall-latest").textContent = shortFmt.format(new Date(s.last_data_update));
    if (state.theme === "incidents") themeIncidents();
  }

  // -- the incident feed -----------------------------------------------------------------------------
  function feedItem(inc, isNew) {
    var li = document.createElement("li");
    li.dataset.ticket = inc.ticket_code;
    if (isNew) li.className = "new";
    var time = document.createElement("span"); time.className = "t"; time.textContent = shortFmt.format(new Date(inc.reported_at));
    var cat = document.createElement("span"); cat.className = "c";
    var names = CATEGORY[inc.category] || [inc.category, inc.category];
    cat.textContent = t(names[0], names[1]);
    li.appendChild(time); li.appendChild(document.createTextNode(" · ")); li.appendChild(cat);
    li.appendChild(document.createTextNode(" · " + inc.commune + " · " + inc.ticket_code));
    return li;
  }
  function addIncidents(list, isNew) {
    var ol = $("wall-feed-list");
    // Oldest first, so the newest ends on top.
    list.slice().reverse().forEach(function (inc) {
      ol.insertBefore(feedItem(inc, isNew), ol.firstChild);
      if (isNew) {
        pulses.addLayer(L.marker([inc.lat, inc.lon], { interactive: false, keyboard: false,
          icon: L.divIcon({ className: "wall-pulse", html: "<span></span>", iconSize: [22, 22] }) }));
      }
    });
    while (ol.children.length > FEED_MAX) ol.removeChild(ol.lastChild);
    var markers = pulses.getLayers();
    for (var i = 0; i < markers.length - MARKERS_MAX; i++) pulses.removeLayer(markers[i]);
    state.feed = ol.children.length;
  }

  // -- alerts: shown until acknowledged --------------------------------------------------------------
  var SEVERITY = { critical: ["Khẩn cấp", "Critical"], warning: ["Cảnh báo", "Warning"], info: ["Thông tin", "Info"] };
  var ALERTS_MAX = 6;
  function showAlerts(fc) {
    var features = (fc && fc.features) || [];
    alertAreas.clearLayers();
    alertAreas.addData(features);
    alertAreas.bringToFront();
    var ol = $("wall-alert-list");
    while (ol.firstChild) ol.removeChild(ol.firstChild);
    features.slice(0, ALERTS_MAX).forEach(function (f) {
      var p = f.properties, li = document.createElement("li");
      li.className = p.severity; li.dataset.alert = p.id;
      var sev = document.createElement("span"); sev.className = "sev";
      var names = SEVERITY[p.severity] || [p.severity, p.severity];
      sev.textContent = t(names[0], names[1]);
      var where = document.createElement("span"); where.className = "where";
      where.textContent = " · " + (p.communes || []).length + t(" xã, phường", " communes");
      li.appendChild(sev); li.appendChild(document.createTextNode(" " + t(p.reason_vi, p.reason_en))); li.appendChild(where);
      ol.appendChild(li);
    });
    $("wall-alerts").hidden = features.length === 0;
    state.alerts = features.length;
  }

  var lastSummaryAt = 0;
  function poll() {
    var url = "/api/wall/incidents" + (state.lastId === null ? "" : "?after=" + state.lastId);
    getJson(url).then(function (feed) {
      var first = state.lastId === null;
      addIncidents(feed.incidents, !first);
      state.lastId = Math.max(feed.last_id, state.lastId || 0);
      state.polls += 1;
      var wantSummary = first || feed.incidents.length || Date.now() - lastSummaryAt > 30000;
      // Alerts every poll (one small query): a fired or acknowledged alert shows within a period.
      return Promise.all([
        wantSummary ? getJson("/api/wall/summary").then(function (s) { lastSummaryAt = Date.now(); showSummary(s); }) : null,
        getJson("/api/alerts?f=geojson").then(showAlerts),
      ]);
    }).then(function () {
      connected(true);
      setTimeout(poll, cfg.poll_s * 1000);
    }).catch(function () {
      connected(false);
      setTimeout(poll, backoff * 1000);
    });
  }

  function start() {
    Promise.all([
      loadCommunes(),
      getJson("/api/indicators").then(function (list) { indicators = list; }),
    ]).then(function () {
      buildThemes();
      state.ready = true;
      poll();
      rotate();
      progress();
    }).catch(function () {
      connected(false);
      setTimeout(start, backoff * 1000);   // the server is not up yet: try again
    });
  }
  start();
})();
