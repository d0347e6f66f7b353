/* artlens web app: the deep-zoom viewer (Leaflet, L.CRS.Simple over DZI tiles), map overlays with a
   colour bar and opacity, a swipe between two views, and live job progress. No inline script: the pages
   carry their data in data-* attributes. */
(function () {
  'use strict';

  /* The page's form token (base.html's <meta name="csrf-token">), sent as X-CSRF-Token by every fetch of
     the app: the server refuses a POST from the browser without it. */
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrfToken = csrfMeta ? csrfMeta.getAttribute('content') : '';

  function send(url, options) {
    var opts = Object.assign({credentials: 'same-origin'}, options || {});
    opts.headers = Object.assign({Accept: 'application/json', 'X-CSRF-Token': csrfToken}, opts.headers || {});
    return fetch(url, opts);
  }

  function getJSON(url) {
    return send(url).then(function (r) {
      if (!r.ok) { throw new Error(url + ': ' + r.status); }
      return r.json();
    });
  }

  /* A DZI pyramid as a Leaflet tile layer: Leaflet zoom z = DZI level z. Edge tiles are smaller than
     256 px, so each loaded tile is sized to its natural size (times the layer's overzoom scale). */
  function dziLayer(info, bounds, options) {
    var layer = L.tileLayer(info.tiles, Object.assign({
      tileSize: info.tile_size, noWrap: true, bounds: bounds, minNativeZoom: 0,
      maxNativeZoom: info.max_level, maxZoom: info.max_level + 3, keepBuffer: 2
    }, options || {}));
    layer.on('tileload', function (e) {
      var img = e.tile, scale = parseFloat(img.style.width) / info.tile_size;
      img.style.width = (img.naturalWidth * scale) + 'px';
      img.style.height = (img.naturalHeight * scale) + 'px';
    });
    return layer;
  }

  function initViewer(el) {
    getJSON('/api/images/' + el.dataset.image + '/tiles').then(function (info) {
      var maxL = info.max_level;
      var map = L.map(el, {crs: L.CRS.Simple, minZoom: 0, maxZoom: maxL + 3, zoomSnap: 0.25,
                           attributionControl: false});
      var px = function (x, y) { return map.unproject([x, y], maxL); };
      var bounds = L.latLngBounds(px(0, info.height), px(info.width, 0));
      dziLayer(info, bounds).addTo(map);
      map.fitBounds(bounds);
      map.setMaxBounds(bounds.pad(0.5));
      el.artlens = {map: map, px: px};
      initOverlay(map, px);
      initSwipe(map, px, bounds);
      el.dataset.ready = '1';
    }).catch(function (err) { el.textContent = 'cannot show this image: ' + err.message; });
  }

  function initOverlay(map, px) {
    var select = document.getElementById('overlay');
    var opacity = document.getElementById('opacity');
    if (!select) { return; }
    var current = null;
    function show() {
      if (current) { map.removeLayer(current); current = null; }
      var opt = select.options[select.selectedIndex];
      var legend = document.getElementById('legend');
      if (!opt || !opt.value) { legend.hidden = true; return; }
      var b = JSON.parse(opt.dataset.bounds);  /* [[y0, x0], [y1, x1]] in full-resolution pixels */
      var lb = L.latLngBounds(px(b[0][1], b[1][0]), px(b[1][1], b[0][0]));
      current = L.imageOverlay(opt.dataset.url, lb, {opacity: parseFloat(opacity.value), className: 'map-overlay'});
      current.on('load', function () { map.getContainer().dataset.overlay = opt.value; });
      current.addTo(map);
      document.getElementById('legend-min').textContent = opt.dataset.vmin;
      document.getElementById('legend-max').textContent = opt.dataset.vmax;
      document.getElementById('legend-units').textContent = opt.dataset.units;
      document.getElementById('legend-bar').src = opt.dataset.colourbar;
      legend.hidden = false;
    }
    select.addEventListener('change', show);
    opacity.addEventListener('input', function () { if (current) { current.setOpacity(parseFloat(opacity.value)); } });
    show();
  }

  /* Swipe: a second view of the same size in its own pane above the image, clipped to the right of a
     divider that the slider moves. */
  function initSwipe(map, px, bounds) {
    var select = document.getElementById('swipe');
    var slider = document.getElementById('swipe-pos');
    if (!select) { return; }
    var pane = map.createPane('swipe');
    pane.classList.add('swipe-pane');
    var divider = L.DomUtil.create('div', 'swipe-divider', map.getContainer());
    divider.hidden = true;
    var layer = null;
    function clip() {
      var f = parseFloat(slider.value);
      var nw = map.containerPointToLayerPoint([0, 0]);
      var se = map.containerPointToLayerPoint(map.getSize());
      var x = nw.x + (se.x - nw.x) * f;
      pane.style.clip = 'rect(' + nw.y + 'px, ' + se.x + 'px, ' + se.y + 'px, ' + x + 'px)';
      divider.style.left = (100 * f) + '%';
    }
    function show() {
      if (layer) { map.removeLayer(layer); layer = null; }
      divider.hidden = !select.value;
      if (!select.value) { return; }
      getJSON('/api/images/' + select.value + '/tiles').then(function (info) {
        layer = dziLayer(info, bounds, {pane: 'swipe'}).addTo(map);
        clip();
      });
    }
    select.addEventListener('change', show);
    slider.addEventListener('input', clip);
    map.on('move zoom resize', clip);
  }

  function initJob(el) {
    var terminal = {done: 1, failed: 1, cancelled: 1};
    if (terminal[el.dataset.state]) { return; }
    function poll() {
      getJSON('/api/jobs/' + el.dataset.job).then(function (j) {
        document.getElementById('job-state').textContent = j.state;
        document.getElementById('job-progress').value = j.progress;
        document.getElementById('job-message').textContent = j.message || '';
        if (terminal[j.state]) { window.location.reload(); } else { setTimeout(poll, 700); }
      }).catch(function () { setTimeout(poll, 2000); });
    }
    setTimeout(poll, 500);
  }

  function initJobsTable(table) {
    if (table.querySelector('.state-queued, .state-running')) {
      setTimeout(function () { window.location.reload(); }, 2000);
    }
  }

  document.addEventListener('DOMContentLoaded', function () {
    var viewer = document.getElementById('viewer');
    if (viewer) { initViewer(viewer); }
    var job = document.getElementById('job');
    if (job) { initJob(job); }
    var jobs = document.getElementById('jobs');
    if (jobs) { initJobsTable(jobs); }
  });
}());
