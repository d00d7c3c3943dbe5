// Copy the prebuilt browser bundles of bpmn-js, dmn-js and echarts from node_modules into
// web/static/vendor/, with their licences, and write vendor/MANIFEST.txt (version, size
// and sha256 of every file). Run through `make vendor` after `npm ci`; never at run time.
//
// Both packages ship production bundles in dist/, so no bundler is needed. The
// properties panel this system uses is our own plain script (web/static/js/panel.js),
// written for exactly the spiffworkflow extensions the engine reads.

import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync,
  writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const modules = join(here, 'node_modules');
const target = join(here, '..', 'vendor');

// package -> files and folders under the package, copied to vendor/<package>/ as they are
const WANTED = {
  'bpmn-js': [
    'LICENSE',
    'dist/bpmn-modeler.production.min.js',
    'dist/bpmn-navigated-viewer.production.min.js',
    'dist/assets/diagram-js.css',
    'dist/assets/bpmn-js.css',
    'dist/assets/bpmn-font/css/bpmn.css',
    'dist/assets/bpmn-font/font',
  ],
  'dmn-js': [
    'LICENSE',
    'dist/dmn-modeler.production.min.js',
    'dist/assets/diagram-js.css',
    'dist/assets/dmn-js-shared.css',
    'dist/assets/dmn-js-drd.css',
    'dist/assets/dmn-js-decision-table.css',
    'dist/assets/dmn-js-decision-table-controls.css',
    'dist/assets/dmn-js-literal-expression.css',
    'dist/assets/dmn-js-boxed-expression.css',
    'dist/assets/dmn-js-boxed-expression-controls.css',
    'dist/assets/dmn-font/css/dmn.css',
    'dist/assets/dmn-font/font',
  ],
  // The dashboard's charts: the "common" build (line, bar, pie, scatter, the toolbox,
  // both renderers, the built-in Chinese and English locales), minified by Apache.
  'echarts': [
    'LICENSE',
    'NOTICE',
    'dist/echarts.common.min.js',
  ],
};

function filesUnder(path) {
  if (!statSync(path).isDirectory()) {
    return [path];
  }
  return readdirSync(path).sort().flatMap((name) => filesUnder(join(path, name)));
}

function sha256(path) {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

const lines = [];
for (const [name, entries] of Object.entries(WANTED)) {
  const root = join(modules, name);
  const meta = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const out = join(target, name);
  rmSync(out, { recursive: true, force: true });
  lines.push(`${name} ${meta.version} (${meta.license})`);

  for (const entry of entries) {
    for (const source of filesUnder(join(root, entry))) {
      // dist/ is dropped so that pages load vendor/bpmn-js/bpmn-modeler.production.min.js
      const inside = relative(root, source).replace(/^dist\//, '');
      const destination = join(out, inside);
      mkdirSync(dirname(destination), { recursive: true });
      copyFileSync(source, destination);
      const size = statSync(destination).size;
      lines.push(`  ${inside}  ${size}  ${sha256(destination)}`);
    }
  }
}

writeFileSync(join(target, 'MANIFEST.txt'), lines.join('\n') + '\n');
console.log(lines.join('\n'));
