/**
 * Top-level members removed from a Line's JSON, its other bytes unchanged:
 * `"anonymize"` takes out the identifiers (`privacy.identifiers`) a tracker
 * sends, after the converter has made the Line exactly as Rails would. Re-
 * serializing would not do: the converter escapes as Rails does, and
 * JSON.stringify does not. The input is the converter's own output (one JSON
 * object, well formed), so a small scanner suffices.
 */
export function withoutMembers(json: Buffer, names: ReadonlySet<string>): Buffer {
  const text = json.toString('utf8');
  let out = '{';
  let i = 1; // after '{'
  let first = true;
  while (i < text.length && text[i] !== '}') {
    if (text[i] === ',') i++;
    const keyEnd = stringEnd(text, i);
    const key = JSON.parse(text.slice(i, keyEnd)) as string;
    const valueEnd = valueEndAt(text, keyEnd + 1); // after ':'
    if (!names.has(key)) {
      out += (first ? '' : ',') + text.slice(i, valueEnd);
      first = false;
    }
    i = valueEnd;
  }
  return Buffer.from(`${out}}`);
}

/** The index after the JSON string that starts at `i` (a '"'). */
function stringEnd(text: string, i: number): number {
  let j = i + 1;
  while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
  return j + 1;
}

/** The index after the JSON value that starts at `i`. */
function valueEndAt(text: string, i: number): number {
  const c = text[i];
  if (c === '"') return stringEnd(text, i);
  if (c !== '{' && c !== '[') {
    let j = i;
    while (j < text.length && text[j] !== ',' && text[j] !== '}' && text[j] !== ']') j++;
    return j;
  }
  let depth = 0;
  let j = i;
  do {
    const d = text[j];
    if (d === '"') { j = stringEnd(text, j); continue; }
    if (d === '{' || d === '[') depth++;
    else if (d === '}' || d === ']') depth--;
    j++;
  } while (depth > 0);
  return j;
}
