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
  };

  /* One registry layer. Returns a Leaflet layer at once (the layer control needs it) and fills it
   * the first time it is added to the map. Points go into a cluster group so thousands of them
   * stay a few dozen DOM nodes at province scale. */
  iocgis.layer = function (spec) {
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
})();
