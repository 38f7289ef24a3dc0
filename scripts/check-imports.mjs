#!/usr/bin/env node
// The import rules of issue 14, run by `npm test`: no module cycle, no domain
// file importing src/http (both: .dependency-cruiser.cjs), and no cycle among
// the folders of src/ (here: a folder that imports another, type-only imports
// included, must not be imported back by it, even through others). Each
// top-level file of src/ (app.ts, core.ts, storage.ts...) counts as a folder
// of its own. Prints every offending path; exits 1 when there is one.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cruise } from 'dependency-cruiser';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const { forbidden, options } = require(join(root, '.dependency-cruiser.cjs'));

process.chdir(root);
const { output } = await cruise(['src'], { ...options, validate: true, ruleSet: { forbidden } });
const { modules, summary } = output;
const problems = [];

for (const v of summary.violations) {
  if (v.rule.name === 'no-circular') {
    const cycle = (v.cycle ?? []).map((c) => (typeof c === 'string' ? c : c.name));
    problems.push(`module cycle: ${[v.from, ...cycle].join(' -> ')}`);
  } else {
    problems.push(`${v.rule.name}: ${v.from} -> ${v.to}`);
  }
}

// Folder graph. A domain file's import of src/http is judged by the rule above (reported, or
// temporarily allowed), so it is left out here: it is not a dependency the layout means to have.
const domainToHttp = forbidden.find((r) => r.name === 'domain-not-to-http');
const edgePatterns = domainToHttp.from.pathNot.map((p) => new RegExp(p));
const isDomain = (file) => !edgePatterns.some((re) => re.test(file));
const folderOf = (file) => file.split('/')[1];
/** folder -> folder -> one import that makes the arrow, for the report */
const arrows = new Map();
for (const m of modules) {
  if (!m.source.startsWith('src/')) continue;
  for (const d of m.dependencies) {
    if (!d.resolved.startsWith('src/')) continue;
    const a = folderOf(m.source);
    const b = folderOf(d.resolved);
    if (a === b) continue;
    if (b === 'http' && isDomain(m.source)) continue;
    if (!arrows.has(a)) arrows.set(a, new Map());
    if (!arrows.get(a).has(b)) arrows.get(a).set(b, `${m.source} -> ${d.resolved}`);
  }
}

// Tarjan's strongly connected components: every component of more than one folder is a cycle.
const index = new Map();
const low = new Map();
const stack = [];
const onStack = new Set();
const components = [];
let next = 0;
function visit(v) {
  index.set(v, next);
  low.set(v, next);
  next++;
  stack.push(v);
  onStack.add(v);
  for (const w of arrows.get(v)?.keys() ?? []) {
    if (!index.has(w)) {
      visit(w);
      low.set(v, Math.min(low.get(v), low.get(w)));
    } else if (onStack.has(w)) {
      low.set(v, Math.min(low.get(v), index.get(w)));
    }
  }
  if (low.get(v) === index.get(v)) {
    const c = [];
    let w;
    do {
      w = stack.pop();
      onStack.delete(w);
      c.push(w);
    } while (w !== v);
    if (c.length > 1) components.push(c);
  }
}
const folders = new Set([...arrows.keys(), ...[...arrows.values()].flatMap((t) => [...t.keys()])]);
for (const f of [...folders].sort()) if (!index.has(f)) visit(f);

for (const c of components) {
  const inside = new Set(c);
  const lines = [];
  for (const a of [...c].sort()) {
    for (const [b, via] of arrows.get(a) ?? []) if (inside.has(b)) lines.push(`    ${a} -> ${b}   (${via})`);
  }
  problems.push(`folder cycle among ${[...c].sort().join(', ')}:\n${lines.join('\n')}`);
}

if (problems.length) {
  console.error(`import check: ${problems.length} problem(s)`);
  for (const p of problems) console.error(`  ${p}`);
  process.exit(1);
}
console.log(`import check: ${modules.filter((m) => m.source.startsWith('src/')).length} modules, ${folders.size} folders: no module cycle, no folder cycle, no domain import of src/http, express, express-session, cookie or node:http`);
