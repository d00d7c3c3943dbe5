/* The modeler page: a draft (or a version to start one from) in bpmn-js, its decision
 * tables in dmn-js, the raw XML, and the executability check shown beside the diagram.
 * Saving keeps a draft (nothing runs from it); deploying makes it the next version. */
(function () {
  'use strict';

  var Brand = window.Brand;
  var el = Brand.el;
  var config = Brand.readJson('modeler-config');
  var t = Brand.translator(config.strings);
  var api = config.urls.api;

  var state = {
    draft: config.draft,           // {id, lock_version, ...} once saved
    files: config.files,           // file name -> text (the BPMN as last imported or saved)
    bpmnName: Object.keys(config.files).filter(function (n) { return /\.bpmn$/.test(n); })[0],
    dirty: false,
    problemMarkers: [],
    dmn: null,                     // the dmn-js modeler, made when its tab first opens
    dmnFile: null,
    busy: false
  };

  var modeler = new window.BpmnJS({container: '#canvas'});
  var panel = new window.BrandPanel(modeler, document.getElementById('panel'), {
    t: t, groups: config.groups, forms: config.forms, operations: config.operations,
    formUrl: config.urls.form, decisions: decisions});

  modeler.on('commandStack.changed', function () { setDirty(true); });

  function status(text, kind) {
    var node = document.getElementById('status');
    node.textContent = text || '';
    node.className = 'status ' + (kind || '');
  }

  function setDirty(dirty) {
    state.dirty = dirty;
    document.getElementById('dirty').hidden = !dirty;
  }

  function importBpmn(xml) {
    return modeler.importXML(xml).then(function (result) {
      modeler.get('canvas').zoom('fit-viewport', 'auto');
      document.getElementById('canvas').setAttribute('data-rendered',
        String(modeler.get('elementRegistry').getAll().length));
      if (result.warnings.length) {
        console.warn('bpmn-js import warnings', result.warnings);
      }
    }).catch(function (error) {
      status(t('load_failed') + ': ' + error.message, 'error');
      throw error;
    });
  }

  /* Every decision defined in the unit's DMN files: {id, name, file}. */
  function decisions() {
    var found = [];
    Object.keys(state.files).forEach(function (name) {
      if (!/\.dmn$/.test(name)) {
        return;
      }
      var doc = new DOMParser().parseFromString(state.files[name], 'application/xml');
      Array.prototype.forEach.call(doc.getElementsByTagNameNS('*', 'decision'), function (d) {
        found.push({id: d.getAttribute('id'), name: d.getAttribute('name'), file: name});
      });
    });
    return found;
  }

  // -- collecting the files ----------------------------------------------------------------

  function collect() {
    var work = [modeler.saveXML({format: true}).then(function (result) {
      state.files[state.bpmnName] = result.xml;
    })];
    if (state.dmn && state.dmnFile) {
      work.push(state.dmn.saveXML({format: true}).then(function (result) {
        state.files[state.dmnFile] = result.xml;
      }));
    }
    return Promise.all(work).then(function () { return state.files; });
  }

  // -- save, check, deploy -----------------------------------------------------------------

  function save() {
    if (state.busy) {
      return Promise.reject(new Error('busy'));
    }
    state.busy = true;
    status(t('checking'));
    return collect().then(function (files) {
      if (state.draft) {
        return Brand.call('PUT', api + '/drafts/' + state.draft.id,
                          {files: files, lock_version: state.draft.lock_version});
      }
      return Brand.call('POST', api + '/processes/' + config.key + '/drafts',
                        {files: files, from_version: config.base_version});
    }).then(function (response) {
      state.busy = false;
      if (response.status !== 200 && response.status !== 201) {
        status(t('save_failed') + ': ' + errorText(response), 'error');
        throw new Error('save failed');
      }
      state.draft = response.body;
      setDirty(false);
      var url = config.urls.modeler + '?draft=' + state.draft.id;
      window.history.replaceState(null, '', url);
      document.getElementById('draft-label').textContent = '#' + state.draft.id;
      document.getElementById('simulate').href = config.urls.simulate + '?draft=' +
        state.draft.id;
      document.getElementById('simulate').hidden = false;
      showProblems(response.body.check);
      return response.body;
    }, function (error) {
      state.busy = false;
      throw error;
    });
  }

  function errorText(response) {
    var error = response.body && response.body.error;
    return error ? error.message : String(response.status);
  }

  function showProblems(check) {
    var canvas = modeler.get('canvas');
    var registry = modeler.get('elementRegistry');
    state.problemMarkers.forEach(function (pair) {
      if (registry.get(pair[0])) {
        canvas.removeMarker(pair[0], pair[1]);
      }
    });
    state.problemMarkers = [];
    var list = document.getElementById('problem-list');
    list.innerHTML = '';
    var summary = document.getElementById('problem-summary');
    if (!check.problems.length) {
      summary.textContent = t('no_problems');
      summary.className = 'ok';
      status(t('saved'), 'ok');
      return;
    }
    summary.textContent = t('errors') + ' ' + check.errors + ' · ' + t('warnings') + ' ' +
      check.warnings;
    summary.className = check.errors ? 'error' : 'warn';
    status(t('saved'), check.errors ? 'error' : 'ok');
    check.problems.forEach(function (problem) {
      var where = [];
      if (problem.element_id) {
        where.push(problem.element_id);
      }
      if (problem.line) {
        where.push(t('line') + ' ' + problem.line);
      }
      if (problem.filename && problem.filename !== state.bpmnName) {
        where.push(problem.filename);
      }
      var item = el('li', {'class': 'problem ' + problem.severity,
                           'data-element': problem.element_id || ''}, [
        el('span', {'class': 'severity', text: problem.severity === 'error' ? t('errors')
                                                                             : t('warnings')}),
        el('code', {text: where.join(' · ')}),
        el('span', {text: ' ' + problem.message})
      ]);
      var marker = 'problem-' + problem.severity;
      if (problem.element_id && registry.get(problem.element_id)) {
        canvas.addMarker(problem.element_id, marker);
        state.problemMarkers.push([problem.element_id, marker]);
        item.addEventListener('click', function () { reveal(problem.element_id); });
        item.classList.add('linked');
      }
      list.appendChild(item);
    });
  }

  function reveal(id) {
    showTab('diagram');
    var element = modeler.get('elementRegistry').get(id);
    if (element) {
      modeler.get('selection').select(element);
      modeler.get('canvas').scrollToElement(element);
    }
  }

  function deploy() {
    var reason = document.getElementById('reason').value.trim();
    if (!reason) {
      status(t('reason_required'), 'error');
      document.getElementById('reason').focus();
      return;
    }
    save().then(function (draft) {
      if (draft.check && draft.check.errors) {
        status(t('deploy_refused'), 'error');
        return null;
      }
      return Brand.call('POST', api + '/drafts/' + draft.id + '/deploy',
                        {reason: reason, lock_version: draft.lock_version});
    }).then(function (response) {
      if (!response) {
        return;
      }
      if (response.status === 201 || response.status === 200) {
        var key = response.status === 201 ? 'deployed' : 'unchanged';
        status(t(key, {version: response.body.version}), 'ok');
        document.getElementById('deployed').hidden = false;
        document.getElementById('deployed-text').textContent = t(key, {
          version: response.body.version});
        document.getElementById('deploy').disabled = true;
        document.getElementById('save').disabled = true;
        return;
      }
      var error = response.body && response.body.error;
      if (error && error.problems) {
        showProblems({problems: error.problems, errors: error.problems.length, warnings: 0});
      }
      status(t('deploy_refused') + ': ' + errorText(response), 'error');
    }).catch(function () { /* status already shows why */ });
  }

  // -- tabs: diagram, decision tables, XML -------------------------------------------------

  function showTab(name) {
    Array.prototype.forEach.call(document.querySelectorAll('[data-tab]'), function (button) {
      button.classList.toggle('current', button.getAttribute('data-tab') === name);
    });
    Array.prototype.forEach.call(document.querySelectorAll('.tab-body'), function (body) {
      body.hidden = body.id !== 'tab-' + name;
    });
    var leaving = state.dmn && state.dmnFile && name !== 'dmn';
    var pending = leaving ? state.dmn.saveXML({format: true}).then(function (result) {
      state.files[state.dmnFile] = result.xml;
    }) : Promise.resolve();
    return pending.then(function () {
      if (name === 'dmn') {
        fillDmnChoices();
      } else if (name === 'xml') {
        return collect().then(fillXmlChoices);
      }
    });
  }

  function fillDmnChoices() {
    var select = document.getElementById('dmn-file');
    var names = Object.keys(state.files).filter(function (n) { return /\.dmn$/.test(n); });
    select.innerHTML = '';
    names.forEach(function (name) {
      select.appendChild(el('option', {value: name, text: name,
                                       selected: name === state.dmnFile}));
    });
    document.getElementById('dmn-empty').hidden = names.length > 0;
    if (names.length) {
      openDmn(state.dmnFile && names.indexOf(state.dmnFile) >= 0 ? state.dmnFile : names[0]);
    }
  }

  function openDmn(name) {
    var work = Promise.resolve();
    if (state.dmn && state.dmnFile && state.dmnFile !== name) {
      var previous = state.dmnFile;
      work = state.dmn.saveXML({format: true}).then(function (result) {
        state.files[previous] = result.xml;
      });
    }
    if (!state.dmn) {
      state.dmn = new window.DmnJS({container: '#dmn-canvas'});
      state.dmn.on('views.changed', function () {
        var viewer = state.dmn.getActiveViewer();
        if (viewer && !viewer.brandWatched) {
          viewer.brandWatched = true;
          viewer.on('elements.changed', function () { setDirty(true); });
        }
      });
    }
    return work.then(function () {
      state.dmnFile = name;
      return state.dmn.importXML(state.files[name]);
    }).then(function () {
      var table = state.dmn.getViews().filter(function (v) {
        return v.type === 'decisionTable';
      })[0];
      if (table) {
        return state.dmn.open(table);
      }
    }).catch(function (error) {
      status(t('load_failed') + ': ' + error.message, 'error');
    });
  }

  function newDecision() {
    var id = (window.prompt(t('decision_id'), 'new_decision') || '').trim();
    if (!/^[A-Za-z_][\w\-]*$/.test(id)) {
      return;
    }
    var name = id + '.dmn';
    state.files[name] = [
      '<?xml version="1.0" encoding="UTF-8"?>',
      '<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="' + id +
        '_definitions" name="' + id + '" namespace="http://yingjiang.gov.cn/brand/dmn">',
      '  <decision id="' + id + '" name="' + id + '">',
      '    <decisionTable id="' + id + '_table" hitPolicy="UNIQUE">',
      '      <input id="' + id + '_in" label="input">',
      '        <inputExpression id="' + id + '_in_expr" typeRef="string"><text>value</text>' +
        '</inputExpression>',
      '      </input>',
      '      <output id="' + id + '_out" label="' + id + '" name="' + id +
        '" typeRef="string"/>',
      '      <rule id="' + id + '_rule">',
      '        <inputEntry id="' + id + '_rule_in"><text>-</text></inputEntry>',
      '        <outputEntry id="' + id + '_rule_out"><text>"yes"</text></outputEntry>',
      '      </rule>',
      '    </decisionTable>',
      '  </decision>',
      '</definitions>', ''].join('\n');
    state.dmnFile = name;
    setDirty(true);
    fillDmnChoices();
  }

  function fillXmlChoices() {
    var select = document.getElementById('xml-file');
    var current = select.value || state.bpmnName;
    select.innerHTML = '';
    Object.keys(state.files).forEach(function (name) {
      select.appendChild(el('option', {value: name, text: name, selected: name === current}));
    });
    document.getElementById('xml-text').value = state.files[select.value] || '';
  }

  function applyXml() {
    var name = document.getElementById('xml-file').value;
    var text = document.getElementById('xml-text').value;
    state.files[name] = text;
    setDirty(true);
    var work = name === state.bpmnName ? importBpmn(text) : Promise.resolve();
    if (name === state.dmnFile && state.dmn) {
      work = work.then(function () { return openDmn(name); });
    }
    work.then(function () { status(t('xml_applied'), 'ok'); }, function () {});
  }

  function download() {
    collect().then(function (files) {
      var blob = new Blob([files[state.bpmnName]], {type: 'application/xml'});
      var link = el('a', {href: URL.createObjectURL(blob), download: state.bpmnName});
      document.body.appendChild(link);
      link.click();
      link.remove();
    });
  }

  // -- wiring ------------------------------------------------------------------------------

  document.getElementById('save').addEventListener('click', function () {
    save().catch(function () {});
  });
  document.getElementById('deploy').addEventListener('click', deploy);
  document.getElementById('download').addEventListener('click', download);
  document.getElementById('apply-xml').addEventListener('click', applyXml);
  document.getElementById('new-decision').addEventListener('click', newDecision);
  document.getElementById('dmn-file').addEventListener('change', function (event) {
    openDmn(event.target.value);
  });
  document.getElementById('xml-file').addEventListener('change', function (event) {
    document.getElementById('xml-text').value = state.files[event.target.value] || '';
  });
  Array.prototype.forEach.call(document.querySelectorAll('[data-tab]'), function (button) {
    button.addEventListener('click', function () { showTab(button.getAttribute('data-tab')); });
  });
  window.addEventListener('beforeunload', function (event) {
    if (state.dirty) {
      event.preventDefault();
      event.returnValue = t('unsaved');
    }
  });

  importBpmn(state.files[state.bpmnName]).then(function () {
    setDirty(false);
    if (state.draft) {
      Brand.call('POST', api + '/drafts/' + state.draft.id + '/check').then(function (response) {
        if (response.status === 200) {
          showProblems(response.body);
          status('');
        }
      });
    }
  });

  window.BrandModeler = {modeler: modeler, panel: panel, state: state, save: save};
}());
