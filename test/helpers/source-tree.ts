// The repository's source tree, for the tests that read src/ as text (its
// floors, its sizes).
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const root = new URL('../..', import.meta.url).pathname;
export const src = join(root, 'src');

/** Every .ts file under dir, at any depth. */
export function tsFiles(dir: string = src): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? tsFiles(p) : n.endsWith('.ts') ? [p] : [];
  });
}
