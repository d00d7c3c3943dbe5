/* The properties side panel of the modeler: exactly what this system reads from a diagram.
 *
 * - any element: id and name;
 * - a flow node: its lane (the department that does it);
 * - a user task or start event: the form, and the due and follow_up periods
 *   (spiffworkflow:properties);
 * - a timer event: the kind and the Python expression;
 * - a flow out of an exclusive or inclusive gateway: its condition, and whether it is the
 *   gateway's default;
 * - a business rule task: the decision it calls (spiffworkflow:calledDecisionId);
 * - a script task: its script; a service task: its operator and result variable;
 * - a lane: the department it names.
 *
 * bpmn-js keeps the spiffworkflow extension elements as generic moddle elements
 * ($children, $body); every edit runs as a command, so undo and redo cover the panel too.
 */
(function () {
  'use strict';

  var SPIFF = 'http://spiffworkflow.org/bpmn/schema/1.0/core';
  // What engine/taskprops.py accepts: an ISO duration of weeks to seconds, or working days.
  var PERIOD = new RegExp('^\\s*(\\d{1,3}\\s*WD|P(?=\\d|T\\d)(\\d+W)?(\\d+D)?' +
                          '(T(?=\\d)(\\d+H)?(\\d+M)?(\\d+S)?)?)\\s*$', 'i');
  // An ISO 8601 literal written without quotes: the engine would read it as Python.
  var ISO_LITERAL = new RegExp('^(R\\d*/\\S+|PT?(\\d+([.,]\\d+)?[YMWDHS]T?)+|' +
                               '\\d{4}-?\\d{2}-?\\d{2}(T[\\d:.,]+)?\\S*)$', 'i');
  var ID = /^[A-Za-z_][\w.\-]*$/;
  var TIMER_KINDS = ['timeDate', 'timeDuration', 'timeCycle'];

  /* A command whose context carries apply(), which changes the model and returns its undo. */
  function MutateHandler() {}
  MutateHandler.prototype.execute = function (context) {
    context.undo = context.apply();
    return context.elements;
  };
  MutateHandler.prototype.revert = function (context) {
    context.undo();
    return context.elements;
  };

  function is(bo, type) {
    return bo && typeof bo.$instanceOf === 'function' && bo.$instanceOf(type);
  }

  function PropertiesPanel(modeler, container, options) {
    this.modeler = modeler;
    this.container = container;
    this.options = options;
    this.t = options.t;
    this.element = null;
    modeler.get('commandStack').registerHandler('brand.mutate', MutateHandler);

    var self = this;
    modeler.on('selection.changed', function (event) {
      self.show(event.newSelection.length === 1 ? event.newSelection[0] : null);
    });
    modeler.on('elements.changed', function (event) {
      if (self.element && event.elements.some(function (e) { return e.id === self.element.id; })) {
        self.show(self.element);
      }
    });
    modeler.on('import.done', function () { self.show(null); });
  }

  PropertiesPanel.prototype.mutate = function (element, apply) {
    this.modeler.get('commandStack').execute('brand.mutate', {
      elements: [element], apply: apply});
  };

  /* Set obj[key] as a command; an empty value removes the key. */
  PropertiesPanel.prototype.setRaw = function (element, obj, key, value) {
    this.mutate(element, function () {
      var had = Object.prototype.hasOwnProperty.call(obj, key);
      var old = obj[key];
      if (value === undefined || value === null || value === '') {
        delete obj[key];
      } else {
        obj[key] = value;
      }
      return function () {
        if (had) {
          obj[key] = old;
        } else {
          delete obj[key];
        }
      };
    });
  };

  // -- spiffworkflow extension elements -----------------------------------------------------

  PropertiesPanel.prototype.extension = function (bo, type) {
    var ext = bo.extensionElements;
    var values = ext && ext.values ? ext.values : [];
    for (var i = 0; i < values.length; i++) {
      if (values[i].$type === type) {
        return values[i];
      }
    }
    return null;
  };

  /* The extension element of a type, created (as part of the running command) if missing. */
  PropertiesPanel.prototype.ensureExtension = function (bo, type, undos) {
    var moddle = this.modeler.get('moddle');
    if (!bo.extensionElements) {
      bo.extensionElements = moddle.create('bpmn:ExtensionElements', {values: []});
      bo.extensionElements.$parent = bo;
      undos.push(function () { delete bo.extensionElements; });
    }
    var found = this.extension(bo, type);
    if (!found) {
      found = moddle.createAny(type, SPIFF, {});
      found.$parent = bo.extensionElements;
      var values = bo.extensionElements.get('values');
      values.push(found);
      undos.push(function () { values.splice(values.indexOf(found), 1); });
    }
    return found;
  };

  PropertiesPanel.prototype.property = function (bo, name) {
    var props = this.extension(bo, 'spiffworkflow:properties');
    var children = props && props.$children ? props.$children : [];
    var value = null;
    children.forEach(function (child) {
      if (child.name === name) {
        value = child.value;
      }
    });
    return value;
  };

  PropertiesPanel.prototype.setProperty = function (element, name, value) {
    var self = this;
    var bo = element.businessObject;
    this.mutate(element, function () {
      var undos = [];
      var props = self.ensureExtension(bo, 'spiffworkflow:properties', undos);
      if (!props.$children) {
        props.$children = [];
      }
      var children = props.$children;
      var before = children.slice();
      var existing = children.filter(function (c) { return c.name === name; });
      var states = existing.map(function (c) { return c.value; });
      if (value) {
        if (existing.length) {
          existing[existing.length - 1].value = value;
        } else {
          children.push(self.modeler.get('moddle').createAny(
            'spiffworkflow:property', SPIFF, {name: name, value: value}));
        }
      } else {
        existing.forEach(function (c) { children.splice(children.indexOf(c), 1); });
      }
      return function () {
        existing.forEach(function (c, i) { c.value = states[i]; });
        children.splice.apply(children, [0, children.length].concat(before));
        undos.reverse().forEach(function (undo) { undo(); });
      };
    });
  };

  PropertiesPanel.prototype.body = function (bo, type) {
    var found = this.extension(bo, type);
    return found ? (found.$body || '') : '';
  };

  PropertiesPanel.prototype.setBody = function (element, type, value) {
    var self = this;
    var bo = element.businessObject;
    this.mutate(element, function () {
      var undos = [];
      var found = self.ensureExtension(bo, type, undos);
      var old = found.$body;
      found.$body = value;
      return function () {
        found.$body = old;
        undos.reverse().forEach(function (undo) { undo(); });
      };
    });
  };

  // -- lanes -------------------------------------------------------------------------------

  PropertiesPanel.prototype.lanes = function () {
    var found = [];
    var definitions = this.modeler.getDefinitions();
    function walk(laneSets) {
      (laneSets || []).forEach(function (set) {
        (set.lanes || []).forEach(function (lane) {
          if (lane.childLaneSet) {
            walk([lane.childLaneSet]);
          } else {
            found.push(lane);
          }
        });
      });
    }
    (definitions.rootElements || []).forEach(function (root) {
      if (is(root, 'bpmn:Process')) {
        walk(root.laneSets);
      }
    });
    return found;
  };

  PropertiesPanel.prototype.laneOf = function (bo) {
    var lanes = this.lanes();
    for (var i = 0; i < lanes.length; i++) {
      if ((lanes[i].flowNodeRef || []).indexOf(bo) >= 0) {
        return lanes[i];
      }
    }
    return null;
  };

  PropertiesPanel.prototype.moveToLane = function (element, laneId) {
    var registry = this.modeler.get('elementRegistry');
    var target = registry.get(laneId);
    var lane = this.lanes().filter(function (l) { return l.id === laneId; })[0];
    if (target && target.type === 'bpmn:Lane') {
      // A drawn lane: move the shape into it; bpmn-js then updates flowNodeRef itself.
      var middle = target.y + target.height / 2;
      var dy = Math.round(middle - (element.y + element.height / 2));
      this.modeler.get('modeling').moveElements([element], {x: 0, y: dy});
      return;
    }
    var bo = element.businessObject;
    var lanes = this.lanes();
    this.mutate(element, function () {
      var removed = [];
      lanes.forEach(function (l) {
        var refs = l.get('flowNodeRef');
        var index = refs.indexOf(bo);
        if (index >= 0) {
          refs.splice(index, 1);
          removed.push(l);
        }
      });
      if (lane) {
        lane.get('flowNodeRef').push(bo);
      }
      return function () {
        if (lane) {
          var refs = lane.get('flowNodeRef');
          refs.splice(refs.indexOf(bo), 1);
        }
        removed.forEach(function (l) { l.get('flowNodeRef').push(bo); });
      };
    });
  };

  // -- rendering ---------------------------------------------------------------------------

  PropertiesPanel.prototype.show = function (element) {
    var t = this.t;
    var el = window.Brand.el;
    if (element && element.type === 'label') {
      element = element.labelTarget;
    }
    this.element = element;
    this.container.innerHTML = '';
    if (!element) {
      var root = this.modeler.get('canvas').getRootElement();
      this.container.appendChild(el('p', {'class': 'hint', text: t('nothing_selected')}));
      if (root && root.businessObject) {
        var process = is(root.businessObject, 'bpmn:Process') ? root.businessObject
          : (root.businessObject.participants || [])
            .map(function (p) { return p.processRef; }).filter(Boolean)[0];
        if (process) {
          this.row(t('process'), el('code', {text: process.id}));
          this.row(t('name'), el('span', {text: process.name || ''}));
        }
      }
      return;
    }
    var bo = element.businessObject;
    this.container.appendChild(el('h3', {text: bo.name || bo.id}));
    this.container.appendChild(el('p', {'class': 'meta', text: bo.$type.replace('bpmn:', '')}));
    this.idField(element);
    this.text(element, t('name'), bo.name || '', function (value) {
      this.modeler.get('modeling').updateProperties(element, {name: value || undefined});
    });
    if (is(bo, 'bpmn:Lane')) {
      this.laneName(element);
      return;
    }
    if (is(bo, 'bpmn:FlowNode') && this.lanes().length) {
      this.laneField(element);
    }
    if (is(bo, 'bpmn:UserTask') || is(bo, 'bpmn:StartEvent') || is(bo, 'bpmn:ManualTask')) {
      this.formField(element);
    }
    if (is(bo, 'bpmn:UserTask') || is(bo, 'bpmn:ManualTask')) {
      this.period(element, 'due', t('due'));
      this.period(element, 'follow_up', t('follow_up'));
    }
    var timer = (bo.eventDefinitions || []).filter(function (d) {
      return is(d, 'bpmn:TimerEventDefinition');
    })[0];
    if (timer) {
      this.timerFields(element, timer);
    }
    if (is(bo, 'bpmn:BoundaryEvent')) {
      this.checkbox(element, t('interrupting'), bo.cancelActivity !== false, function (on) {
        this.modeler.get('modeling').updateProperties(element, {cancelActivity: on});
      });
    }
    if (is(bo, 'bpmn:SequenceFlow') && bo.sourceRef &&
        (is(bo.sourceRef, 'bpmn:ExclusiveGateway') || is(bo.sourceRef, 'bpmn:InclusiveGateway'))) {
      this.conditionFields(element);
    }
    if (is(bo, 'bpmn:BusinessRuleTask')) {
      this.decisionField(element);
    }
    if (is(bo, 'bpmn:ScriptTask')) {
      this.area(element, t('script'), bo.script || '', function (value) {
        this.modeler.get('modeling').updateProperties(element, {script: value || undefined});
      });
    }
    if (is(bo, 'bpmn:ServiceTask')) {
      this.serviceFields(element);
    }
  };

  PropertiesPanel.prototype.row = function (label, control, hint, error) {
    var el = window.Brand.el;
    var row = el('label', {'class': 'prop'}, [el('span', {text: label}), control]);
    if (hint) {
      row.appendChild(el('small', {'class': 'hint', text: hint}));
    }
    if (error) {
      row.appendChild(el('small', {'class': 'field-error', text: error}));
    }
    this.container.appendChild(row);
    return row;
  };

  /* A text field. ``check`` returns a warning shown under it; a ``strict`` check (an id)
   * also keeps the value out of the diagram, others are applied and left to the deploy
   * check, so that a draft can be saved half-done. */
  PropertiesPanel.prototype.text = function (element, label, value, onChange, hint, check,
                                             strict) {
    var self = this;
    var input = window.Brand.el('input', {type: 'text', value: value});
    var row = this.row(label, input, hint);
    var error = window.Brand.el('small', {'class': 'field-error'});
    row.appendChild(error);
    function validate() {
      var message = check ? check(input.value.trim()) : null;
      error.textContent = message || '';
      return !message;
    }
    validate();
    input.addEventListener('input', validate);
    input.addEventListener('change', function () {
      if ((validate() || !strict) && input.value.trim() !== value) {
        onChange.call(self, input.value.trim());
      }
    });
    return input;
  };

  PropertiesPanel.prototype.area = function (element, label, value, onChange, hint) {
    var self = this;
    var input = window.Brand.el('textarea', {rows: 4, spellcheck: 'false'});
    input.value = value;
    this.row(label, input, hint);
    input.addEventListener('change', function () {
      if (input.value !== value) {
        onChange.call(self, input.value);
      }
    });
    return input;
  };

  PropertiesPanel.prototype.select = function (label, options, value, onChange, extra) {
    var el = window.Brand.el;
    var self = this;
    var select = el('select', {}, options.map(function (o) {
      return el('option', {value: o.value, selected: o.value === value, text: o.label});
    }));
    var row = this.row(label, select);
    if (extra) {
      row.appendChild(extra);
    }
    select.addEventListener('change', function () { onChange.call(self, select.value); });
    return select;
  };

  PropertiesPanel.prototype.checkbox = function (element, label, checked, onChange) {
    var self = this;
    var box = window.Brand.el('input', {type: 'checkbox', checked: checked});
    var row = window.Brand.el('label', {'class': 'prop check'}, [box, label]);
    this.container.appendChild(row);
    box.addEventListener('change', function () { onChange.call(self, box.checked); });
  };

  PropertiesPanel.prototype.idField = function (element) {
    var registry = this.modeler.get('elementRegistry');
    var t = this.t;
    var bo = element.businessObject;
    this.text(element, t('id'), bo.id, function (value) {
      this.modeler.get('modeling').updateProperties(element, {id: value});
    }, null, function (value) {
      if (!ID.test(value)) {
        return 'A-Z a-z 0-9 _ . -';
      }
      var other = registry.get(value);
      return other && other.businessObject !== bo ? value + ' ≠ ' + bo.id : null;
    }, true);
  };

  PropertiesPanel.prototype.groupOptions = function (current) {
    var t = this.t;
    var options = this.options.groups.map(function (g) {
      return {value: g.id, label: g.name + ' (' + g.id + ')'};
    });
    if (current && !options.some(function (o) { return o.value === current; })) {
      options.unshift({value: current, label: current + ' ?'});
    }
    options.unshift({value: '', label: t('no_lane')});
    return options;
  };

  PropertiesPanel.prototype.laneName = function (element) {
    var bo = element.businessObject;
    this.select(this.t('lane'), this.groupOptions(bo.name), bo.name || '', function (value) {
      this.modeler.get('modeling').updateProperties(element, {name: value || undefined});
    });
  };

  PropertiesPanel.prototype.laneField = function (element) {
    var t = this.t;
    var current = this.laneOf(element.businessObject);
    var names = {};
    this.options.groups.forEach(function (g) { names[g.id] = g.name; });
    var options = [{value: '', label: t('no_lane')}].concat(this.lanes().map(function (lane) {
      var name = (lane.name || '').trim();
      return {value: lane.id, label: (names[name] || name || '?') + ' (' + lane.id + ')'};
    }));
    this.select(t('lane'), options, current ? current.id : '', function (value) {
      this.moveToLane(element, value);
    });
  };

  PropertiesPanel.prototype.formField = function (element) {
    var t = this.t;
    var el = window.Brand.el;
    var current = this.property(element.businessObject, 'form') || '';
    var options = [{value: '', label: t('no_form')}].concat(this.options.forms.map(function (f) {
      return {value: f.name, label: f.title + ' (' + f.name + ')'};
    }));
    if (current && !this.options.forms.some(function (f) { return f.name === current; })) {
      options.push({value: current, label: current + ' ?'});
    }
    var link = el('a', {href: this.options.formUrl.replace('__name__', current || ''),
                        target: '_blank', text: t('edit_form'), hidden: !current});
    this.select(t('form'), options, current, function (value) {
      this.setProperty(element, 'form', value);
    }, link);
  };

  PropertiesPanel.prototype.period = function (element, name, label) {
    var t = this.t;
    this.text(element, label, this.property(element.businessObject, name) || '', function (value) {
      this.setProperty(element, name, value);
    }, t('due_hint'), function (value) {
      return value && !PERIOD.test(value) ? t('bad_period') : null;
    });
  };

  PropertiesPanel.prototype.timerFields = function (element, timer) {
    var t = this.t;
    var self = this;
    var kind = TIMER_KINDS.filter(function (k) { return timer[k]; })[0] || 'timeDuration';
    var expression = timer[kind] ? (timer[kind].body || '') : '';
    this.container.appendChild(window.Brand.el('h4', {text: t('timer')}));
    this.select(t('timer_kind'), TIMER_KINDS.map(function (k) {
      return {value: k, label: t(k)};
    }), kind, function (value) {
      self.setTimer(element, timer, value, expression);
    });
    this.text(element, t('timer_expr'), expression, function (value) {
      self.setTimer(element, timer, kind, value);
    }, t('timer_hint'), function (value) {
      return ISO_LITERAL.test(value) ? t('unquoted') + ': "' + value + '"' : null;
    });
  };

  PropertiesPanel.prototype.setTimer = function (element, timer, kind, expression) {
    var moddle = this.modeler.get('moddle');
    this.mutate(element, function () {
      var old = {};
      TIMER_KINDS.forEach(function (k) { old[k] = timer[k]; delete timer[k]; });
      var formal = moddle.create('bpmn:FormalExpression', {body: expression});
      formal.$parent = timer;
      timer[kind] = formal;
      return function () {
        TIMER_KINDS.forEach(function (k) {
          if (old[k]) {
            timer[k] = old[k];
          } else {
            delete timer[k];
          }
        });
      };
    });
  };

  PropertiesPanel.prototype.conditionFields = function (element) {
    var t = this.t;
    var bo = element.businessObject;
    var gateway = bo.sourceRef;
    var isDefault = gateway.default === bo;
    var modeling = this.modeler.get('modeling');
    var registry = this.modeler.get('elementRegistry');
    this.checkbox(element, t('make_default'), isDefault, function (on) {
      var shape = registry.get(gateway.id);
      modeling.updateProperties(shape, {'default': on ? bo : undefined});
      if (on && bo.conditionExpression) {
        modeling.updateProperties(element, {conditionExpression: undefined});
      }
    });
    if (isDefault) {
      return;
    }
    var moddle = this.modeler.get('moddle');
    var current = bo.conditionExpression ? (bo.conditionExpression.body || '') : '';
    this.text(element, t('condition'), current, function (value) {
      var expression = value ? moddle.create('bpmn:FormalExpression', {body: value}) : undefined;
      modeling.updateProperties(element, {conditionExpression: expression});
    }, t('condition_hint'));
  };

  PropertiesPanel.prototype.decisionField = function (element) {
    var t = this.t;
    var current = this.body(element.businessObject, 'spiffworkflow:calledDecisionId').trim();
    var decisions = this.options.decisions();
    var options = [{value: '', label: t('no_decision')}].concat(decisions.map(function (d) {
      return {value: d.id, label: (d.name || d.id) + ' (' + d.file + ')'};
    }));
    if (current && !decisions.some(function (d) { return d.id === current; })) {
      options.push({value: current, label: current + ' ?'});
    }
    this.select(t('decision'), options, current, function (value) {
      this.setBody(element, 'spiffworkflow:calledDecisionId', value);
    });
  };

  PropertiesPanel.prototype.serviceFields = function (element) {
    var t = this.t;
    var self = this;
    var bo = element.businessObject;
    var operator = this.extension(bo, 'spiffworkflow:serviceTaskOperator');
    var current = operator ? (operator.id || '') : '';
    var options = [{value: '', label: '-'}].concat(this.options.operations.map(function (op) {
      return {value: op, label: op};
    }));
    if (current && this.options.operations.indexOf(current) < 0) {
      options.push({value: current, label: current + ' ?'});
    }
    this.select(t('operator'), options, current, function (value) {
      self.mutate(element, function () {
        var undos = [];
        var found = self.ensureExtension(bo, 'spiffworkflow:serviceTaskOperator', undos);
        var old = found.id;
        found.id = value;
        return function () {
          found.id = old;
          undos.reverse().forEach(function (undo) { undo(); });
        };
      });
    });
    if (operator) {
      this.text(element, t('result_variable'), operator.resultVariable || '', function (value) {
        this.setRaw(element, operator, 'resultVariable', value);
      });
    }
  };

  window.BrandPanel = PropertiesPanel;
}());
