/* /permits: search, show a permit over its zones and overlays, check a drawn or uploaded proposal.
   Data comes from /permits/api/* and the OGC API process /ogc/processes/zoning-check. */
(function () {
  "use strict";

  var VERDICT = {
    compliant: { vi: "Phù hợp quy hoạch", en: "Compliant", color: "#1a9850" },
    needs_review: { vi: "Cần xem xét", en: "Needs review", color: "#f39c12" },
    non_compliant: { vi: "Không phù hợp quy hoạch", en: "Non-compliant", color: "#d73027" },
  };
  var EFFECT = {
    forbid: { vi: "cấm xây dựng", en: "no building", color: "#b2182b" },
    restrict: { vi: "hạn chế", en: "restricted", color: "#8c510a" },
    review: { vi: "cần thẩm định", en: "review", color: "#762a83" },
  };
  var state = { map: null, layers: null, drawn: null, pending: 0, shown: null, failed: [] };

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") e.textContent = attrs[k];
      else e.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) e.appendChild(c); });
    return e;
  }

  function getJSON(url, options) {
    state.pending += 1;
    return fetch(url, options).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error(body.description || r.status);
        return body;
      });
    }).finally(function () { state.pending -= 1; });
  }

  function pct(share) { return (Math.round(share * 1000) / 10).toLocaleString("vi-VN") + "%"; }

  function verdictBlock(result, title) {
    var v = VERDICT[result.verdict] || { vi: result.verdict, en: result.verdict, color: "#555" };
    var box = el("div", { class: "verdict " + result.verdict, style: "border-color:" + v.color });
    box.appendChild(el("p", { class: "badge", style: "background:" + v.color, text: v.vi + " / " + v.en }));
    if (title) box.appendChild(title);
    var zones = el("ul", { class: "zones" });
    (result.zones || []).forEach(function (z) {
      zones.appendChild(el("li", { text: "Khu / Zone " + z.zone_code + " (" + z.zone_type + "): " + pct(z.share) +
        " — QĐ " + z.decision_no }));
    });
    (result.overlays || []).forEach(function (o) {
      zones.appendChild(el("li", { class: "overlay", text: o.name_vi + " / " + o.name_en + ": " + pct(o.share) }));
    });
    if (!(result.zones || []).length) zones.appendChild(el("li", { text: "Không thuộc khu quy hoạch nào / in no zone" }));
    box.appendChild(el("h3", { text: "Khu và lớp phủ / Zones and overlays" }));
    box.appendChild(zones);
    var reasons = el("ol", { class: "reasons" });
    (result.reasons || []).forEach(function (r) {
      reasons.appendChild(el("li", { class: r.severity }, [
        el("span", { class: "vi", text: r.message_vi }), el("br"),
        el("span", { class: "en", lang: "en", text: r.message_en }),
      ]));
    });
    box.appendChild(el("h3", { text: "Lý do / Reasons" }));
    if ((result.reasons || []).length) box.appendChild(reasons);
    else box.appendChild(el("p", { text: "Không vi phạm chỉ tiêu nào / No rule broken" }));
    return box;
  }

  function drawContext(ctx, focus, verdict) {
    state.layers.clearLayers();
    L.geoJSON(ctx.zones, {
      style: { color: "#e6550d", weight: 2, fillColor: "#fdae6b", fillOpacity: 0.25, className: "permits-zone" },
      onEachFeature: function (f, layer) {
        layer.bindTooltip(f.properties.zone_code, { permanent: true, direction: "center", className: "zone-label" });
      },
    }).addTo(state.layers);
    L.geoJSON(ctx.overlays, {
      style: function (f) {
        var e = EFFECT[f.properties.effect] || EFFECT.review;
        return { color: e.color, weight: 1, dashArray: "4 3", fillColor: e.color, fillOpacity: 0.18,
                 className: "permits-overlay" };
      },
      onEachFeature: function (f, layer) {
        var e = EFFECT[f.properties.effect] || EFFECT.review;
        layer.bindPopup(f.properties.name_vi + " (" + e.vi + ")<br><span lang='en'>" + f.properties.name_en +
          " (" + e.en + ")</span>");
      },
    }).addTo(state.layers);
    L.geoJSON(ctx.permits, {
      style: function (f) {
        var v = VERDICT[f.properties.verdict];
        return { color: v ? v.color : "#777", weight: 1, fillOpacity: 0.5, className: "permits-neighbour" };
      },
      onEachFeature: function (f, layer) {
        layer.on("click", function () { showPermit(f.properties.id); });
        layer.bindTooltip(f.properties.permit_no);
      },
    }).addTo(state.layers);
    if (focus) {
      var v = VERDICT[verdict] || { color: "#08519c" };
      var shape = L.geoJSON(focus, { style: { color: v.color, weight: 4, fillColor: v.color, fillOpacity: 0.6,
                                                className: "permits-focus" } });
      shape.addTo(state.layers);
      state.map.fitBounds(shape.getBounds(), { maxZoom: 18, padding: [60, 60] });
    }
  }

  function showPermit(id) {
    return getJSON("/permits/api/" + id).then(function (p) {
      var detail = document.getElementById("permit-detail");
      detail.innerHTML = "";
      var title = el("div", { class: "permit-head" }, [
        el("h2", { text: "Giấy phép / Permit " + p.permit_no }),
        el("p", { text: p.address }),
        el("p", { text: "Mục đích / Use: " + p.intended_use + " · " + p.floors + " tầng / floors · " + p.height_m +
          " m · nộp / applied " + p.applied_on + " · " + p.status }),
      ]);
      detail.appendChild(verdictBlock(p, title));
      if (!p.stored) detail.appendChild(el("p", { class: "hint", text: "Kết quả tính trực tiếp, chưa lưu / computed live, not stored" }));
      detail.hidden = false;
      state.shown = p;
      drawContext(p.context, p.geometry, p.verdict);
    }).catch(fail);
  }

  function search(q) {
    var list = document.getElementById("permit-results");
    list.innerHTML = "";
    return getJSON("/permits/api/search?q=" + encodeURIComponent(q)).then(function (rows) {
      if (!rows.length) list.appendChild(el("li", { text: "Không tìm thấy / Nothing found" }));
      rows.forEach(function (r) {
        var v = VERDICT[r.verdict];
        var item = el("li", { class: "result", tabindex: "0", "data-id": r.id }, [
          el("span", { class: "dot", style: "background:" + (v ? v.color : "#999") }),
          el("strong", { text: r.permit_no }), el("br"),
          el("span", { text: r.address + " — " + r.commune }),
        ]);
        item.addEventListener("click", function () { showPermit(r.id); });
        list.appendChild(item);
      });
      if (rows.length) return showPermit(rows[0].id);
    }).catch(fail);
  }

  function fail(err) {
    state.failed.push(String(err && err.message || err));
    var box = document.getElementById("proposal-result");
    box.hidden = false;
    box.innerHTML = "";
    box.appendChild(el("p", { class: "error", text: String(err && err.message || err) }));
  }

  function proposalGeometry() {
    var shapes = [];
    state.drawn.eachLayer(function (l) { shapes.push(l.toGeoJSON().geometry); });
    return shapes.length ? shapes[shapes.length - 1] : null;
  }

  function checkProposal(ev) {
    ev.preventDefault();
    var form = ev.target;
    var footprint = proposalGeometry();
    var box = document.getElementById("proposal-result");
    if (!footprint) { fail(new Error("Hãy vẽ hoặc tải mặt bằng công trình / draw or upload a footprint first")); return; }
    var inputs = { footprint: footprint };
    new FormData(form).forEach(function (value, key) { if (value !== "" && key) inputs[key] = value; });
    getJSON("/ogc/processes/zoning-check/execution", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ inputs: inputs }),
    }).then(function (result) {
      box.innerHTML = "";
      box.appendChild(verdictBlock(result, el("h2", { text: "Phương án / Proposal" })));
      box.hidden = false;
      box.scrollIntoView({ block: "start" });
      var b = L.geoJSON(footprint).getBounds();
      return getJSON("/permits/api/around?bbox=" + [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].join(",") +
        "&day=" + result.applied_on).then(function (ctx) { drawContext(ctx, footprint, result.verdict); });
    }).catch(fail);
  }

  function loadFile(ev) {
    var file = ev.target.files[0];
    if (!file) return;
    file.text().then(function (text) {
      var data = JSON.parse(text);
      var geom = data.type === "FeatureCollection" ? data.features[0].geometry : (data.geometry || data);
      state.drawn.clearLayers();
      L.geoJSON(geom).eachLayer(function (l) { state.drawn.addLayer(l); });
      state.map.fitBounds(state.drawn.getBounds(), { maxZoom: 18 });
    }).catch(fail);
  }

  window.iocgisPermits = {
    state: state,
    search: search,
    showPermit: showPermit,
    setup: function (map, bounds) {
      state.map = map;
      map.fitBounds(bounds);
      L.control.scale({ metric: true, imperial: false }).addTo(map);
      state.layers = L.featureGroup().addTo(map);
      state.drawn = new L.FeatureGroup().addTo(map);
      if (L.Control.Draw) {
        map.addControl(new L.Control.Draw({
          draw: { polygon: { allowIntersection: false, showArea: true }, rectangle: true, polyline: false,
                  circle: false, circlemarker: false, marker: false },
          edit: { featureGroup: state.drawn },
        }));
        map.on(L.Draw.Event.CREATED, function (e) {
          state.drawn.clearLayers();
          state.drawn.addLayer(e.layer);
          document.getElementById("proposal").open = true;
        });
      }
      document.getElementById("permit-search").addEventListener("submit", function (ev) {
        ev.preventDefault();
        search(document.getElementById("permit-q").value);
      });
      document.getElementById("proposal-form").addEventListener("submit", checkProposal);
      document.getElementById("proposal-file").addEventListener("change", loadFile);
      var q = new URLSearchParams(window.location.search).get("q");
      if (q) { document.getElementById("permit-q").value = q; search(q); }
    },
  };
})();
