// The leadership dashboard's charts, drawn with the vendored Apache ECharts from the figures
// the page embeds (#dashboard-data); the same figures are in each chart's table and CSV.
(function () {
  'use strict';

  var data = JSON.parse(document.getElementById('dashboard-data').textContent);
  var locale = data.locale === 'en' ? 'EN' : 'ZH';

  function header(chart, key) {
    for (var i = 0; i < chart.columns.length; i++) {
      if (chart.columns[i].key === key) { return chart.columns[i].header; }
    }
    return key;
  }

  function unique(values) {
    var seen = [];
    values.forEach(function (v) { if (seen.indexOf(v) < 0) { seen.push(v); } });
    return seen;
  }

  var base = {
    tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' } },
    legend: { top: 0, type: 'scroll' },
    grid: { left: 8, right: 16, top: 36, bottom: 8, containLabel: true }
  };

  function merge(extra) {
    var option = {};
    Object.keys(base).forEach(function (k) { option[k] = base[k]; });
    Object.keys(extra).forEach(function (k) { option[k] = extra[k]; });
    return option;
  }

  // One bar (or line) series per value column, over the rows' category column.
  function columns(chart, category, values, opts) {
    opts = opts || {};
    var horizontal = opts.horizontal;
    var categoryAxis = { type: 'category', data: chart.rows.map(function (r) {
      return typeof category === 'function' ? category(r) : r[category]; }),
      axisLabel: { interval: chart.rows.length > 12 ? 'auto' : 0,
        rotate: horizontal ? 0 : (chart.rows.length > 6 ? 30 : 0) } };
    var valueAxis = { type: 'value', minInterval: opts.money ? 0 : 1 };
    return merge({
      xAxis: horizontal ? valueAxis : categoryAxis,
      yAxis: horizontal ? categoryAxis : valueAxis,
      series: values.map(function (key) {
        return { name: header(chart, key), type: opts.line ? 'line' : 'bar',
          stack: opts.stack ? 'total' : undefined,
          data: chart.rows.map(function (r) { return r[key]; }) };
      })
    });
  }

  // Rows (group, process, value) as one stacked series per process over the groups.
  function pivot(chart, category, seriesKey, value) {
    var categories = unique(chart.rows.map(function (r) { return r[category]; }));
    var names = unique(chart.rows.map(function (r) { return r[seriesKey]; }));
    return merge({
      xAxis: { type: 'category', data: categories, axisLabel: { interval: 0 } },
      yAxis: { type: 'value', minInterval: 1, name: header(chart, value) },
      series: names.map(function (name) {
        return { name: name, type: 'bar', stack: 'total', data: categories.map(function (c) {
          var total = 0;
          chart.rows.forEach(function (r) {
            if (r[category] === c && r[seriesKey] === name) { total += r[value]; }
          });
          return total;
        }) };
      })
    });
  }

  function townshipMap(chart) {
    var placed = chart.rows.filter(function (r) { return r.lat !== null && r.lng !== null; });
    var largest = Math.max.apply(null, placed.map(function (r) { return r.scans; }).concat([1]));
    function point(r) { return { name: r.township, value: [r.lng, r.lat, r.scans, r.suspect_labels] }; }
    return {
      tooltip: { trigger: 'item', formatter: function (p) {
        return p.name + '<br>' + header(chart, 'scans') + ': ' + p.value[2] + '<br>' +
          header(chart, 'suspect_labels') + ': ' + p.value[3];
      } },
      legend: { top: 0 },
      grid: { left: 8, right: 72, top: 36, bottom: 8, containLabel: true },
      xAxis: { type: 'value', scale: true, name: header(chart, 'lng'), splitLine: { show: false } },
      yAxis: { type: 'value', scale: true, name: header(chart, 'lat'), splitLine: { show: false } },
      series: [
        { name: header(chart, 'scans'), type: 'scatter', data: placed.map(point),
          symbolSize: function (v) { return 8 + 30 * Math.sqrt(v[2] / largest); },
          itemStyle: { color: '#2e7d32', opacity: 0.6 },
          label: { show: true, position: 'right', formatter: '{b}', fontSize: 11 } },
        { name: header(chart, 'suspect_labels'), type: 'scatter',
          data: placed.filter(function (r) { return r.suspect_labels > 0; }).map(point),
          symbolSize: function (v) { return 10 + 6 * Math.sqrt(v[3]); },
          itemStyle: { color: '#c62828' } }
      ]
    };
  }

  var builders = {
    open_cases: function (c) { return pivot(c, 'group', 'process', 'cases'); },
    overdue: function (c) { return pivot(c, 'group', 'process', 'cases'); },
    escalated: function (c) { return columns(c, 'process', ['cases']); },
    step_durations: function (c) {
      return columns(c, function (r) { return r.process + ' · ' + r.step; }, ['median_hours'],
        { horizontal: true });
    },
    admissions_licences: function (c) {
      return columns(c, 'month', ['admitted', 'licences_granted', 'licences_revoked']);
    },
    deposits: function (c) {
      return columns(c, 'enterprise', ['held_fen', 'frozen_fen', 'available_fen', 'advanced_fen'],
        { money: true });
    },
    royalties: function (c) {
      return columns(c, 'period', ['collected_fen', 'due_fen', 'overdue_fen'], { money: true });
    },
    scans: function (c) {
      return columns(c, 'day', ['genuine', 'suspect', 'counterfeit', 'revoked'], { stack: true });
    },
    scan_map: townshipMap,
    complaints_by_product: function (c) {
      return columns(c, 'product', ['complaints', 'open', 'at_fault', 'escalated']);
    },
    inspections: function (c) { return columns(c, 'result', ['inspections']); }
  };

  var drawn = [];
  data.charts.forEach(function (chart) {
    var element = document.getElementById('chart-' + chart.key);
    var build = builders[chart.key];
    if (!element || !build || !chart.available) { return; }
    var instance = echarts.init(element, null, { renderer: 'canvas', locale: locale });
    instance.setOption(build(chart));
    drawn.push(instance);
  });
  window.addEventListener('resize', function () {
    drawn.forEach(function (instance) { instance.resize(); });
  });
  document.documentElement.setAttribute('data-charts-drawn', String(drawn.length));
}());
