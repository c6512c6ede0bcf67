// The house's floors (docs/architecture.md, "Floors"): src/ is rooms (each
// folder, and each file at the top), and an import runs only down a floor.
// Counted are the imports that run: `import type` describes a shape, is
// erased by tsc, and the config's types (Config, Flavor) are read on every
// floor. The floors are computed from the imports (a room sits one above the
// highest it imports) and must equal the table in the docs, so a new upward
// import fails here twice: as a cycle, or as a table that no longer fits.
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import t from 'tap';
import { root, src, tsFiles } from '../helpers/source-tree.js';

const roomOf = (rel: string): string => (rel.includes('/') ? `${rel.split('/')[0]}/` : rel.replace(/\.ts$/, ''));

/** room → the rooms it imports (value imports), with one example import each. */
const graph = new Map<string, Map<string, string>>();
for (const f of tsFiles()) {
  const rel = relative(src, f);
  const from = roomOf(rel);
  if (!graph.has(from)) graph.set(from, new Map());
  for (const m of readFileSync(f, 'utf8').matchAll(/^(?:import|export) (?!type )[^;]*?from '(\.[^']+)'/gms)) {
    const target = relative(src, resolve(dirname(f), m[1]!)).replace(/\.js$/, '.ts');
    const to = roomOf(target);
    if (to !== from && !graph.get(from)!.has(to)) graph.get(from)!.set(to, `${rel} → ${target}`);
  }
}

t.test('no cycle between rooms', async (t) => {
  const floor = new Map<string, number>();
  const onPath: string[] = [];
  const cycles: string[] = [];
  const visit = (r: string): number => {
    if (floor.has(r)) return floor.get(r)!;
    if (onPath.includes(r)) {
      cycles.push([...onPath.slice(onPath.indexOf(r)), r].join(' → '));
      return 0;
    }
    onPath.push(r);
    let f = 0;
    for (const to of graph.get(r)?.keys() ?? []) f = Math.max(f, visit(to) + 1);
    onPath.pop();
    floor.set(r, f);
    return f;
  };
  for (const r of graph.keys()) visit(r);
  t.same(cycles, [], 'rooms import each other in a circle');

  // The docs' table: "| N | `room`, `room/` |" rows under "## Floors".
  const doc = readFileSync(join(root, 'docs/architecture.md'), 'utf8');
  const from = doc.indexOf('\n## Floors');
  const to = doc.indexOf('\n## ', from + 1);
  const section = doc.slice(from, to < 0 ? undefined : to);
  const documented = new Map<string, number>();
  for (const row of section.matchAll(/^\| (\d+) \| (.+?) \|$/gm)) {
    for (const name of row[2]!.matchAll(/`([^`]+)`/g)) documented.set(name[1]!, Number(row[1]));
  }
  const computed = Object.fromEntries([...floor].sort(([a], [b]) => a.localeCompare(b)));
  t.same(Object.fromEntries([...documented].sort(([a], [b]) => a.localeCompare(b))), computed,
    'docs/architecture.md\'s floors are the imports\' floors');
});
