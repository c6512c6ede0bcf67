/**
 * The /stats object as Carbon's plaintext protocol: one line per number,
 * `<prefix>.<path> <value> <unix seconds>\n`, the path being the object's
 * keys joined with dots (`scratchd.requests.GET.204`,
 * `scratchd.backends.file.persisted`). A pure function: graphite.ts sends.
 *
 * Names stay stable because they are /stats' own keys. A key that is not a
 * plain Graphite node (a flavor named `shop.gr`, a reason with a space) has
 * every character outside [A-Za-z0-9_-] replaced by `_`, so one key is one
 * node: the dot in `shop.gr` would otherwise make two.
 */
export function carbonLines(snapshot: unknown, prefix: string, unixSeconds: number): string {
  const out: string[] = [];
  walk(snapshot, prefix, (path, value) => out.push(`${path} ${value} ${unixSeconds}\n`));
  return out.join('');
}

/** One Graphite node: the characters a path segment may hold. */
export function carbonNode(key: string): string {
  return key.replace(/[^A-Za-z0-9_-]/g, '_');
}

function walk(v: unknown, path: string, emit: (path: string, value: number) => void): void {
  if (typeof v === 'number') {
    if (Number.isFinite(v)) emit(path, v);
  } else if (typeof v === 'boolean') {
    emit(path, v ? 1 : 0);
  } else if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, child] of Object.entries(v)) walk(child, `${path}.${carbonNode(k)}`, emit);
  }
  // Strings (states, reasons) and arrays have no number to plot: Graphite keeps numbers only.
}
