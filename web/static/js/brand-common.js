/* Helpers shared by the office's diagram pages: translated words, JSON calls with the
 * session's CSRF token, and the element markers every diagram uses. No framework. */
(function () {
  'use strict';

  function readJson(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute('content') : '';
  }

  /* fetch() a JSON endpoint; resolves with {status, body}, rejects only on network errors. */
  function call(method, url, body) {
    var options = {method: method, credentials: 'same-origin',
                   headers: {'Accept': 'application/json', 'X-CSRFToken': csrfToken()}};
    if (body !== undefined) {
      options.headers['Content-Type'] = 'application/json';
      options.body = JSON.stringify(body);
    }
    return fetch(url, options).then(function (response) {
      if (response.status === 204) {
        return {status: 204, body: null};
      }
      return response.json().then(function (json) {
        return {status: response.status, body: json};
      }, function () {
        return {status: response.status, body: null};
      });
    });
  }

  function translator(strings) {
    return function (key, params) {
      var text = (strings && strings[key]) || key;
      Object.keys(params || {}).forEach(function (name) {
        text = text.split('%(' + name + ')s').join(String(params[name]));
      });
      return text;
    };
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value === null || value === undefined || value === false) {
        return;
      }
      if (name === 'text') {
        node.textContent = value;
      } else if (name.indexOf('on') === 0) {
        node.addEventListener(name.slice(2), value);
      } else {
        node.setAttribute(name, value === true ? '' : value);
      }
    });
    (children || []).forEach(function (child) {
      if (child !== null && child !== undefined) {
        node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
      }
    });
    return node;
  }

  function localTime(iso) {
    if (!iso) {
      return '';
    }
    var date = new Date(iso);
    return date.toLocaleString('zh-CN', {timeZone: 'Asia/Shanghai', hour12: false});
  }

  /* Mark elements of a drawn diagram: {completed: [...], active: [...], waiting: [...]}. */
  function markStates(viewer, states, previous) {
    var canvas = viewer.get('canvas');
    var registry = viewer.get('elementRegistry');
    (previous || []).forEach(function (pair) {
      if (registry.get(pair[0])) {
        canvas.removeMarker(pair[0], pair[1]);
      }
    });
    var added = [];
    function mark(ids, marker) {
      (ids || []).forEach(function (id) {
        if (registry.get(id)) {
          canvas.addMarker(id, marker);
          added.push([id, marker]);
        }
      });
    }
    mark(states.completed, 'done');
    mark(states.waiting, 'waiting');
    mark(states.active, 'active');
    var reached = {};
    [].concat(states.completed || [], states.active || [], states.waiting || [])
      .forEach(function (id) { reached[id] = true; });
    var done = {};
    (states.completed || []).forEach(function (id) { done[id] = true; });
    registry.filter(function (element) {
      return element.type === 'bpmn:SequenceFlow' && element.source && element.target &&
        done[element.source.id] && reached[element.target.id];
    }).forEach(function (flow) {
      canvas.addMarker(flow.id, 'taken');
      added.push([flow.id, 'taken']);
    });
    return added;
  }

  window.Brand = {readJson: readJson, call: call, translator: translator, el: el,
                  localTime: localTime, markStates: markStates};
}());
