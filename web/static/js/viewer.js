/* Read-only diagrams: a case's progress on its case page, the changes between two versions.
 *
 * <div class="diagram" data-diagram-url="/api/v1/instances/7/diagram"> draws the JSON
 * {xml, completed, active, waiting, timers}; <div class="diagram" data-diagram-source="id">
 * draws the JSON in <script type="application/json" id="id"> ({xml, markers}). */
(function () {
  'use strict';

  var Brand = window.Brand;

  function draw(container, xml) {
    var viewer = new window.BpmnJS({container: container});
    return viewer.importXML(xml).then(function () {
      viewer.get('canvas').zoom('fit-viewport', 'auto');
      container.setAttribute('data-rendered',
                             String(viewer.get('elementRegistry').getAll().length));
      return viewer;
    });
  }

  function showCase(container) {
    Brand.call('GET', container.getAttribute('data-diagram-url')).then(function (response) {
      if (response.status !== 200) {
        container.textContent = (response.body && response.body.error &&
                                 response.body.error.message) || String(response.status);
        return;
      }
      var body = response.body;
      draw(container, body.xml).then(function (viewer) {
        Brand.markStates(viewer, body);
        var overlays = viewer.get('overlays');
        var registry = viewer.get('elementRegistry');
        (body.timers || []).forEach(function (timer) {
          if (registry.get(timer.element_id)) {
            overlays.add(timer.element_id, {
              position: {bottom: -4, left: -10},
              html: Brand.el('div', {'class': 'due-overlay',
                                     text: Brand.localTime(timer.due_at)})
            });
          }
        });
        container.setAttribute('data-active', body.active.join(' '));
        container.setAttribute('data-completed', body.completed.join(' '));
      });
    });
  }

  function showSource(container) {
    var source = Brand.readJson(container.getAttribute('data-diagram-source'));
    draw(container, source.xml).then(function (viewer) {
      var canvas = viewer.get('canvas');
      var registry = viewer.get('elementRegistry');
      Object.keys(source.markers || {}).forEach(function (marker) {
        source.markers[marker].forEach(function (id) {
          if (registry.get(id)) {
            canvas.addMarker(id, marker);
          }
        });
      });
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll('.diagram'), function (container) {
    if (container.hasAttribute('data-diagram-url')) {
      showCase(container);
    } else if (container.hasAttribute('data-diagram-source')) {
      showSource(container);
    }
  });

  window.BrandViewer = {draw: draw};
}());
