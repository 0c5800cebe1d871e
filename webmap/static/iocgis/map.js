/* IOC-GIS web map: registry layers that load their GeoJSON from our own OGC API the first time
 * they are shown, so the page itself stays small and hidden layers cost nothing.
 * Every string that comes from data goes through escapeHtml before it reaches the DOM. */
(function () {
  "use strict";

  var iocgis = (window.iocgis = window.iocgis || {});
  // Read by the browser tests and handy in the console: how many requests are in flight,
  // how many features each layer drew, and which layers failed.
  iocgis.pending = 0;
  iocgis.loaded = {};
  iocgis.failed = {};
  iocgis.specs = {};

  var OUTLINE_PANE = "iocgis-outline";
  var LABEL_PANE = "iocgis-labels";

  function escapeHtml(value) {
    return String(value)
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;")
      .replace(/'/g, "&#39;");
  }

  var numberFormat = new Intl.NumberFormat("vi-VN", { maximumFractionDigits: 2 });

  function formatValue(value, type) {
    if (value === null || value === undefined || value === "") return "—";
    if (Array.isArray(value)) return value.map(function (v) { return formatValue(v, "string"); }).join(", ");
    if (type === "boolean") return value ? "Có / Yes" : "Không / No";
    if ((type === "number" || type === "integer") && typeof value === "number") {
      return numberFormat.format(value);
    }
    if (type === "datetime" || type === "date") {
      var d = new Date(value);
      if (!isNaN(d.getTime())) {
        return type === "date"
          ? d.toLocaleDateString("vi-VN", { timeZone: "UTC" })
          : d.toLocaleString("vi-VN", { timeZone: "Asia/Ho_Chi_Minh" });
      }
    }
    return String(value);
  }

  function property(spec, feature, name) {
    var props = feature.properties || {};
    // pygeoapi may move the id column out of the properties into feature.id.
    if (props[name] === undefined && name === spec.id_field) return feature.id;
    return props[name];
  }

  function popupHtml(spec, feature) {
    var rows = spec.popup.map(function (field) {
      return "<tr><th>" + escapeHtml(field.label) + "</th><td>" +
        escapeHtml(formatValue(property(spec, feature, field.name), field.type)) + "</td></tr>";
    });
    return '<div class="iocgis-popup"><h2>' + escapeHtml(spec.title) + "</h2><table>" +
      rows.join("") + "</table></div>";
  }

  function bindFeature(spec, feature, layer) {
    if (spec.popup.length) layer.bindPopup(popupHtml(spec, feature), { maxWidth: 320 });
    if (spec.label_field) {
      var label = property(spec, feature, spec.label_field);
      if (label !== null && label !== undefined) {
        layer.bindTooltip(escapeHtml(label), { sticky: true, className: "iocgis-tooltip" });
      }
    }
  }

  function pointIcon(spec) {
    return L.divIcon({
      className: "iocgis-pin",
      html: '<span style="background:' + escapeHtml(spec.style.color) + '">' +
        (spec.icon ? '<i class="fa fa-' + escapeHtml(spec.icon) + '" aria-hidden="true"></i>' : "") +
        "</span>",
      iconSize: [26, 26],
      iconAnchor: [13, 13],
      popupAnchor: [0, -13],
    });
  }

  function clusterIcon(spec) {
    return function (cluster) {
      var n = cluster.getChildCount();
      var size = n < 10 ? 30 : n < 100 ? 36 : 44;
      return L.divIcon({
        className: "iocgis-cluster",
        html: '<span style="background:' + escapeHtml(spec.style.color) + '">' + n + "</span>",
        iconSize: [size, size],
      });
    };
  }

  function ensurePanes(map) {
    if (!map.getPane(OUTLINE_PANE)) {
      // Above the filled polygons (overlayPane 400), below the point markers (600).
      map.createPane(OUTLINE_PANE).style.zIndex = 450;
      var labels = map.createPane(LABEL_PANE);
      labels.style.zIndex = 460;
      labels.style.pointerEvents = "none";
    }
  }

  // Name labels at the centre of each polygon once the map is zoomed in enough to read them;
  // at province scale the hover tooltip names the commune instead.
  function addLabels(map, layer, spec) {
    var labels = L.layerGroup();
    layer.eachLayer(function (feature) {
      var text = property(spec, feature.feature, spec.label_field);
      if (text === null || text === undefined || !feature.getCenter) return;
      labels.addLayer(L.marker(feature.getCenter(), {
        pane: LABEL_PANE,
        interactive: false,
        keyboard: false,
        icon: L.divIcon({ className: "iocgis-label", html: "<span>" + escapeHtml(text) + "</span>", iconSize: null }),
      }));
    });
    function update() {
      if (map.hasLayer(layer) && map.getZoom() >= spec.label_min_zoom) labels.addTo(map);
      else labels.remove();
    }
    map.on("zoomend", update);
    layer.on("add remove", update);
    update();
  }

  function notify(message) {
    var box = document.getElementById("iocgis-status");
    if (!box) return;
    var line = document.createElement("p");
    line.textContent = message;
    box.appendChild(line);
    box.hidden = false;
    box.onclick = function () { box.hidden = true; box.textContent = ""; };
  }

  function isTruncated(data) {
    return (data.links || []).some(function (link) { return link.rel === "next"; });
  }

  function load(map, layer, target, spec) {
    iocgis.pending += 1;
    fetch(spec.url, { headers: { Accept: "application/geo+json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        target.addData(data);
        if (target !== layer) layer.addLayer(target);
        iocgis.loaded[spec.id] = (data.features || []).length;
        layer.iocgisData = target;
        layer.fire("iocgis:loaded");
        if (spec.label_field && spec.geometry !== "point") addLabels(map, target, spec);
        if (isTruncated(data) && !spec.capped) {
          notify("Lớp “" + spec.title + "” chỉ hiện " + data.features.length + " đối tượng đầu tiên" +
            " / only the first " + data.features.length + " features are shown");
        }
      })
      .catch(function (error) {
        iocgis.failed[spec.id] = String(error);
        notify("Không tải được lớp “" + spec.title + "” / could not load this layer (" + error.message + ")");
      })
      .finally(function () {
        iocgis.pending -= 1;
      });
  }

  iocgis.setup = function (map, bounds) {
    L.control.scale({ imperial: false, position: "bottomright" }).addTo(map);
    var titles = {
      "leaflet-control-zoom-in": "Phóng to / Zoom in",
      "leaflet-control-zoom-out": "Thu nhỏ / Zoom out",
      "leaflet-control-layers-toggle": "Lớp bản đồ / Layers",
    };
    Object.keys(titles).forEach(function (cls) {
      map.getContainer().querySelectorAll("." + cls).forEach(function (el) {
        el.title = titles[cls];
        el.setAttribute("aria-label", titles[cls]);
      });
    });
    // An open layer control covers the east of the province: fit it into the space left over.
    var control = map.getContainer().querySelector(".leaflet-control-layers-expanded");
    var right = control ? control.offsetWidth + 20 : 10;
    map.fitBounds(bounds, { paddingTopLeft: [50, 10], paddingBottomRight: [right, 10] });  // 50: the zoom buttons
    showAlerts(map);
  };

  /* Unacknowledged alerts (alert rules held as data, gis_core/incidents/alerts.py): their communes
   * outlined in red until an operator acknowledges them; refreshed every minute, one layer reused. */
  var ALERT_REFRESH_MS = 60000;
  var SEVERITY = { critical: "Khẩn cấp / Critical", warning: "Cảnh báo / Warning", info: "Thông tin / Info" };
  function showAlerts(map) {
    ensurePanes(map);
    var areas = L.geoJSON(null, {
      pane: OUTLINE_PANE,
      className: "iocgis-alert",
      style: { color: "#dc2626", weight: 3, dashArray: "8 6", fill: false },
      onEachFeature: function (feature, layer) {
        var p = feature.properties;
        layer.bindPopup("<strong>" + escapeHtml(SEVERITY[p.severity] || p.severity) + "</strong><br>" +
          escapeHtml(p.reason_vi) + "<br><em>" + escapeHtml(p.reason_en) + "</em>");
      },
    }).addTo(map);
    iocgis.alertLayer = areas;
    function refresh() {
      fetch("/api/alerts?f=geojson", { cache: "no-store" })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(function (fc) {
          areas.clearLayers();
          areas.addData(fc.features || []);
          iocgis.alerts = (fc.features || []).length;
        })
        .catch(function () { /* the map works without alerts; the next round tries again */ })
        .finally(function () { setTimeout(refresh, ALERT_REFRESH_MS); });
    }
    refresh();
  }

  /* One registry layer. Returns a Leaflet layer at once (the layer control needs it) and fills it
   * the first time it is added to the map. Points go into a cluster group so thousands of them
   * stay a few dozen DOM nodes at province scale. */
  iocgis.layer = function (spec) {
    iocgis.specs[spec.id] = spec;
    if (spec.cluster_url) return clusterLayer(spec);
    var outline = spec.geometry !== "point" && spec.style.fill_opacity === 0;
    var options = {
      className: "iocgis-layer-" + spec.id,
      style: function () {
        return {
          color: spec.style.color,
          weight: spec.style.weight,
          fill: !outline,  // a transparent fill would still catch the pointer over the communes
          fillColor: spec.style.fill_color,
          fillOpacity: spec.style.fill_opacity,
        };
      },
      pointToLayer: function (feature, latlng) {
        var title = spec.label_field || (spec.popup[0] && spec.popup[0].name);
        var text = title ? property(spec, feature, title) : null;
        return L.marker(latlng, { icon: pointIcon(spec), title: text == null ? "" : String(text) });
      },
      onEachFeature: function (feature, layer) { bindFeature(spec, feature, layer); },
    };
    if (outline) options.pane = OUTLINE_PANE;
    var geojson = L.geoJSON(null, options);
    var layer = spec.geometry === "point"
      ? L.markerClusterGroup({
        iconCreateFunction: clusterIcon(spec),
        showCoverageOnHover: false,
        maxClusterRadius: 50,
        disableClusteringAtZoom: 15,
      })
      : geojson;
    layer.once("add", function (event) {
      ensurePanes(event.target._map);
      load(event.target._map, layer, geojson, spec);
    });
    return layer;
  };
  /* ---- Leaders' map: server-side clusters, relief, indicators, drill-down, search, URL state ---- */

  var RELIEF_PANE = "iocgis-relief";
  iocgis.lang = "vi";
  function T(vi, en) { return iocgis.lang === "en" ? en : vi; }
  function fmt(value, digits) {
    if (value === null || value === undefined) return "—";
    return new Intl.NumberFormat(iocgis.lang === "en" ? "en-GB" : "vi-VN",
      { maximumFractionDigits: digits === undefined ? 2 : digits }).format(value);
  }
  function fmtPeriod(p) {  // "2026-10" -> "10/2026" (Vietnamese month/year) or "Oct 2026"
    if (!p) return "—";
    var d = new Date(Date.UTC(+p.slice(0, 4), +p.slice(5, 7) - 1, 1));
    return iocgis.lang === "en" ? d.toLocaleDateString("en-GB", { month: "short", year: "numeric", timeZone: "UTC" })
      : d.toLocaleDateString("vi-VN", { month: "2-digit", year: "numeric", timeZone: "UTC" });
  }
  function fmtChange(change, higherIsBetter) {
    if (change === null || change === undefined) return { text: "—", cls: "" };
    var sign = change > 0 ? "▲ +" : change < 0 ? "▼ " : "■ ";
    var good = change === 0 ? "" : ((change > 0) === higherIsBetter ? "good" : "bad");
    return { text: sign + fmt(change), cls: good };
  }

  /* Server-side clusters: one request per view (bbox + zoom), the previous one cancelled; the
   * markers of the last answer are replaced, so a million points stay a few hundred DOM nodes. */
  function clusterLayer(spec) {
    var group = L.layerGroup();
    var latest = 0;     // answers to views the map has already left are dropped, not aborted
    var timer = null;
    var map = null;
    function bubble(cell) {
      var size = Math.round(26 + Math.min(30, Math.log10(cell.count) * 9));
      var marker = L.marker([cell.lat, cell.lon], {
        icon: L.divIcon({ className: "iocgis-cluster iocgis-server-cluster", iconSize: [size, size],
          html: '<span style="background:' + escapeHtml(spec.style.color) + '">' + escapeHtml(fmt(cell.count, 0)) + "</span>" }),
        title: fmt(cell.count, 0) + " " + spec.title,
      });
      marker.on("click", function () {
        var b = L.latLngBounds([cell.bbox[1], cell.bbox[0]], [cell.bbox[3], cell.bbox[2]]);
        if (b.getNorthEast().distanceTo(b.getSouthWest()) < 30) map.setView(b.getCenter(), Math.min(map.getZoom() + 3, 18));
        else map.fitBounds(b.pad(0.2), { maxZoom: 18 });
      });
      return marker;
    }
    function single(cell) {
      var marker = L.marker([cell.lat, cell.lon], { icon: pointIcon(spec) });
      marker.bindPopup(T("Đang tải…", "Loading…"), { maxWidth: 320 });
      marker.on("popupopen", function (e) {
        fetch(spec.item_url + cell.id + "?f=json", { headers: { Accept: "application/geo+json" } })
          .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
          .then(function (feature) { e.popup.setContent(popupHtml(spec, feature)); })
          .catch(function (err) { e.popup.setContent(escapeHtml(String(err))); });
      });
      return marker;
    }
    function refresh() {
      if (!map || !map.hasLayer(group)) return;
      var seq = ++latest;
      var b = map.getBounds();
      var zoom = Math.max(0, Math.floor(map.getZoom()));
      var url = spec.cluster_url + "?zoom=" + zoom + "&bbox=" + [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]
        .map(function (v) { return Math.max(-180, Math.min(180, v)).toFixed(5); }).join(",") +
        (spec.cluster_days ? "&days=" + spec.cluster_days : "");
      iocgis.pending += 1;
      fetch(url)
        .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
        .then(function (data) {
          if (seq !== latest) return;
          group.clearLayers();
          data.cells.forEach(function (cell) { group.addLayer(cell.count === 1 ? single(cell) : bubble(cell)); });
          iocgis.loaded[spec.id] = data.cells.length;
          iocgis.clusterTotals = iocgis.clusterTotals || {};
          iocgis.clusterTotals[spec.id] = data.total;
        })
        .catch(function (err) {
          iocgis.failed[spec.id] = String(err);
          notify("Không tải được lớp “" + spec.title + "” / could not load this layer (" + err.message + ")");
        })
        .finally(function () { iocgis.pending -= 1; });
    }
    // One request per settled view: a fling of pans and zooms asks once, 150 ms after it stops.
    // Counted as pending from the first move, so "nothing pending" means the clusters are drawn.
    function later() {
      if (timer === null) iocgis.pending += 1;
      clearTimeout(timer);
      timer = setTimeout(function () { timer = null; iocgis.pending -= 1; refresh(); }, 150);
    }
    group.on("add", function (e) {
      map = e.target._map;
      map.on("moveend", later);
      later();
    });
    group.on("remove", function () {
      if (map) map.off("moveend", later);
      if (timer !== null) { clearTimeout(timer); timer = null; iocgis.pending -= 1; }
      latest += 1;
    });
    return group;
  }

  // The relief image: its bounds come from the server (they follow the DEM), so it loads on add.
  iocgis.relief = function (url) {
    var group = L.layerGroup();
    group.once("add", function (e) {
      var map = e.target._map;
      if (!map.getPane(RELIEF_PANE)) map.createPane(RELIEF_PANE).style.zIndex = 150;  // under every overlay
      iocgis.pending += 1;
      fetch(url).then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
        .then(function (info) {
          group.addLayer(L.imageOverlay(info.url, info.bounds, { pane: RELIEF_PANE, opacity: 0.75, interactive: false }));
          iocgis.loaded.relief = 1;
        })
        .catch(function (err) { iocgis.failed.relief = String(err); })
        .finally(function () { iocgis.pending -= 1; });
    });
    return group;
  };

  /* A small line chart of one unit's series (solid) against the province (dashed), as SVG. */
  function seriesSvg(data) {
    var W = 260, H = 96, L0 = 4, R0 = 4, T0 = 14, B0 = 16;
    var own = data.values.filter(function (v) { return v !== null; });
    if (!own.length) return "";
    var min = Math.min.apply(null, own), max = Math.max.apply(null, own);
    // The province line only where it shares the commune's scale: a rate, not a provincial sum.
    var prov = data.province.filter(function (v) { return v !== null; });
    var showProv = prov.length && Math.max.apply(null, prov) <= Math.max(max * 3, 1) && Math.min.apply(null, prov) >= min / 3;
    if (showProv) { min = Math.min(min, Math.min.apply(null, prov)); max = Math.max(max, Math.max.apply(null, prov)); }
    if (max === min) { max += 1; min -= 1; }
    var n = data.values.length;
    function x(i) { return L0 + (W - L0 - R0) * (n > 1 ? i / (n - 1) : 0.5); }
    function y(v) { return T0 + (H - T0 - B0) * (1 - (v - min) / (max - min)); }
    function path(values) {
      var d = "";
      values.forEach(function (v, i) { if (v !== null) d += (d ? "L" : "M") + x(i).toFixed(1) + " " + y(v).toFixed(1); });
      return d;
    }
    var last = data.values[n - 1];
    return '<svg class="iocgis-chart" viewBox="0 0 ' + W + " " + H + '" width="' + W + '" height="' + H + '" role="img" aria-label="' +
      escapeHtml(T("Diễn biến ", "Series of ") + T(data.indicator.name.vi, data.indicator.name.en)) + '">' +
      (showProv ? '<path d="' + path(data.province) + '" class="prov"/>' : "") +
      '<path d="' + path(data.values) + '" class="unit"/>' +
      (last !== null ? '<circle cx="' + x(n - 1).toFixed(1) + '" cy="' + y(last).toFixed(1) + '" r="3" class="unit"/>' : "") +
      '<text x="' + L0 + '" y="10">' + escapeHtml(fmt(max)) + "</text>" +
      '<text x="' + L0 + '" y="' + (H - 4) + '">' + escapeHtml(fmtPeriod(data.periods[0])) + "</text>" +
      '<text x="' + (W - R0) + '" y="' + (H - 4) + '" text-anchor="end">' + escapeHtml(fmtPeriod(data.periods[n - 1])) + "</text>" +
      '<text x="' + (W - R0) + '" y="10" text-anchor="end">' + escapeHtml(showProv ? T("— xã  ‑‑ tỉnh", "— commune  ‑‑ province") : T("— xã", "— commune")) + "</text>" +
      "</svg>";
  }

  iocgis.leaders = function (map, layers, options) {
    var communesLayer = layers[options.communes_layer];
    iocgis.layers = layers;
    var panel, indicators = [], current = null, drill = null;
    var drillLayer = L.featureGroup().addTo(map);
    var state = readState();
    iocgis.lang = state.lang === "en" ? "en" : "vi";
    document.documentElement.lang = iocgis.lang;
    iocgis.state = state;

    // -- URL state: #ind=poverty_rate&p=2026-10&m=natural_breaks&k=5&c=02647&v=22.1,104.2,9&lang=vi
    function readState() {
      var out = {};
      location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
        if (!kv) return;
        var i = kv.indexOf("=");
        out[decodeURIComponent(i < 0 ? kv : kv.slice(0, i))] = i < 0 ? "" : decodeURIComponent(kv.slice(i + 1));
      });
      return out;
    }
    function writeState(push) {
      var c = map.getCenter();
      state.v = c.lat.toFixed(4) + "," + c.lng.toFixed(4) + "," + (Math.round(map.getZoom() * 100) / 100);
      var hash = "#" + ["ind", "p", "m", "k", "c", "v", "lang"].filter(function (k) { return state[k]; })
        .map(function (k) { return k + "=" + encodeURIComponent(state[k]); }).join("&");
      if (hash === location.hash) return;
      if (push) history.pushState(null, "", hash); else history.replaceState(null, "", hash);
    }
    var applying = false;
    map.on("moveend", function () { if (!applying) writeState(false); });
    window.addEventListener("popstate", function () {
      var next = readState();
      if (next.ind === undefined) next.ind = options.default_indicator;  // as on first load
      var indChanged = next.ind !== state.ind || next.p !== state.p || next.m !== state.m || next.k !== state.k;
      var drillChanged = (next.c || "") !== (state.c || "");
      state = iocgis.state = next;
      if (indChanged) loadChoropleth();
      if (drillChanged) { if (state.c) drillInto(state.c, false); else leaveDrill(false); }
      else if (state.v) setViewFromState();
    });
    function setViewFromState() {
      var v = (state.v || "").split(",").map(Number);
      if (v.length === 3 && v.every(isFinite)) { applying = true; map.setView([v[0], v[1]], v[2], { animate: false }); applying = false; }
    }

    // -- the panel: indicator, period, method, legend, drill-down ---------------------------------
    var Panel = L.Control.extend({
      options: { position: "bottomleft" },
      onAdd: function () {
        var div = L.DomUtil.create("div", "iocgis-panel leaflet-bar");
        L.DomEvent.disableClickPropagation(div);
        L.DomEvent.disableScrollPropagation(div);
        return div;
      },
    });
    panel = new Panel().addTo(map);
    var box = panel.getContainer();
    var collapsed = window.matchMedia("(max-width: 600px)").matches;

    function renderPanel() {
      var ind = current && current.indicator;
      var html = '<div class="iocgis-panel-head">' +
        '<button type="button" class="iocgis-collapse" aria-expanded="' + !collapsed + '" title="' + T("Thu gọn / mở", "Collapse / expand") + '">' +
        escapeHtml(T("Chỉ số", "Indicators")) + (collapsed ? " ▴" : " ▾") + "</button>" +
        '<button type="button" class="iocgis-lang" lang="' + (iocgis.lang === "en" ? "vi" : "en") + '">' +
        (iocgis.lang === "en" ? "Tiếng Việt" : "English") + "</button></div>";
      if (!collapsed) {
        html += '<label>' + T("Chỉ số", "Indicator") + ' <select class="iocgis-ind"><option value="">' + T("— Không tô màu —", "— None —") + "</option>" +
          indicators.map(function (i) {
            return '<option value="' + escapeHtml(i.code) + '"' + (i.code === state.ind ? " selected" : "") + ">" + escapeHtml(T(i.name.vi, i.name.en)) + "</option>";
          }).join("") + "</select></label>";
        if (ind) {
          html += '<div class="iocgis-row"><label>' + T("Kỳ", "Period") + ' <select class="iocgis-period">' +
            ind.periods.slice().reverse().map(function (p) {
              return '<option value="' + p + '"' + (p === current.period ? " selected" : "") + ">" + escapeHtml(fmtPeriod(p)) + "</option>";
            }).join("") + "</select></label>" +
            '<label>' + T("Phân lớp", "Classes") + ' <select class="iocgis-method">' +
            [["natural_breaks", T("Ngắt tự nhiên", "Natural breaks")], ["quantiles", T("Phân vị", "Quantiles")]].map(function (m) {
              return '<option value="' + m[0] + '"' + (m[0] === current.method ? " selected" : "") + ">" + m[1] + "</option>";
            }).join("") + "</select></label></div>";
          html += '<div class="iocgis-legend" aria-label="' + T("Chú giải", "Legend") + '"><div class="iocgis-legend-title">' +
            escapeHtml(T(ind.name.vi, ind.name.en)) + " (" + escapeHtml(T(ind.unit.vi, ind.unit.en)) + "), " + escapeHtml(fmtPeriod(current.period)) + "</div>" +
            current.classes.map(function (c) {
              return '<div class="iocgis-legend-row"><i style="background:' + c.color + '"></i>' + escapeHtml(fmt(c.min)) + " – " +
                escapeHtml(fmt(c.max)) + ' <span class="n">(' + c.count + ")</span></div>";
            }).join("") +
            '<div class="iocgis-legend-note">' + escapeHtml(ind.higher_is_better ? T("Xanh: cao hơn là tốt hơn", "Green: higher is better")
              : T("Xanh: thấp hơn là tốt hơn", "Green: lower is better")) +
            (ind.target !== null ? " · " + T("Mục tiêu ", "Target ") + escapeHtml(fmt(ind.target)) : "") +
            (current.province ? " · " + T("Toàn tỉnh ", "Province ") + escapeHtml(fmt(current.province.value)) : "") + "</div></div>";
        }
        if (drill) html += drillHtml(drill);
      } else if (drill) {
        html += '<div class="iocgis-drill-mini"><b>' + escapeHtml(drill.full_name) + '</b> <button type="button" class="iocgis-back">← ' + T("Toàn tỉnh", "Province") + "</button></div>";
      }
      box.innerHTML = html;
      box.querySelector(".iocgis-collapse").onclick = function () { collapsed = !collapsed; renderPanel(); };
      box.querySelector(".iocgis-lang").onclick = function () {
        state.lang = iocgis.lang === "en" ? "vi" : "en";
        iocgis.lang = state.lang;
        document.documentElement.lang = iocgis.lang;
        writeState(false);
        renderPanel(); restyle(); renderSearch();
      };
      var sel = box.querySelector(".iocgis-ind");
      if (sel) sel.onchange = function () { state.ind = sel.value; state.p = ""; loadChoropleth(); writeState(true); };
      var per = box.querySelector(".iocgis-period");
      if (per) per.onchange = function () { state.p = per.value; loadChoropleth(); writeState(true); };
      var met = box.querySelector(".iocgis-method");
      if (met) met.onchange = function () { state.m = met.value; loadChoropleth(); writeState(true); };
      var back = box.querySelector(".iocgis-back");
      if (back) back.onclick = function () { leaveDrill(true); };
    }

    function drillHtml(d) {
      var rows = d.indicators.map(function (i) {
        var ch = fmtChange(i.change, i.higher_is_better);
        return "<tr" + (i.off_target ? ' class="off"' : "") + "><th>" + escapeHtml(T(i.name.vi, i.name.en)) + "</th><td>" +
          escapeHtml(fmt(i.value)) + " " + escapeHtml(T(i.unit.vi, i.unit.en)) + '</td><td class="' + ch.cls + '">' + escapeHtml(ch.text) + "</td></tr>";
      }).join("");
      var counts = Object.keys(d.layers).map(function (id) {
        var spec = iocgis.specs[id];
        var title = spec ? T(spec.title, spec.title_en) : id;
        return "<li>" + escapeHtml(title) + ": <b>" + escapeHtml(fmt(d.layers[id].total, 0)) + "</b>" +
          (d.layers[id].shown < d.layers[id].total ? " (" + T("hiện ", "showing ") + fmt(d.layers[id].shown, 0) + ")" : "") + "</li>";
      }).join("");
      return '<div class="iocgis-drill"><div class="iocgis-drill-head"><b>' + escapeHtml(iocgis.lang === "en" && d.full_name_en ? d.full_name_en : d.full_name) +
        '</b> <button type="button" class="iocgis-back">← ' + T("Toàn tỉnh", "Province") + "</button></div>" +
        '<div class="iocgis-drill-area">' + T("Diện tích ", "Area ") + escapeHtml(fmt(d.area_km2)) + " km²</div>" +
        '<table class="iocgis-drill-ind">' + rows + "</table><ul class=\"iocgis-drill-layers\">" + counts + "</ul></div>";
    }

    // -- choropleth on the communes layer -------------------------------------------------------
    function featureCode(feature) { return feature.id || (feature.properties && feature.properties.code); }
    function tooltipHtml(name, u) {
      if (!current || !u) return escapeHtml(name);
      var ind = current.indicator;
      var ch = fmtChange(u.change, ind.higher_is_better);
      return '<div class="iocgis-tt-name">' + escapeHtml(name) + '</div><div class="iocgis-tt-val">' +
        escapeHtml(T(ind.name.vi, ind.name.en)) + ": <b>" + escapeHtml(fmt(u.value)) + "</b> " + escapeHtml(T(ind.unit.vi, ind.unit.en)) +
        '</div><div class="iocgis-tt-chg ' + ch.cls + '">' + escapeHtml(ch.text) + " " +
        escapeHtml(T("so với ", "vs ") + fmtPeriod(current.previous_period)) + "</div>";
    }
    function restyle() {
      var data = communesLayer.iocgisData;
      if (!data) return;
      var spec = iocgis.specs[options.communes_layer];
      data.eachLayer(function (l) {
        var code = featureCode(l.feature);
        var u = current && current.units[code];
        var dim = drill && drill.code !== code;
        l.setStyle(current ? {
          fill: true, fillColor: u ? u.color : current.no_data_color, fillOpacity: dim ? 0.25 : 0.7,
          weight: drill && !dim ? 3 : spec.style.weight, color: drill && !dim ? "#111" : spec.style.color,
        } : { fill: true, fillColor: spec.style.fill_color, fillOpacity: dim ? 0.05 : spec.style.fill_opacity,
          weight: drill && !dim ? 3 : spec.style.weight, color: drill && !dim ? "#111" : spec.style.color });
        var name = property(spec, l.feature, spec.label_field);
        if (l.getTooltip()) l.setTooltipContent(tooltipHtml(name, u));
      });
      iocgis.choroplethShown = current ? current.indicator.code + "@" + current.period : null;
    }
    function loadChoropleth() {
      if (!state.ind) { current = null; renderPanel(); restyle(); return; }
      var url = "/api/indicators/" + encodeURIComponent(state.ind) + "/choropleth?method=" + encodeURIComponent(state.m || "natural_breaks") +
        "&k=" + encodeURIComponent(state.k || 5) + (state.p ? "&period=" + encodeURIComponent(state.p) : "");
      iocgis.pending += 1;
      fetch(url).then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
        .then(function (data) { current = data; renderPanel(); restyle(); })
        .catch(function (err) { iocgis.failed.choropleth = String(err); notify(T("Không tải được chỉ số", "Could not load the indicator") + " (" + err.message + ")"); })
        .finally(function () { iocgis.pending -= 1; });
    }

    // The commune popup gains the indicator's value, change and series chart, and a drill button.
    function onPopup(e) {
      var l = e.layer || e.propagatedFrom;
      if (!l || !l.feature) return;
      var code = featureCode(l.feature);
      // Popup.update() re-renders string content, so the popup gets a node of its own that keeps
      // what is added to it; a re-opened popup drops the previous extra (the indicator may differ).
      var content = e.popup.getContent();
      var node = content;
      if (typeof content === "string") { node = document.createElement("div"); node.innerHTML = content; }
      var old = node.querySelector(".iocgis-popup-extra");
      if (old) old.remove();
      var el = node.querySelector(".iocgis-popup") || node;
      var extra = document.createElement("div");
      extra.className = "iocgis-popup-extra";
      var btn = '<button type="button" class="iocgis-drill-btn">' + T("Xem chi tiết xã ›", "Commune details ›") + "</button>";
      extra.innerHTML = (current ? '<div class="iocgis-chart-box">…</div>' : "") + btn;
      el.appendChild(extra);
      extra.querySelector(".iocgis-drill-btn").onclick = function () { map.closePopup(); drillInto(code, true); };
      e.popup.setContent(node);
      if (current) {
        var u = current.units[code];
        fetch("/api/indicators/" + encodeURIComponent(current.indicator.code) + "/series?unit=" + encodeURIComponent(code))
          .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
          .then(function (series) {
            var ind = current.indicator, ch = fmtChange(u && u.change, ind.higher_is_better);
            extra.querySelector(".iocgis-chart-box").innerHTML = '<div class="iocgis-popup-ind">' + escapeHtml(T(ind.name.vi, ind.name.en)) +
              ", " + escapeHtml(fmtPeriod(current.period)) + ": <b>" + escapeHtml(fmt(u && u.value)) + "</b> " + escapeHtml(T(ind.unit.vi, ind.unit.en)) +
              ' <span class="' + ch.cls + '">' + escapeHtml(ch.text) + "</span></div>" + seriesSvg(series);
            e.popup.update();
          }).catch(function () {});
      }
    }

    // -- drill-down: province -> commune -> the features inside it, and back ------------------------
    function drillInto(code, push) {
      iocgis.pending += 1;
      return fetch(options.commune_url + encodeURIComponent(code))
        .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
        .then(function (d) {
          drill = d;
          state.c = code;
          drillLayer.clearLayers();
          Object.keys(d.layers).forEach(function (id) {
            var spec = iocgis.specs[id];
            if (!spec || spec.geometry !== "point") return;  // polygons inside stay on their own layers
            L.geoJSON(d.layers[id].features, {
              pointToLayer: function (f, latlng) { return L.marker(latlng, { icon: pointIcon(spec) }); },
              onEachFeature: function (f, l) { bindFeature(spec, f, l); },
            }).eachLayer(function (l) { drillLayer.addLayer(l); });
          });
          var b = d.bbox;
          applying = true;
          map.fitBounds([[b[1], b[0]], [b[3], b[2]]], { padding: [20, 20], animate: false });
          applying = false;
          writeState(push);
          renderPanel(); restyle();
          iocgis.drilled = code;
        })
        .catch(function (err) { iocgis.failed.drill = String(err); notify(T("Không mở được xã", "Could not open the commune") + " (" + err.message + ")"); })
        .finally(function () { iocgis.pending -= 1; });
    }
    function leaveDrill(push) {
      drill = null;
      state.c = "";
      drillLayer.clearLayers();
      applying = true;
      map.fitBounds(options.province_bounds, { animate: false });
      applying = false;
      writeState(push);
      renderPanel(); restyle();
      iocgis.drilled = null;
    }

    // -- search by name, with or without diacritics (the server ignores them) ---------------------
    var search = L.DomUtil.create("div", "iocgis-search", map.getContainer());
    L.DomEvent.disableClickPropagation(search);
    L.DomEvent.disableScrollPropagation(search);
    function renderSearch() {
      var value = search.querySelector("input") ? search.querySelector("input").value : "";
      search.innerHTML = '<input type="search" autocomplete="off" enterkeyhint="search" aria-label="' + T("Tìm địa danh", "Find a place") +
        '" placeholder="' + T("Tìm xã, phường… (vd. sa pa)", "Find a commune… (e.g. sa pa)") + '"><ul class="iocgis-results" role="listbox"></ul>';
      var input = search.querySelector("input");
      input.value = value;
      var timer = null, ctrl = null;
      input.oninput = function () {
        clearTimeout(timer);
        timer = setTimeout(function () {
          var q = input.value.trim();
          var list = search.querySelector(".iocgis-results");
          if (!q) { list.innerHTML = ""; return; }
          if (ctrl) ctrl.abort();
          ctrl = new AbortController();
          fetch(options.places_url + "?limit=8&q=" + encodeURIComponent(q), { signal: ctrl.signal })
            .then(function (r) { return r.ok ? r.json() : []; })
            .then(function (places) {
              list.innerHTML = places.length ? places.map(function (p, i) {
                return '<li role="option" data-i="' + i + '"><b>' + escapeHtml(p.name) + "</b> <span>" + escapeHtml(p.full_name) + "</span></li>";
              }).join("") : '<li class="none">' + T("Không tìm thấy", "Nothing found") + "</li>";
              list.querySelectorAll("li[data-i]").forEach(function (li) {
                li.onclick = function () {
                  var p = places[+li.dataset.i];
                  list.innerHTML = "";
                  input.value = p.name;
                  if (p.level === "commune") drillInto(p.code, true);
                  else leaveDrill(true);
                };
              });
            }).catch(function () {});
        }, 200);
      };
      input.onkeydown = function (e) {
        if (e.key === "Enter") { var first = search.querySelector("li[data-i]"); if (first) first.click(); }
      };
    }
    renderSearch();

    // -- start: indicators, then the view from the URL ------------------------------------------
    if (state.ind === undefined) state.ind = options.default_indicator;
    function whenCommunes(fn) {
      if (communesLayer.iocgisData) fn(); else communesLayer.once("iocgis:loaded", fn);
    }
    whenCommunes(function () {
      communesLayer.iocgisData.on("popupopen", onPopup);
      restyle();
    });
    iocgis.pending += 1;
    fetch(options.indicators_url).then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (list) { indicators = list; renderPanel(); loadChoropleth(); })
      .catch(function (err) { iocgis.failed.indicators = String(err); })
      .finally(function () { iocgis.pending -= 1; });
    renderPanel();
    if (state.c) drillInto(state.c, false);
    else if (state.v) setViewFromState();
    iocgis.drillInto = drillInto;
    iocgis.leaveDrill = leaveDrill;
  };
})();
