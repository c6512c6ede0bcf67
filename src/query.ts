// Stand-in until the Rack-exact converter lands: flat keys only.
export interface QueryLimits { readonly maxParams: number; readonly maxDepth: number }
export type QueryRejectReason = 'bad_encoding' | 'invalid_utf8' | 'param_type' | 'depth' | 'too_many_params' | 'key_space';
export interface Rejection { readonly reason: QueryRejectReason }
export const rackLimits: QueryLimits = { maxParams: 4096, maxDepth: 100 };
export function parseValues(query: string, limits: QueryLimits, extra?: readonly string[]): string | Rejection {
  const o: Record<string, string | null> = {};
  const parts = query.split(/[&;] */).filter((p) => p !== '');
  if (parts.length > limits.maxParams) return { reason: 'too_many_params' };
  try {
    for (const p of parts) {
      const i = p.indexOf('=');
      const k = decodeURIComponent((i < 0 ? p : p.slice(0, i)).replace(/\+/g, ' '));
      o[k] = i < 0 ? null : decodeURIComponent(p.slice(i + 1).replace(/\+/g, ' '));
    }
  } catch {
    return { reason: 'bad_encoding' };
  }
  for (let i = 0; extra && i < extra.length; i += 2) o[extra[i]!] = extra[i + 1]!;
  return JSON.stringify(o);
}
