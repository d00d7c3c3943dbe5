/* The simulation page: the server replays the start data and the list of actions on every
 * request (nothing is stored), so this script only keeps that list and draws the answer. */
(function () {
  'use strict';

  var Brand = window.Brand;
  var el = Brand.el;
  var config = Brand.readJson('simulate-config');
  var t = Brand.translator(config.strings);
  var actions = [];
  var viewer = null;
  var markers = [];

  var startData = document.getElementById('start-data');
  startData.value = JSON.stringify(config.start_data || {}, null, 2);

  function parse(text) {
    try {
      return JSON.parse(text || '{}');
    } catch (error) {
      return undefined;
    }
  }

  function run() {
    var data = parse(startData.value);
    if (data === undefined) {
      showError({message: t('start_data') + ': ' + t('bad_json')});
      return Promise.resolve();
    }
    return Brand.call('POST', config.api, {data: data, actions: actions}).then(function (r) {
      if (r.status !== 200) {
        actions.pop();
        var error = (r.body && r.body.error) || {message: String(r.status)};
        showError(error);
        return;
      }
      render(r.body);
    });
  }

  function showError(error) {
    var box = document.getElementById('sim-error');
    box.hidden = !error;
    box.innerHTML = '';
    if (!error) {
      return;
    }
    box.appendChild(el('strong', {text: t('error') + '：'}));
    box.appendChild(document.createTextNode(error.message || ''));
    if (error.element_id) {
      box.appendChild(el('code', {text: ' ' + error.element_id}));
    }
    var fields = error.fields || {};
    Object.keys(fields).forEach(function (name) {
      box.appendChild(el('div', {text: name + '：' + fields[name].join('；')}));
    });
    (error.problems || []).forEach(function (problem) {
      box.appendChild(el('div', {text: problem.message}));
    });
  }

  function render(result) {
    showError(result.error);
    if (result.error && result.error.action_index !== null &&
        result.error.action_index !== undefined) {
      // The failing action stays out of the list, so the next try starts from before it.
      actions.splice(result.error.action_index);
    }
    document.getElementById('sim-now').textContent = Brand.localTime(result.now);
    document.getElementById('sim-state').textContent = result.completed ? t('finished') : '';

    var path = document.getElementById('sim-path');
    path.innerHTML = '';
    result.path.forEach(function (step) {
      path.appendChild(el('li', {'class': step.state, 'data-element': step.element_id}, [
        el('span', {'class': 'meta', text: Brand.localTime(step.at) + ' '}),
        el('strong', {text: step.name}), ' ',
        el('code', {text: step.element_id}),
        step.lane ? ' · ' + step.lane : '',
        step.state === 'cancelled' ? ' · ' + t('cancelled') : ''
      ]));
    });

    var tasks = document.getElementById('sim-tasks');
    tasks.innerHTML = '';
    result.open_tasks.forEach(function (task) {
      var area = el('textarea', {rows: 5, spellcheck: 'false'});
      area.value = JSON.stringify(task.example || {}, null, 2);
      var button = el('button', {type: 'button', text: t('complete'), onclick: function () {
        var data = parse(area.value);
        if (data === undefined) {
          showError({message: task.name + ': ' + t('bad_json')});
          return;
        }
        actions.push({complete: task.element_id, data: data});
        run();
      }});
      tasks.appendChild(el('div', {'class': 'sim-task', 'data-element': task.element_id}, [
        el('strong', {text: task.name}), ' ', el('code', {text: task.element_id}),
        el('div', {'class': 'meta', text: (task.lane || '') + ' · ' + t('due_at') + ' ' +
                   (Brand.localTime(task.due_at) || '-')}, [
          task.overdue ? el('span', {'class': 'badge', text: t('overdue')}) : null]),
        area, button]));
    });

    var timers = document.getElementById('sim-timers');
    timers.innerHTML = '';
    result.timers.forEach(function (timer) {
      timers.appendChild(el('li', {text: timer.name + ' · ' + Brand.localTime(timer.due_at)}));
    });

    var services = document.getElementById('sim-services');
    services.innerHTML = '';
    result.services.forEach(function (call) {
      services.appendChild(el('li', {text: Brand.localTime(call.at) + ' ' + call.operation +
                                           ' ' + JSON.stringify(call.params)}));
    });
    document.getElementById('sim-data').textContent = JSON.stringify(result.data, null, 2);
    if (viewer) {
      markers = Brand.markStates(viewer, result.markers, markers);
    }
  }

  document.getElementById('sim-start').addEventListener('click', function () {
    actions = [];
    run();
  });
  document.getElementById('sim-undo').addEventListener('click', function () {
    actions.pop();
    run();
  });
  document.getElementById('sim-advance').addEventListener('click', function () {
    actions.push({advance: document.getElementById('advance-by').value.trim()});
    run();
  });

  window.BrandViewer.draw(document.getElementById('sim-diagram'), config.xml).then(function (v) {
    viewer = v;
  });
}());
